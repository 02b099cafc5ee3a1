#if canImport(Glibc)
import Glibc
#endif
import BerthOCI
import BerthOS
@testable import BerthRuntime
import Testing

@Suite("Seccomp profiles compile with libseccomp, and the cache never serves another profile")
struct SeccompCompilerTests {
    static let small = LinuxSeccomp(defaultAction: "SCMP_ACT_ALLOW", architectures: ["SCMP_ARCH_X86_64"], syscalls: [
        .init(names: ["getppid"], action: "SCMP_ACT_ERRNO", errnoRet: 1),
        .init(names: ["personality"], action: "SCMP_ACT_ERRNO", args: [.init(index: 0, value: 8, op: "SCMP_CMP_EQ")]),
    ])

    @Test("the built-in default profile compiles to a non-empty BPF program")
    func defaultProfile() throws {
        let compiled = try SeccompCompiler.compile(LinuxSeccomp.defaultProfile, cacheDirectory: nil)
        #expect(compiled.program.count > 8 * 100)
        #expect(compiled.program.count % 8 == 0)
        #expect(compiled.flags == 0)
        #expect(compiled.listenerPath == nil)
    }

    @Test("the default profile is podman's: ENOSYS by default, EPERM for the dangerous calls")
    func defaultProfileShape() {
        let profile = LinuxSeccomp.defaultProfile
        #expect(profile.defaultAction == "SCMP_ACT_ERRNO")
        #expect(profile.defaultErrnoRet == UInt32(ENOSYS))
        let denied = Set((profile.syscalls ?? []).filter { $0.action == "SCMP_ACT_ERRNO" }.flatMap(\.names))
        for name in ["kexec_load", "open_by_handle_at", "bpf", "init_module", "acct", "settimeofday"] {
            #expect(denied.contains(name), "\(name) is denied")
        }
        let allowed = Set((profile.syscalls ?? []).filter { $0.action == "SCMP_ACT_ALLOW" && $0.args == nil }.flatMap(\.names))
        for name in ["read", "write", "execve", "clone", "openat"] { #expect(allowed.contains(name), "\(name) is allowed") }
    }

    @Test("bad profiles are refused with the offending name", arguments: [
        (LinuxSeccomp(defaultAction: "SCMP_ACT_BOGUS"), "unknown action \"SCMP_ACT_BOGUS\""),
        (LinuxSeccomp(defaultAction: "SCMP_ACT_ALLOW", architectures: ["SCMP_ARCH_PDP11"]), "unknown architecture \"SCMP_ARCH_PDP11\""),
        (LinuxSeccomp(defaultAction: "SCMP_ACT_ALLOW", flags: ["SECCOMP_FILTER_FLAG_BOGUS"]), "unknown flag \"SECCOMP_FILTER_FLAG_BOGUS\""),
        (LinuxSeccomp(defaultAction: "SCMP_ACT_ALLOW", syscalls: [.init(names: ["read"], action: "SCMP_ACT_ERRNO",
            args: [.init(index: 0, value: 1, op: "SCMP_CMP_SOMETIMES")])]), "unknown operator \"SCMP_CMP_SOMETIMES\""),
        (LinuxSeccomp(defaultAction: "SCMP_ACT_ALLOW", syscalls: [.init(names: ["read"], action: "SCMP_ACT_ERRNO",
            args: [.init(index: 6, value: 1, op: "SCMP_CMP_EQ")])]), "argument index 6 is above 5"),
        (LinuxSeccomp(defaultAction: "SCMP_ACT_NOTIFY"), "uses SCMP_ACT_NOTIFY but has no listenerPath"),
    ])
    func refused(profile: LinuxSeccomp, phrase: String) {
        do {
            _ = try SeccompCompiler.compile(profile, cacheDirectory: nil)
            Issue.record("compiled a bad profile")
        } catch {
            #expect(error.message.contains(phrase), "\(error.message)")
        }
    }

    @Test("unknown system call names are skipped, as runc does")
    func unknownNamesSkipped() throws {
        var profile = Self.small
        profile.syscalls?.append(.init(names: ["no_such_syscall_in_any_kernel"], action: "SCMP_ACT_ERRNO"))
        let compiled = try SeccompCompiler.compile(profile, cacheDirectory: nil)
        #expect(compiled.program == (try SeccompCompiler.compile(Self.small, cacheDirectory: nil)).program)
    }

    @Test("flags and NOTIFY map to seccomp(2) filter flags")
    func flags() throws {
        var profile = Self.small
        profile.flags = ["SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW"]
        #expect(try SeccompCompiler.compile(profile, cacheDirectory: nil).flags == 2 | 4)
        profile.syscalls?.append(.init(names: ["mkdir"], action: "SCMP_ACT_NOTIFY"))
        profile.listenerPath = "/run/listener.sock"
        let compiled = try SeccompCompiler.compile(profile, cacheDirectory: nil)
        #expect(compiled.flags & 8 != 0)
        #expect(compiled.listenerPath == "/run/listener.sock")
    }

    @Test("a cached filter is reused only for exactly the same profile")
    func cache() throws {
        let dir = TemporaryDirectory("seccomp")
        defer { dir.remove() }
        let cacheDir = dir.subpath("cache")
        let first = try SeccompCompiler.compile(Self.small, cacheDirectory: cacheDir)
        let entries = Files.list(cacheDir)
        #expect(entries.count == 1)
        let cache = SeccompCache(directory: cacheDir, profile: Self.small)
        #expect(cache.lookUp() == first.program)
        // A different profile never reads the entry of another.
        var other = Self.small
        other.syscalls?[0].errnoRet = 2
        #expect(SeccompCache(directory: cacheDir, profile: other).lookUp() == nil)
        // An entry whose stored key differs (a forged or colliding file) is ignored.
        let path = cache.path
        var bytes = try Files.read(path)
        bytes[20] ^= 0xff
        try Files.writeAtomically(path, bytes, mode: 0o600)
        #expect(cache.lookUp() == nil)
        #expect(try SeccompCompiler.compile(Self.small, cacheDirectory: cacheDir).program == first.program)
    }

    @Test("a cache directory others can write is not used")
    func untrustedCache() throws {
        let dir = TemporaryDirectory("seccomp")
        defer { dir.remove() }
        let cacheDir = dir.subpath("cache")
        _ = try SeccompCompiler.compile(Self.small, cacheDirectory: cacheDir)
        chmod(cacheDir, 0o777)
        #expect(SeccompCache(directory: cacheDir, profile: Self.small).lookUp() == nil)
    }
}

#if canImport(Glibc)
import Glibc
#endif
import BerthOCI
import BerthOS
import CBerth
import CSeccomp
import FoundationEssentials

/// A seccomp filter ready to load: classic BPF plus the flags for seccomp(2).
struct CompiledSeccomp: Sendable {
    var program: [UInt8]
    var flags: UInt32
    /// The profile uses SCMP_ACT_NOTIFY: loading returns a listener fd that
    /// goes to `listenerPath` with the container process state.
    var listenerPath: String?
    var listenerMetadata: String?

    static let filterFlagTSync: UInt32 = 1, filterFlagLog: UInt32 = 2, filterFlagSpecAllow: UInt32 = 4
    static let filterFlagNewListener: UInt32 = 8

    /// Loads the filter into the calling process; the listener fd, if any.
    func load() throws(RuntimeError) -> FileDescriptor? {
        let count = program.count / 8 // sizeof(struct sock_filter)
        let result = program.withUnsafeBytes { berth_seccomp_load($0.baseAddress, UInt16(count), flags) }
        if result < 0 { throw RuntimeError.system("load the seccomp filter", Errno.current) }
        return flags & Self.filterFlagNewListener != 0 ? FileDescriptor(rawValue: result) : nil
    }
}

/// linux.seccomp compiled with libseccomp in the parent, before clone(),
/// so errors are reported before anything exists, and cached: the BPF of
/// a profile is kept under the state root and reused by later runs, since
/// compiling a large profile can dominate a container's start-up.
enum SeccompCompiler {
    // libseccomp's action values (function-like macros in seccomp.h).
    static let actKillProcess: UInt32 = 0x8000_0000, actKillThread: UInt32 = 0x0000_0000
    static let actTrap: UInt32 = 0x0003_0000, actErrno: UInt32 = 0x0005_0000, actTrace: UInt32 = 0x7ff0_0000
    static let actLog: UInt32 = 0x7ffc_0000, actAllow: UInt32 = 0x7fff_0000, actNotify: UInt32 = 0x7fc0_0000

    static func action(_ name: String, errnoRet: UInt32?, defaultErrno: UInt32 = UInt32(EPERM)) throws(RuntimeError) -> UInt32 {
        switch name {
        case "SCMP_ACT_KILL", "SCMP_ACT_KILL_THREAD": return actKillThread
        case "SCMP_ACT_KILL_PROCESS": return actKillProcess
        case "SCMP_ACT_TRAP": return actTrap
        case "SCMP_ACT_ERRNO": return actErrno | ((errnoRet ?? defaultErrno) & 0xffff)
        case "SCMP_ACT_TRACE": return actTrace | ((errnoRet ?? defaultErrno) & 0xffff)
        case "SCMP_ACT_ALLOW": return actAllow
        case "SCMP_ACT_LOG": return actLog
        case "SCMP_ACT_NOTIFY": return actNotify
        default: throw RuntimeError(.invalidArgument, "linux.seccomp: unknown action \"\(name)\"")
        }
    }

    static func comparison(_ name: String) throws(RuntimeError) -> scmp_compare {
        switch name {
        case "SCMP_CMP_NE": return SCMP_CMP_NE
        case "SCMP_CMP_LT": return SCMP_CMP_LT
        case "SCMP_CMP_LE": return SCMP_CMP_LE
        case "SCMP_CMP_EQ": return SCMP_CMP_EQ
        case "SCMP_CMP_GE": return SCMP_CMP_GE
        case "SCMP_CMP_GT": return SCMP_CMP_GT
        case "SCMP_CMP_MASKED_EQ": return SCMP_CMP_MASKED_EQ
        default: throw RuntimeError(.invalidArgument, "linux.seccomp: unknown operator \"\(name)\"")
        }
    }

    static func architecture(_ name: String) throws(RuntimeError) -> UInt32 {
        let short = (name.hasPrefix("SCMP_ARCH_") ? String(name.dropFirst(10)) : name).lowercased()
        let token = seccomp_arch_resolve_name(short)
        guard token != 0 else { throw RuntimeError(.invalidArgument, "linux.seccomp: unknown architecture \"\(name)\"") }
        return token
    }

    static func filterFlags(_ names: [String]) throws(RuntimeError) -> UInt32 {
        var flags: UInt32 = 0
        for name in names {
            switch name {
            case "SECCOMP_FILTER_FLAG_TSYNC": flags |= CompiledSeccomp.filterFlagTSync
            case "SECCOMP_FILTER_FLAG_LOG": flags |= CompiledSeccomp.filterFlagLog
            case "SECCOMP_FILTER_FLAG_SPEC_ALLOW": flags |= CompiledSeccomp.filterFlagSpecAllow
            default: throw RuntimeError(.invalidArgument, "linux.seccomp: unknown flag \"\(name)\"")
            }
        }
        return flags
    }

    /// The libseccomp version, part of the cache key (it decides the BPF).
    static var libraryVersion: String {
        guard let version = seccomp_version() else { return "unknown" }
        return "\(version.pointee.major).\(version.pointee.minor).\(version.pointee.micro)"
    }

    static var machine: String {
        var name = utsname()
        uname(&name)
        return withUnsafeBytes(of: name.machine) { String(decoding: $0.prefix(while: { $0 != 0 }), as: UTF8.self) }
    }

    /// Compiles `profile`, through the cache in `cacheDirectory` when given.
    static func compile(_ profile: LinuxSeccomp, cacheDirectory: String?) throws(RuntimeError) -> CompiledSeccomp {
        let usesNotify = profile.defaultAction == "SCMP_ACT_NOTIFY" || (profile.syscalls ?? []).contains { $0.action == "SCMP_ACT_NOTIFY" }
        if usesNotify && (profile.listenerPath ?? "").isEmpty {
            throw RuntimeError(.invalidArgument, "linux.seccomp uses SCMP_ACT_NOTIFY but has no listenerPath")
        }
        var flags = try filterFlags(profile.flags ?? [])
        if usesNotify { flags |= CompiledSeccomp.filterFlagNewListener }
        let program: [UInt8]
        if let cacheDirectory {
            let cache = SeccompCache(directory: cacheDirectory, profile: profile)
            if let cached = cache.lookUp() {
                program = cached
            } else {
                program = try generate(profile)
                cache.store(program)
            }
        } else {
            program = try generate(profile)
        }
        return CompiledSeccomp(program: program, flags: flags, listenerPath: usesNotify ? profile.listenerPath : nil,
                               listenerMetadata: profile.listenerMetadata)
    }

    /// libseccomp: the profile as rules, exported as BPF.
    static func generate(_ profile: LinuxSeccomp) throws(RuntimeError) -> [UInt8] {
        let defaultAction = try action(profile.defaultAction, errnoRet: profile.defaultErrnoRet)
        guard let context = seccomp_init(defaultAction) else {
            throw RuntimeError(.failed, "linux.seccomp: libseccomp could not start a filter")
        }
        defer { seccomp_release(context) }
        // berth sets no_new_privs itself, as process.noNewPrivileges says.
        _ = seccomp_attr_set(context, SCMP_FLTATR_CTL_NNP, 0)
        // A binary tree over system call numbers instead of a linear list:
        // a shorter path per call, and less for the kernel to check when it
        // precomputes the filter's per-syscall cache at load time.
        _ = seccomp_attr_set(context, SCMP_FLTATR_CTL_OPTIMIZE, 2)
        for name in profile.architectures ?? [] {
            let result = seccomp_arch_add(context, try architecture(name))
            if result != 0 && result != -EEXIST {
                throw RuntimeError.system("linux.seccomp: add architecture \(name)", Errno(-result))
            }
        }
        for rule in profile.syscalls ?? [] {
            let ruleAction = try action(rule.action, errnoRet: rule.errnoRet)
            let arguments = try (rule.args ?? []).map { (argument) throws(RuntimeError) -> scmp_arg_cmp in
                guard argument.index < 6 else { throw RuntimeError(.invalidArgument, "linux.seccomp: argument index \(argument.index) is above 5") }
                return scmp_arg_cmp(arg: argument.index, op: try comparison(argument.op), datum_a: argument.value, datum_b: argument.valueTwo ?? 0)
            }
            // libseccomp refuses a rule whose action is the default one; it adds nothing.
            if ruleAction == defaultAction { continue }
            for name in rule.names {
                let number = seccomp_syscall_resolve_name(name)
                // A name this architecture does not have is skipped, as runc does.
                if number == __NR_SCMP_ERROR { continue }
                // Conditions on one argument index are ANDed by libseccomp only
                // across different indexes: repeated indexes become one rule each
                // (OR), as runc does.
                let indexes = arguments.map(\.arg)
                let groups: [[scmp_arg_cmp]] = Set(indexes).count == indexes.count ? [arguments] : arguments.map { [$0] }
                for group in groups {
                    let result = group.withUnsafeBufferPointer {
                        seccomp_rule_add_array(context, ruleAction, number, UInt32($0.count), $0.baseAddress)
                    }
                    if result != 0 {
                        throw RuntimeError.system("linux.seccomp: rule for \(name)", Errno(-result))
                    }
                }
            }
        }
        // seccomp_export_bpf writes to a descriptor: a memfd keeps it off disk.
        let memfd = berth_memfd_create("berth-seccomp")
        guard memfd >= 0 else { throw RuntimeError.system("linux.seccomp: memfd_create", Errno.current) }
        let file = FileDescriptor(rawValue: memfd)
        defer { file.close() }
        let exported: Int32 = seccomp_export_bpf(context, memfd)
        if exported != 0 { throw RuntimeError.system("linux.seccomp: export the filter", Errno(-exported)) }
        _ = lseek(memfd, 0, SEEK_SET)
        return try step("linux.seccomp: read the filter") { () throws(Errno) in try file.readAll() }
    }
}

/// One compiled profile per file, named by a 64-bit hash of the key (the
/// profile's canonical JSON, the machine and libseccomp's version) and
/// holding the whole key, which must match byte for byte: a hash collision
/// can only cost a recompilation, never load another profile's filter.
struct SeccompCache {
    let directory: String
    let key: [UInt8]

    init(directory: String, profile: LinuxSeccomp) {
        self.directory = directory
        self.key = Array("berth-seccomp-3 \(SeccompCompiler.machine) libseccomp-\(SeccompCompiler.libraryVersion)\n".utf8)
            + Self.canonical(profile)
    }

    /// Every field of the profile that decides the filter, one per line in
    /// a fixed order (a JSONEncoder pass cost more than the rest of a lookup).
    static func canonical(_ profile: LinuxSeccomp) -> [UInt8] {
        var text = "default \(profile.defaultAction) \(profile.defaultErrnoRet.map(String.init) ?? "-")\n"
        text += "arch \((profile.architectures ?? []).joined(separator: " "))\n"
        text += "flags \((profile.flags ?? []).joined(separator: " "))\n"
        for rule in profile.syscalls ?? [] {
            text += "rule \(rule.action) \(rule.errnoRet.map(String.init) ?? "-")"
            for argument in rule.args ?? [] {
                text += " \(argument.index):\(argument.op):\(argument.value):\(argument.valueTwo.map(String.init) ?? "-")"
            }
            text += " |"
            for name in rule.names { text += " " + name }
            text += "\n"
        }
        return Array(text.utf8)
    }

    var path: String {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325 // FNV-1a
        for byte in key { hash = (hash ^ UInt64(byte)) &* 0x0000_0100_0000_01b3 }
        let hex = String(hash, radix: 16)
        return directory + "/" + String(repeating: "0", count: 16 - hex.count) + hex + ".bpf"
    }

    /// The directory, if it is ours alone: a filter another user could
    /// replace would be no filter at all.
    var isTrusted: Bool {
        guard let st = try? Files.lstat(directory) else { return false }
        return (st.st_mode & S_IFMT) == S_IFDIR && st.st_uid == geteuid() && st.st_mode & 0o022 == 0
    }

    func lookUp() -> [UInt8]? {
        guard isTrusted, let bytes = try? Files.read(path), bytes.count > 8 else { return nil }
        let keyLength = bytes.prefix(8).enumerated().reduce(0) { $0 | (Int($1.element) << (8 * $1.offset)) }
        guard keyLength == key.count, bytes.count > 8 + keyLength, bytes[8..<(8 + keyLength)].elementsEqual(key) else { return nil }
        let program = Array(bytes[(8 + keyLength)...])
        return program.count % 8 == 0 ? program : nil
    }

    func store(_ program: [UInt8]) {
        if !Files.isDirectory(directory) { try? Files.makeDirectories(directory, mode: 0o700) }
        guard isTrusted else { return }
        let length = (0..<8).map { UInt8((key.count >> (8 * $0)) & 0xff) }
        try? Files.writeAtomically(path, length + key + program, mode: 0o600)
    }
}

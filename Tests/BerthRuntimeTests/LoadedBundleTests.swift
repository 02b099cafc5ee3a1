#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Testing
import BerthOCI
import BerthOS
@testable import BerthRuntime

/// A bundle directory with a rootfs/ and a config.json.
struct TestBundle {
    let directory: TemporaryDirectory
    var path: String { directory.path }

    init() {
        directory = TemporaryDirectory("bundle")
        precondition(mkdir(directory.subpath("rootfs"), 0o755) == 0)
    }

    func write(_ text: String) throws {
        try Files.write(path + "/config.json", text)
    }

    func write(_ spec: Spec) throws {
        try Files.write(path + "/config.json", String(decoding: try JSONEncoder().encode(spec), as: UTF8.self))
    }

    func remove() { directory.remove() }
}

/// The smallest config LoadedBundle accepts, as a test starting point.
func minimalSpec() -> Spec {
    var linux = Linux()
    linux.namespaces = [LinuxNamespace(type: "pid"), LinuxNamespace(type: "mount"), LinuxNamespace(type: "uts")]
    return Spec(process: Process(args: ["/bin/true"], cwd: "/"), root: Root(path: "rootfs"), hostname: "h", linux: linux)
}

struct BadBundle: Sendable, CustomTestStringConvertible {
    enum Config: Sendable {
        case raw(String)
        case edit(@Sendable (inout Spec) -> Void)
    }
    let name: String
    let config: Config
    let code: RuntimeError.Code
    /// Phrases the message must contain; "<bundle>" stands for the bundle path.
    let phrases: [String]

    init(_ name: String, _ config: Config, _ code: RuntimeError.Code, _ phrases: String...) {
        self.name = name
        self.config = config
        self.code = code
        self.phrases = phrases
    }

    var testDescription: String { name }
}

struct GoodBundle: Sendable, CustomTestStringConvertible {
    let name: String
    let edit: @Sendable (inout Spec, String) -> Void
    var testDescription: String { name }
}

@Suite("LoadedBundle refuses bad bundles before anything is created")
struct LoadedBundleTests {
    static let badBundles: [BadBundle] = [
        BadBundle("malformed JSON", .raw("{ \"process\": "), .invalidArgument, "invalid config.json in <bundle>", "not valid JSON"),
        BadBundle("empty file", .raw(""), .invalidArgument, "invalid config.json", "not valid JSON"),
        BadBundle("a JSON array", .raw("[]"), .invalidArgument, "invalid config.json"),
        BadBundle("root without path", .raw(#"{"root": {}}"#), .invalidArgument, #"root: missing "path""#),
        BadBundle("args of the wrong type", .raw(#"{"process": {"args": "sh"}, "root": {"path": "rootfs"}}"#),
                  .invalidArgument, "process.args: wrong type of value"),
        BadBundle("a mount without destination", .raw(#"{"mounts": [{"type": "proc"}]}"#),
                  .invalidArgument, "mounts.[0]: missing \"destination\""),
        BadBundle("missing root", .edit { $0.root = nil }, .invalidArgument, "root.path is required"),
        BadBundle("missing rootfs directory", .edit { $0.root = Root(path: "no-such-rootfs") },
                  .notFound, "rootfs \"<bundle>/no-such-rootfs\" does not exist"),
        BadBundle("missing absolute rootfs", .edit { $0.root = Root(path: "/nonexistent/berth-rootfs") },
                  .notFound, "rootfs \"/nonexistent/berth-rootfs\" does not exist"),
        BadBundle("rootfs is a file", .edit { $0.root = Root(path: "config.json") }, .invalidArgument, "is not a directory"),
        BadBundle("missing process", .edit { $0.process = nil }, .invalidArgument, "process is required"),
        BadBundle("empty args", .edit { $0.process?.args = [] }, .invalidArgument, "process.args must not be empty"),
        BadBundle("no args", .edit { $0.process?.args = nil }, .invalidArgument, "process.args must not be empty"),
        BadBundle("relative cwd", .edit { $0.process?.cwd = "tmp" }, .invalidArgument, #"process.cwd "tmp" must be absolute"#),
        BadBundle("empty cwd", .edit { $0.process?.cwd = "" }, .invalidArgument, "must be absolute"),
        BadBundle("unknown namespace type", .edit { $0.linux?.namespaces?.append(LinuxNamespace(type: "bogus")) },
                  .invalidArgument, #"unknown namespace type "bogus""#),
        BadBundle("namespace type in the wrong case", .edit { $0.linux?.namespaces?.append(LinuxNamespace(type: "PID")) },
                  .invalidArgument, #"unknown namespace type "PID""#),
        BadBundle("duplicate namespace", .edit { $0.linux?.namespaces?.append(LinuxNamespace(type: "pid")) },
                  .invalidArgument, #"namespace "pid" is listed twice"#),
        BadBundle("duplicate namespace, once with a path",
                  .edit { $0.linux?.namespaces?.append(LinuxNamespace(type: "pid", path: "/proc/self/ns/pid")) },
                  .invalidArgument, #"namespace "pid" is listed twice"#),
        BadBundle("no mount namespace", .edit { $0.linux?.namespaces?.removeAll { $0.type == "mount" } },
                  .invalidArgument, "has no mount namespace"),
        BadBundle("no linux section", .edit { $0.linux = nil; $0.hostname = nil }, .invalidArgument, "has no mount namespace"),
        BadBundle("hostname without uts namespace", .edit { $0.linux?.namespaces?.removeAll { $0.type == "uts" } },
                  .invalidArgument, "sets a hostname but has no new uts namespace"),
        BadBundle("hostname with a joined uts namespace", .edit {
            $0.linux?.namespaces?.removeAll { $0.type == "uts" }
            $0.linux?.namespaces?.append(LinuxNamespace(type: "uts", path: "/proc/self/ns/uts"))
        }, .invalidArgument, "sets a hostname but has no new uts namespace"),
        BadBundle("user namespace without mappings", .edit { $0.linux?.namespaces?.append(LinuxNamespace(type: "user")) },
                  .invalidArgument, "has a user namespace but no uidMappings/gidMappings"),
        BadBundle("user namespace with uid mappings only", .edit {
            $0.linux?.namespaces?.append(LinuxNamespace(type: "user"))
            $0.linux?.uidMappings = [LinuxIDMapping(containerID: 0, hostID: 1000, size: 1)]
        }, .invalidArgument, "no uidMappings/gidMappings"),
        BadBundle("joining a user namespace while giving maps", .edit {
            $0.linux?.namespaces?.append(LinuxNamespace(type: "user", path: "/proc/self/ns/user"))
            $0.linux?.uidMappings = [LinuxIDMapping(containerID: 0, hostID: 1000, size: 1)]
        }, .invalidArgument, "joins a user namespace by path and also gives uidMappings"),
        BadBundle("missing namespace path", .edit {
            $0.linux?.namespaces?.append(LinuxNamespace(type: "network", path: "/nonexistent/netns"))
        }, .notFound, #"network namespace path "/nonexistent/netns" does not exist"#),
        BadBundle("unknown rlimit", .edit { $0.process?.rlimits = [POSIXRlimit(type: "RLIMIT_BOGUS", hard: 1, soft: 1)] },
                  .invalidArgument, #"unknown rlimit type "RLIMIT_BOGUS""#),
        BadBundle("rlimit without RLIMIT_ prefix", .edit { $0.process?.rlimits = [POSIXRlimit(type: "NOFILE", hard: 1, soft: 1)] },
                  .invalidArgument, #"unknown rlimit type "NOFILE""#),
        BadBundle("soft rlimit above hard", .edit {
            $0.process?.rlimits = [POSIXRlimit(type: "RLIMIT_NOFILE", hard: 1024, soft: 2048)]
        }, .invalidArgument, "RLIMIT_NOFILE: soft limit 2048 is above hard limit 1024"),
        BadBundle("unknown bounding capability", .edit {
            $0.process?.capabilities = LinuxCapabilities(bounding: ["CAP_CHOWN", "CAP_BOGUS"])
        }, .invalidArgument, #"unknown capability "CAP_BOGUS""#),
        BadBundle("unknown ambient capability", .edit {
            $0.process?.capabilities = LinuxCapabilities(ambient: ["CAP_FLY"])
        }, .invalidArgument, #"unknown capability "CAP_FLY""#),
        BadBundle("relative mount destination", .edit {
            $0.mounts = [Mount(destination: "mnt", type: "tmpfs", source: "tmpfs")]
        }, .invalidArgument, #"mount destination "mnt" must be absolute"#),
        BadBundle("bind mount source missing", .edit {
            $0.mounts = [Mount(destination: "/mnt", type: "none", source: "/nonexistent/berth-src", options: ["rbind", "ro"])]
        }, .notFound, #"bind mount source "/nonexistent/berth-src" for /mnt does not exist"#),
        BadBundle("bind mount by type, source missing", .edit {
            $0.mounts = [Mount(destination: "/data", type: "bind", source: "/nonexistent/berth-src")]
        }, .notFound, #"bind mount source "/nonexistent/berth-src" for /data does not exist"#),
        BadBundle("relative bind source missing from the bundle", .edit {
            $0.mounts = [Mount(destination: "/data", source: "data", options: ["bind"])]
        }, .notFound, #"bind mount source "data" for /data does not exist"#),
        BadBundle("bind mount without source", .edit {
            $0.mounts = [Mount(destination: "/data", options: ["bind"])]
        }, .notFound, #"bind mount source "" for /data does not exist"#),
    ]

    @Test("the error names what is wrong", arguments: badBundles)
    func rejects(bad: BadBundle) throws {
        let bundle = TestBundle()
        defer { bundle.remove() }
        switch bad.config {
        case .raw(let text): try bundle.write(text)
        case .edit(let edit):
            var spec = minimalSpec()
            edit(&spec)
            try bundle.write(spec)
        }
        let before = Files.list(bundle.path).sorted()
        do {
            _ = try LoadedBundle(path: bundle.path)
            Issue.record("bundle was accepted")
        } catch {
            #expect(error.code == bad.code)
            for phrase in bad.phrases {
                let phrase = phrase.replacingOccurrences(of: "<bundle>", with: bundle.path)
                #expect(error.message.contains(phrase), "message: \(error.message)")
            }
            #expect(!error.message.contains("\n"), "one line for the user")
        }
        #expect(Files.list(bundle.path).sorted() == before, "nothing created in the bundle")
    }

    static let goodBundles: [GoodBundle] = [
        GoodBundle(name: "minimal") { _, _ in },
        GoodBundle(name: "berth spec") { spec, _ in spec = Spec.default() },
        GoodBundle(name: "berth spec --rootless") { spec, _ in spec = Spec.rootless(uid: 1000, gid: 1000) },
        GoodBundle(name: "podman's default device rules") { spec, _ in
            spec.linux?.resources = .object(["devices": .array([.object(["allow": .bool(false), "access": .string("rwm")])]),
                                             "pids": .object(["limit": .number(0)])])
        },
        GoodBundle(name: "relative bind source inside the bundle") { spec, bundle in
            mkdir(bundle + "/data", 0o755)
            spec.mounts = [Mount(destination: "/data", type: "bind", source: "data", options: ["rbind"])]
        },
        GoodBundle(name: "absolute rootfs path") { spec, bundle in spec.root = Root(path: bundle + "/rootfs") },
        GoodBundle(name: "joined network namespace") { spec, _ in
            spec.linux?.namespaces?.append(LinuxNamespace(type: "network", path: "/proc/self/ns/net"))
        },
        GoodBundle(name: "joined mount namespace") { spec, _ in
            spec.linux?.namespaces?.removeAll { $0.type == "mount" }
            spec.linux?.namespaces?.append(LinuxNamespace(type: "mount", path: "/proc/self/ns/mnt"))
        },
        GoodBundle(name: "all namespace types") { spec, _ in
            spec.linux?.namespaces = ["pid", "network", "mount", "ipc", "uts", "user", "cgroup", "time"].map { LinuxNamespace(type: $0) }
            spec.linux?.uidMappings = [LinuxIDMapping(containerID: 0, hostID: 1000, size: 1)]
            spec.linux?.gidMappings = [LinuxIDMapping(containerID: 0, hostID: 1000, size: 1)]
        },
        GoodBundle(name: "empty hostname without uts") { spec, _ in
            spec.hostname = ""
            spec.linux?.namespaces?.removeAll { $0.type == "uts" }
        },
        GoodBundle(name: "capabilities in any spelling, all rlimits") { spec, _ in
            spec.process?.capabilities = LinuxCapabilities(bounding: ["chown", "CAP_KILL", "sys_admin"], ambient: ["cap_kill"])
            spec.process?.rlimits = Rlimits.table.keys.map { POSIXRlimit(type: $0, hard: 10, soft: 10) }
        },
    ]

    @Test("valid bundles load", arguments: goodBundles)
    func accepts(good: GoodBundle) throws {
        let bundle = TestBundle()
        defer { bundle.remove() }
        var spec = minimalSpec()
        good.edit(&spec, bundle.path)
        try bundle.write(spec)
        let loaded = try LoadedBundle(path: bundle.path)
        #expect(loaded.spec == spec)
        #expect(loaded.configBytes == (try Files.read(bundle.path + "/config.json")))
    }

    @Test("a missing bundle and a bundle without config.json are told apart")
    func missing() throws {
        let bundle = TestBundle()
        defer { bundle.remove() }
        do {
            _ = try LoadedBundle(path: bundle.path + "/nope")
            Issue.record("accepted")
        } catch {
            #expect(error.code == .notFound)
            #expect(error.message == "bundle \"\(bundle.path)/nope\": no such directory")
        }
        do {
            _ = try LoadedBundle(path: bundle.path)
            Issue.record("accepted")
        } catch {
            #expect(error.code == .notFound)
            #expect(error.message == "bundle \"\(bundle.path)\": config.json not found")
        }
    }

    @Test("paths are made absolute and the rootfs is resolved through symlinks")
    func resolvedPaths() throws {
        let bundle = TestBundle()
        defer { bundle.remove() }
        try bundle.write(minimalSpec())
        let alias = bundle.path + "-alias"
        #expect(symlink(bundle.path, alias) == 0)
        defer { unlink(alias) }
        let loaded = try LoadedBundle(path: alias + "/./")
        #expect(loaded.path == alias)
        #expect(loaded.rootfs == (try Files.realPath(bundle.path)) + "/rootfs")
        #expect(loaded.resolveSource("data") == alias + "/data")
        #expect(loaded.resolveSource("/srv") == "/srv")
    }

    @Test("clone flags cover new namespaces only, not joined ones")
    func cloneFlags() throws {
        let bundle = TestBundle()
        defer { bundle.remove() }
        var spec = minimalSpec()
        spec.linux?.namespaces = [
            LinuxNamespace(type: "pid"), LinuxNamespace(type: "mount"), LinuxNamespace(type: "uts"), LinuxNamespace(type: "ipc"),
            LinuxNamespace(type: "network", path: "/proc/self/ns/net"), LinuxNamespace(type: "cgroup", path: ""),
        ]
        try bundle.write(spec)
        let loaded = try LoadedBundle(path: bundle.path)
        let newPID: UInt = 0x2000_0000, newNS: UInt = 0x0002_0000, newUTS: UInt = 0x0400_0000
        let newIPC: UInt = 0x0800_0000, newCgroup: UInt = 0x0200_0000
        #expect(loaded.cloneFlags == newPID | newNS | newUTS | newIPC | newCgroup)
        #expect(loaded.hasNewNamespace("cgroup"), "an empty path means a new namespace")
        #expect(!loaded.hasNewNamespace("network"))
        #expect(loaded.namespacePath("network") == "/proc/self/ns/net")
        #expect(loaded.namespacePath("cgroup") == nil)
        #expect(loaded.namespacePath("user") == nil)
    }
}

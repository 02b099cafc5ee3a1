#if canImport(Glibc)
import Glibc
#endif
import CBerth
import BerthOCI
import BerthOS
import FoundationEssentials

/// A bundle as the runtime uses it: the decoded Spec and the resolved
/// paths, validated before anything is created so that bad input leaves
/// nothing behind.
struct LoadedBundle: Sendable {
    let path: String
    let spec: Spec
    let rootfs: String
    /// The engine's layered root (annotation `run.berth.rootfs.overlay`), mounted on `rootfs`.
    let overlay: RootfsOverlay?
    let configBytes: [UInt8]

    static let namespaceTypes: [String: Int32] = [
        "pid": BERTH_CLONE_NEWPID, "network": BERTH_CLONE_NEWNET, "mount": BERTH_CLONE_NEWNS,
        "ipc": BERTH_CLONE_NEWIPC, "uts": BERTH_CLONE_NEWUTS, "user": BERTH_CLONE_NEWUSER,
        "cgroup": BERTH_CLONE_NEWCGROUP, "time": BERTH_CLONE_NEWTIME,
    ]

    init(path bundleArgument: String?) throws(RuntimeError) {
        let path = Files.absolute(bundleArgument ?? ".")
        let configPath = path + "/config.json"
        let bytes: [UInt8]
        do {
            bytes = try Files.read(configPath)
        } catch .permissionDenied {
            throw RuntimeError(.permissionDenied, "bundle \"\(path)\": permission denied")
        } catch .noSuchFile {
            if !Files.isDirectory(path) { throw RuntimeError(.notFound, "bundle \"\(path)\": no such directory") }
            throw RuntimeError(.notFound, "bundle \"\(path)\": config.json not found")
        } catch {
            throw RuntimeError.system("read \(configPath)", error)
        }
        let spec: Spec
        do {
            spec = try JSONDecoder().decode(Spec.self, from: Data(bytes))
        } catch let error as DecodingError {
            throw RuntimeError(.invalidArgument, "invalid config.json in \(path): \(Self.describe(error))")
        } catch {
            throw RuntimeError(.invalidArgument, "invalid config.json in \(path): \(error)")
        }
        guard let root = spec.root else {
            throw RuntimeError(.invalidArgument, "invalid config.json in \(path): root.path is required")
        }
        let rootfs = root.path.hasPrefix("/") ? root.path : path + "/" + root.path
        var st = Glibc.stat()
        if fstatat(AT_FDCWD, rootfs, &st, 0) != 0 {
            let error = Errno.current
            if error == .permissionDenied { throw RuntimeError(.permissionDenied, "rootfs \"\(rootfs)\": permission denied") }
            throw RuntimeError(.notFound, "rootfs \"\(rootfs)\" does not exist")
        }
        guard (st.st_mode & S_IFMT) == S_IFDIR else {
            throw RuntimeError(.invalidArgument, "rootfs \"\(rootfs)\" is not a directory")
        }
        self.path = path
        self.spec = spec
        self.rootfs = (try? Files.realPath(rootfs)) ?? rootfs
        self.overlay = try RootfsOverlay.from(annotations: spec.annotations)
        self.configBytes = bytes
        try validate()
    }

    /// Checks what would otherwise fail half-way through a launch.
    func validate() throws(RuntimeError) {
        guard let process = spec.process else {
            throw RuntimeError(.invalidArgument, "invalid config.json in \(path): process is required")
        }
        guard let args = process.args, !args.isEmpty else {
            throw RuntimeError(.invalidArgument, "invalid config.json in \(path): process.args must not be empty")
        }
        guard process.cwd.hasPrefix("/") else {
            throw RuntimeError(.invalidArgument, "invalid config.json in \(path): process.cwd \"\(process.cwd)\" must be absolute")
        }
        var seen = Set<String>()
        for namespace in spec.linux?.namespaces ?? [] {
            guard Self.namespaceTypes[namespace.type] != nil else {
                throw RuntimeError(.invalidArgument, "unknown namespace type \"\(namespace.type)\" in config.json")
            }
            guard seen.insert(namespace.type).inserted else {
                throw RuntimeError(.invalidArgument, "namespace \"\(namespace.type)\" is listed twice in config.json")
            }
            if let nsPath = namespace.path, !nsPath.isEmpty {
                guard Files.exists(nsPath) else {
                    throw RuntimeError(.notFound, "\(namespace.type) namespace path \"\(nsPath)\" does not exist")
                }
            }
        }
        if !hasNewNamespace("mount") && namespacePath("mount") == nil {
            throw RuntimeError(.invalidArgument, "config.json has no mount namespace; berth needs one to set up the root file system")
        }
        if (spec.hostname.map { !$0.isEmpty } ?? false) && !hasNewNamespace("uts") {
            throw RuntimeError(.invalidArgument, "config.json sets a hostname but has no new uts namespace")
        }
        if namespacePath("user") != nil && !((spec.linux?.uidMappings ?? []).isEmpty) {
            throw RuntimeError(.invalidArgument, "config.json joins a user namespace by path and also gives uidMappings: a joined namespace keeps its maps")
        }
        if hasNewNamespace("user") {
            if (spec.linux?.uidMappings ?? []).isEmpty || (spec.linux?.gidMappings ?? []).isEmpty {
                throw RuntimeError(.invalidArgument, "config.json has a user namespace but no uidMappings/gidMappings")
            }
        }
        for limit in process.rlimits ?? [] {
            guard Rlimits.resource(named: limit.type) != nil else {
                throw RuntimeError(.invalidArgument, "unknown rlimit type \"\(limit.type)\" in config.json")
            }
            if limit.soft > limit.hard {
                throw RuntimeError(.invalidArgument, "\(limit.type): soft limit \(limit.soft) is above hard limit \(limit.hard)")
            }
        }
        if let caps = process.capabilities {
            for name in [caps.bounding, caps.effective, caps.permitted, caps.inheritable, caps.ambient].compactMap({ $0 }).joined() {
                guard Capabilities.number(of: name) != nil else {
                    throw RuntimeError(.invalidArgument, "unknown capability \"\(name)\" in config.json")
                }
            }
        }
        try LinuxSecurityModules.check(process: process, linux: spec.linux)
        if let personality = spec.linux?.personality, !personality.isEmpty {
            throw RuntimeError(.unsupported, "linux.personality is not supported by berth")
        }
        if let intelRdt = spec.linux?.intelRdt, !intelRdt.isEmpty {
            throw RuntimeError(.unsupported, "linux.intelRdt is not supported by berth (no resctrl support)")
        }
        for mount in spec.mounts ?? [] {
            guard mount.destination.hasPrefix("/") else {
                throw RuntimeError(.invalidArgument, "mount destination \"\(mount.destination)\" must be absolute")
            }
            let options = MountOptions(mount.options ?? [])
            if options.isBind || mount.type == "bind" {
                guard let source = mount.source, Files.exists(resolveSource(source)) else {
                    throw RuntimeError(.notFound, "bind mount source \"\(mount.source ?? "")\" for \(mount.destination) does not exist")
                }
            }
        }
    }

    func resolveSource(_ source: String) -> String {
        source.hasPrefix("/") ? source : path + "/" + source
    }

    func hasNewNamespace(_ type: String) -> Bool {
        spec.linux?.namespaces?.contains { $0.type == type && ($0.path ?? "").isEmpty } ?? false
    }

    func namespacePath(_ type: String) -> String? {
        guard let path = spec.linux?.namespaces?.first(where: { $0.type == type })?.path, !path.isEmpty else { return nil }
        return path
    }

    /// Flags for clone(): every namespace created new (user and pid joins are done by the parent).
    var cloneFlags: UInt {
        var flags: UInt = 0
        for namespace in spec.linux?.namespaces ?? [] where (namespace.path ?? "").isEmpty {
            flags |= UInt(Self.namespaceTypes[namespace.type] ?? 0)
        }
        return flags
    }

    static func describe(_ error: DecodingError) -> String {
        func path(_ context: DecodingError.Context) -> String {
            let keys = context.codingPath.map { key in key.intValue.map { "[\($0)]" } ?? key.stringValue }
            return keys.isEmpty ? "" : keys.joined(separator: ".") + ": "
        }
        switch error {
        case .typeMismatch(_, let context), .valueNotFound(_, let context):
            return path(context) + "wrong type of value"
        case .keyNotFound(let key, let context):
            return path(context) + "missing \"\(key.stringValue)\""
        case .dataCorrupted(let context):
            return context.codingPath.isEmpty ? "not valid JSON" : path(context) + "invalid value"
        @unknown default:
            return "\(error)"
        }
    }
}

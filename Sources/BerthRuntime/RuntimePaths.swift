#if canImport(Glibc)
import Glibc
#endif
import BerthOS

/// Where container state lives: /run/berth/runtime as root,
/// $XDG_RUNTIME_DIR/berth/runtime rootless; `--root` overrides.
public struct RuntimePaths: Sendable {
    public let stateRoot: String

    public init(root: String?) {
        if let root, !root.isEmpty {
            stateRoot = Files.absolute(root)
        } else {
            stateRoot = RuntimePaths.defaultStateRoot
        }
    }

    /// Unprivileged: not root, or root only inside a user namespace (rootless
    /// podman runs its OCI runtime as uid 0 of its own user namespace, where
    /// /run is not writable, mknod is refused and rlimits cannot be raised).
    public static let isRootless: Bool = geteuid() != 0 || runningInUserNamespace

    /// Whether this process is in a user namespace other than the initial one,
    /// whose uid map is the identity over the whole range.
    public static var runningInUserNamespace: Bool {
        guard let map = try? Files.readString("/proc/self/uid_map") else { return false }
        let fields = map.split(whereSeparator: { $0 == " " || $0 == "\n" })
        return !(fields.count == 3 && fields[0] == "0" && fields[1] == "0" && fields[2] == "4294967295")
    }

    public static var defaultStateRoot: String {
        if !isRootless { return "/run/berth/runtime" }
        if let dir = getenv("XDG_RUNTIME_DIR").map({ String(cString: $0) }), !dir.isEmpty {
            return dir + "/berth/runtime"
        }
        return "/tmp/berth-\(geteuid())/runtime"
    }

    public func directory(of id: String) -> String { stateRoot + "/" + id }

    /// Compiled seccomp filters, reused across runs. "@" is not allowed in
    /// container ids, so it never names a container.
    public var seccompCache: String { stateRoot + "/@seccomp" }

    /// Container ids are used as directory names: keep them to what runc allows.
    public static func validate(id: String) throws(RuntimeError) {
        let allowed = id.utf8.allSatisfy { c in
            (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a) || c == 0x2d || c == 0x2e || c == 0x5f || c == 0x2b
        }
        guard !id.isEmpty, allowed, id != ".", id != "..", id.utf8.count <= 1024 else {
            throw RuntimeError(.invalidArgument, "invalid container id \"\(id)\": use letters, digits, '-', '_', '+' and '.'")
        }
    }
}

/// Facts `berth features` reports.
public enum RuntimeInfo {
    public static var mountOptions: [String] { MountOptions.known }
    public static var capabilities: [String] { Array(Capabilities.names.prefix(Capabilities.lastCap + 1)) }
}

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

    public static var isRootless: Bool { geteuid() != 0 }

    public static var defaultStateRoot: String {
        if !isRootless { return "/run/berth/runtime" }
        if let dir = getenv("XDG_RUNTIME_DIR").map({ String(cString: $0) }), !dir.isEmpty {
            return dir + "/berth/runtime"
        }
        return "/tmp/berth-\(geteuid())/runtime"
    }

    public func directory(of id: String) -> String { stateRoot + "/" + id }

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

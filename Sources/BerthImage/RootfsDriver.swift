#if canImport(Glibc)
import Glibc
#endif
import BerthOS

/// How container roots are assembled from layers: the kernel's overlayfs
/// (root always; rootless inside the user namespace on kernels ≥ 5.11),
/// else fuse-overlayfs, else a copy of the layers. `BERTH_STORAGE_DRIVER`
/// forces one.
package enum RootfsDriver: String, Sendable {
    case overlay
    case fuseOverlayfs = "fuse-overlayfs"
    /// The layers copied into the container's directory at start (slow; the last resort).
    case copy

    package static func detect(rootless: Bool) -> RootfsDriver {
        if let forced = getenv("BERTH_STORAGE_DRIVER").map({ String(cString: $0) }), let driver = RootfsDriver(rawValue: forced) {
            return driver
        }
        if !rootless || kernelAtLeast(5, 11) { return .overlay }
        let candidates: [String] = ["/usr/bin/fuse-overlayfs", "/bin/fuse-overlayfs"]
        let fuse = candidates.contains { access($0, X_OK) == 0 }
        return fuse && access("/dev/fuse", R_OK | W_OK) == 0 ? .fuseOverlayfs : .copy
    }

    package static func kernelAtLeast(_ major: Int, _ minor: Int) -> Bool {
        var name = utsname()
        uname(&name)
        let release = withUnsafeBytes(of: &name.release) { raw in
            String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
        }
        let parts = release.split(whereSeparator: { !$0.isNumber }).prefix(2).compactMap { Int($0) }
        guard parts.count == 2 else { return false }
        return (parts[0], parts[1]) >= (major, minor)
    }

    /// What `berth info` says about it.
    package static func describe(rootless: Bool) -> String {
        let driver = detect(rootless: rootless)
        switch driver {
        case .overlay: return rootless ? "overlay (native, in the user namespace, userxattr)" : "overlay (native)"
        case .fuseOverlayfs: return "fuse-overlayfs"
        case .copy: return "copy (the layers copied into each container)"
        }
    }
}

#if canImport(Glibc)
import Glibc
#endif
import BerthOS
import CBerth

/// How container roots are assembled from layers: the kernel's overlayfs
/// (root always; rootless inside the user namespace on kernels ≥ 5.11),
/// else fuse-overlayfs, else a copy of the layers. `BERTH_STORAGE_DRIVER`
/// forces one.
package enum RootfsDriver: String, Sendable {
    case overlay
    case fuseOverlayfs = "fuse-overlayfs"
    /// The layers copied into the container's directory at start (slow; the last resort).
    case copy

    /// `upperOn`: a directory on the file system the containers' upper
    /// directories go to (the store's). The kernel's overlay cannot take an
    /// upper directory on an overlay (EINVAL): a store that is itself on
    /// one (a container's or a live system's root) gets fuse-overlayfs or,
    /// without it, copies.
    package static func detect(rootless: Bool, upperOn: String? = nil) -> RootfsDriver {
        if let forced = getenv("BERTH_STORAGE_DRIVER").map({ String(cString: $0) }), let driver = RootfsDriver(rawValue: forced) {
            return driver
        }
        let nested = upperOn.map(isOnOverlay) ?? false
        if !nested && (!rootless || kernelAtLeast(5, 11)) { return .overlay }
        let candidates: [String] = ["/usr/bin/fuse-overlayfs", "/bin/fuse-overlayfs"]
        let fuse = candidates.contains { access($0, X_OK) == 0 }
        return fuse && access("/dev/fuse", R_OK | W_OK) == 0 ? .fuseOverlayfs : .copy
    }

    /// Whether `path` (or its nearest existing parent) is on an overlay file system.
    package static func isOnOverlay(_ path: String) -> Bool {
        var current = path
        while true {
            let fd = open(current, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
            if fd >= 0 {
                defer { close(fd) }
                return berth_fstatfs_type(fd) == 0x794c_7630 // OVERLAYFS_SUPER_MAGIC
            }
            guard let slash = current.lastIndex(of: "/"), slash != current.startIndex else { return false }
            current = String(current[..<slash])
        }
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
    package static func describe(rootless: Bool, upperOn: String? = nil) -> String {
        let driver = detect(rootless: rootless, upperOn: upperOn)
        switch driver {
        case .overlay: return rootless ? "overlay (native, in the user namespace, userxattr)" : "overlay (native)"
        case .fuseOverlayfs: return "fuse-overlayfs"
        case .copy: return "copy (the layers copied into each container)"
        }
    }
}

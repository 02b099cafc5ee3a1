#if canImport(Glibc)
import Glibc
#endif
import BerthOS

/// Overlay volumes (`-v HOSTDIR:/path:O`): the container sees HOSTDIR
/// through an overlay whose upper and work directories are its own, under
/// `<container directory>/overlay/<index of the mount>/`. HOSTDIR is the
/// only lower layer and is never written.
package enum OverlayVolume {
    /// Where the overlay of the container's mount number `index` (its place in `config.mounts`) keeps its changes.
    package static func directory(container: String, index: Int) -> String {
        container + "/overlay/\(index)"
    }
}

extension Engine {
    /// Each start begins from HOSTDIR again: the upper and work directories
    /// of the container's overlay volumes are removed and made anew (the
    /// upper one with HOSTDIR's mode, and as root its owner, which the
    /// overlay's top shows). Rootless, what the container wrote as its other
    /// users belongs to subordinate ids: `ContainerStore.removeDirectory`
    /// removes that through `berth unshare rm -rf`, as for a removed container.
    func resetOverlayVolumes(_ container: Container) throws(StartError) {
        let mounts = container.config.mounts.enumerated().filter { $0.element.type == "overlay" }
        guard !mounts.isEmpty else { return }
        let top = containers.path(container.id) + "/overlay"
        containers.removeDirectory(top)
        guard !Files.exists(top) else {
            throw StartError(code: 125, message: "cannot remove the overlay volumes' changes in \(top)")
        }
        for (index, mount) in mounts {
            let directory = OverlayVolume.directory(container: containers.path(container.id), index: index)
            var st = stat()
            guard stat(mount.source, &st) == 0, (st.st_mode & S_IFMT) == S_IFDIR else {
                throw StartError(code: 125, message: "overlay volume source \"\(mount.source)\" is not a directory on the host")
            }
            do {
                try Files.makeDirectories(directory + "/work", mode: 0o700)
                try Files.makeDirectories(directory + "/upper", mode: 0o700)
            } catch {
                throw StartError(code: 125, message: "prepare the overlay volume on \(mount.destination) in \(directory): \(error)")
            }
            if geteuid() == 0 { _ = chown(directory + "/upper", st.st_uid, st.st_gid) }
            _ = chmod(directory + "/upper", st.st_mode & 0o7777)
        }
    }
}

#if canImport(Glibc)
import Glibc
#endif
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import BerthOCI
import BerthOS
import CBerth

/// A root file system assembled from image layers, mounted by the container's
/// init inside its own mount (and user) namespace in place of the bind of
/// root.path, so the mount disappears with the container. The engine puts it
/// in config.json as the annotation `run.berth.rootfs.overlay` (JSON); a
/// bundle without it is an ordinary runc bundle.
public struct RootfsOverlay: Codable, Equatable, Sendable {
    public static let annotation = "run.berth.rootfs.overlay"

    public enum Driver: String, Codable, Sendable {
        /// The kernel's overlayfs (rootless: inside the user namespace, kernel ≥ 5.11, `userxattr`).
        case overlay
        /// fuse-overlayfs, for kernels whose overlayfs refuses user namespaces.
        case fuseOverlayfs = "fuse-overlayfs"
        /// No overlay at all: the layers copied into `upper`, which is bound on root.path.
        case copy
    }

    public var driver: Driver
    /// Lower directories are given relative to this directory (keeps the
    /// mount options short: a page holds ~55 layers).
    public var layersDirectory: String
    /// Topmost first, relative to `layersDirectory`.
    public var lower: [String]
    public var upper: String
    public var work: String
    /// Overlay xattrs in the user.* namespace (rootless layers are unpacked so).
    public var userxattr: Bool
    /// Named volumes to fill from the image on their first mount (docker's
    /// copy-up): done by the init once the root is mounted, as the
    /// container's root, so owners and modes come across as the image has them.
    public var copyUp: [CopyUp]? = nil

    public struct CopyUp: Codable, Equatable, Sendable {
        /// The path in the container.
        public var path: String
        /// The volume's data directory on the host.
        public var volume: String
        public init(path: String, volume: String) {
            self.path = path
            self.volume = volume
        }
    }

    public init(driver: Driver, layersDirectory: String, lower: [String], upper: String, work: String, userxattr: Bool) {
        self.driver = driver
        self.layersDirectory = layersDirectory
        self.lower = lower
        self.upper = upper
        self.work = work
        self.userxattr = userxattr
    }

    static func from(annotations: [String: String]?) throws(RuntimeError) -> RootfsOverlay? {
        guard let text = annotations?[annotation] else { return nil }
        guard let overlay = try? JSONDecoder().decode(RootfsOverlay.self, from: Data(text.utf8)) else {
            throw RuntimeError(.invalidArgument, "annotation \(annotation) is not a valid overlay description")
        }
        for path in [overlay.layersDirectory, overlay.upper, overlay.work] + overlay.lower
        where path.contains(",") || path.contains(":") || path.isEmpty {
            throw RuntimeError(.invalidArgument, "overlay path \"\(path)\" cannot be used (empty, or contains ',' or ':')")
        }
        guard !overlay.lower.isEmpty else { throw RuntimeError(.invalidArgument, "overlay has no lower directory") }
        return overlay
    }

    var options: String {
        var text = "lowerdir=\(lower.joined(separator: ":")),upperdir=\(upper),workdir=\(work)"
        if userxattr && driver == .overlay { text += ",userxattr" }
        return text
    }

    /// Copies what the image has at each copy-up path into its volume while
    /// the volume is empty. The image side is resolved inside `root`, never
    /// following a link out of it.
    func copyUpVolumes(root: SecureRoot) throws(RuntimeError) {
        for entry in copyUp ?? [] {
            guard let source = try? root.open(entry.path, O_RDONLY | O_DIRECTORY) else { continue }
            defer { source.close() }
            let destination = open(entry.volume, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
            guard destination >= 0 else { throw RuntimeError.system("open volume \(entry.volume)", Errno.current) }
            defer { close(destination) }
            guard let existing = try? directoryEntries(FileDescriptor(rawValue: destination)), existing.isEmpty else { continue }
            do { try RootfsCopy.apply(layer: source.rawValue, onto: destination) } catch {
                throw RuntimeError(.failed, "copy \(entry.path) of the image into its volume: \(error.message)")
            }
            // The volume's top takes the image directory's owner and mode.
            var st = stat()
            if fstat(source.rawValue, &st) == 0 {
                _ = fchown(destination, st.st_uid, st.st_gid)
                _ = fchmod(destination, st.st_mode & 0o7777)
            }
        }
    }

    /// Mounts the overlay on `target` (called by the container's init).
    func mount(on target: String) throws(RuntimeError) {
        let saved = open(".", BERTH_O_PATH | O_DIRECTORY | O_CLOEXEC)
        defer { if saved >= 0 { _ = fchdir(saved); _ = close(saved) } }
        guard chdir(layersDirectory) == 0 else { throw RuntimeError.system("chdir \(layersDirectory)", Errno.current) }
        let opts = options
        guard opts.utf8.count < 4000 else {
            throw RuntimeError(.invalidArgument, "too many layers for one overlay mount (\(lower.count))")
        }
        switch driver {
        case .copy:
            let destination = open(upper, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
            guard destination >= 0 else { throw RuntimeError.system("open \(upper)", Errno.current) }
            defer { close(destination) }
            for layer in lower.reversed() {
                let source = open(layer, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
                guard source >= 0 else { throw RuntimeError.system("open layer \(layer)", Errno.current) }
                defer { close(source) }
                do { try RootfsCopy.apply(layer: source, onto: destination) } catch {
                    throw RuntimeError(.failed, "copy layer \(layer): \(error.message)")
                }
            }
            try step("bind mount \(upper) on \(target)") { () throws(Errno) in
                try BerthOS.mount(source: upper, target: target, type: nil, flags: UInt(MS_BIND | MS_REC))
            }
        case .overlay:
            try step("mount overlay on \(target)") { () throws(Errno) in
                try BerthOS.mount(source: "overlay", target: target, type: "overlay", flags: 0, data: opts)
            }
        case .fuseOverlayfs:
            let candidates: [String] = ["/usr/bin/fuse-overlayfs", "/bin/fuse-overlayfs", "/usr/local/bin/fuse-overlayfs"]
            let program = candidates.first { access($0, X_OK) == 0 }
            guard let program else { throw RuntimeError(.notFound, "fuse-overlayfs not found (install the fuse-overlayfs package)") }
            let result: Subprocess.Result
            do {
                result = try Subprocess.run(program, arguments: ["fuse-overlayfs", "-o", opts, target], environment: [], captureStandardError: true)
            } catch {
                throw RuntimeError.system("run fuse-overlayfs", error)
            }
            guard result.status == .exited(0) else {
                let detail = result.standardError.trimmed.split(separator: "\n").last.map(String.init) ?? "failed"
                throw RuntimeError(.failed, "fuse-overlayfs on \(target): \(detail)")
            }
        }
    }
}

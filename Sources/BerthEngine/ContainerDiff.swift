#if canImport(Glibc)
import Glibc
#endif
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import BerthOS
import BerthRuntime
import CBerth

// The engine side of `berth diff`: what a container changed in its root
// compared with its image, read from the overlay's upper directory and the
// image's layer directories (never a mount), every directory opened beneath
// the one before it with O_NOFOLLOW, nothing followed.

/// One line of `berth diff`: a path of the container's root and what
/// happened to it.
package struct FileChange: Sendable, Equatable, CustomStringConvertible {
    package enum Kind: String, Sendable { case added = "A", changed = "C", deleted = "D" }

    package var kind: Kind
    /// Absolute, as the container sees it ("/etc/passwd").
    package var path: String

    package init(_ kind: Kind, _ path: String) {
        self.kind = kind
        self.path = path
    }

    package var description: String { "\(kind.rawValue) \(path)" }
}

/// The changes of an upper directory over image layers, podman's
/// (containers/storage's) way: an entry of the upper directory is C when
/// the image has that path, else A; a whiteout (a char device 0/0, or an
/// empty file with `overlay.whiteout`) is D when the image has the path;
/// an opaque directory (`overlay.opaque` = "y", trusted.* or user.*) is C
/// (A if the image has no such directory) and what the image has under it
/// that the upper directory does not is D. A directory of the image holds
/// a changed path, so it is in the upper directory and is C. The image is
/// its layers merged as overlay merges them (topmost first; whiteouts and
/// opaque directories of the layers apply).
///
/// With `wholeRoot` (the copy driver: the upper directory is the whole
/// root, the layers copied into it) there are no whiteouts: a path the
/// root has and the image does not is A, one the image has and the root
/// does not is D, one both have is C when its type, mode, owner, device,
/// size (not for directories) or modification time differ, and every
/// directory above a change is C, as overlay's upper directory has it.
package enum ContainerDiff {
    /// Paths the runtime makes for its mounts, never reported (podman's list).
    package static let runtimePaths: Set<String> = [
        "/dev", "/etc/hostname", "/etc/hosts", "/etc/resolv.conf", "/proc", "/run", "/run/notify",
        "/run/.containerenv", "/run/secrets", "/sys",
    ]

    /// The changes, sorted by path (a directory before what is in it).
    /// `layers` are the image's layer directories, topmost first.
    package static func changes(upper: String, layers: [String], wholeRoot: Bool = false) throws(EngineError) -> [FileChange] {
        let top: FileDescriptor
        do { top = try FileDescriptor.open(upper, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC) } catch {
            throw EngineError(.failed, "cannot open \(upper): \(error)")
        }
        defer { top.close() }
        var lowers: [FileDescriptor] = []
        defer { for lower in lowers { lower.close() } }
        for layer in layers {
            let lower: FileDescriptor
            do { lower = try FileDescriptor.open(layer, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC) } catch {
                throw EngineError(.failed, "cannot open the image layer \(layer): \(error)")
            }
            lowers.append(lower)
            if RootfsCopy.isOpaque(lower.rawValue) { break }
        }
        var walk = Walk(upper: upper, wholeRoot: wholeRoot)
        _ = try walk.directory(top, lowers: lowers, path: [], hidden: wholeRoot)
        // Path order with "/" lowest: a directory, then what is in it, then its next sibling.
        let sorted = walk.changes.map { (key: $0.path.map { $0 == UInt8(ascii: "/") ? 0 : $0 }, change: $0) }
            .sorted { $0.key.lexicographicallyPrecedes($1.key) }
        return sorted.map { FileChange($0.change.kind, String(decoding: $0.change.path, as: UTF8.self)) }
    }

    /// A whiteout: a char device 0/0, or an empty file with `overlay.whiteout` (trusted.* or user.*).
    static func isWhiteout(_ directory: FileDescriptor, _ name: [CChar], _ st: stat) -> Bool {
        let kind = st.st_mode & S_IFMT
        if kind == S_IFCHR && st.st_rdev == 0 { return true }
        guard kind == S_IFREG && st.st_size == 0 else { return false }
        let fd = berth_openat(directory.rawValue, name, O_RDONLY | O_NONBLOCK | O_NOFOLLOW | O_CLOEXEC, 0)
        guard fd >= 0 else { return false }
        let file = FileDescriptor(rawValue: fd)
        defer { file.close() }
        return TreeArchiver.isWhiteoutFile(file)
    }

    private struct Walk {
        let upper: String
        let wholeRoot: Bool
        var changes: [(kind: FileChange.Kind, path: [UInt8])] = []

        init(upper: String, wholeRoot: Bool) {
            self.upper = upper
            self.wholeRoot = wholeRoot
        }

        /// Records the changes in `directory` of the upper directory (at
        /// `path` in the root: "" or "/a/b"); `lowers` are the image's
        /// directories at that path, topmost first; `hidden`: what the image
        /// has here is gone unless the upper directory has it too (an opaque
        /// directory here or above). Returns whether it recorded anything.
        mutating func directory(_ directory: FileDescriptor, lowers: [FileDescriptor], path: [UInt8],
                                hidden: Bool) throws(EngineError) -> Bool {
            let names: [[UInt8]]
            do { names = try directoryEntries(directory) } catch {
                throw EngineError(.failed, "cannot list \(display(path)) in \(upper): \(error)")
            }
            var recorded = false
            for name in names {
                let cName = cString(name)
                let childPath = path + [UInt8(ascii: "/")] + name
                var st = stat()
                guard fstatat(directory.rawValue, cName, &st, AT_SYMLINK_NOFOLLOW) == 0 else {
                    if Errno.current == .noSuchFile { continue } // gone meanwhile (a running container)
                    throw EngineError(.failed, "cannot stat \(display(childPath)) in \(upper): \(Errno.current)")
                }
                let image = ContainerDiff.Walk.imageEntry(cName, in: lowers)
                if !wholeRoot && ContainerDiff.isWhiteout(directory, cName, st) {
                    if image != nil { record(.deleted, childPath, &recorded) }
                    continue
                }
                guard (st.st_mode & S_IFMT) == S_IFDIR else {
                    if let image {
                        if !wholeRoot || ContainerDiff.Walk.differs(image.stat, st) { record(.changed, childPath, &recorded) }
                    } else {
                        record(.added, childPath, &recorded)
                    }
                    continue
                }
                let opened = berth_openat(directory.rawValue, cName, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC, 0)
                guard opened >= 0 else {
                    if Errno.current == .noSuchFile { continue }
                    throw EngineError(.failed, "cannot open \(display(childPath)) in \(upper): \(Errno.current)")
                }
                let child = FileDescriptor(rawValue: opened)
                defer { child.close() }
                var childLowers: [FileDescriptor] = []
                defer { for lower in childLowers { lower.close() } }
                if let image, (image.stat.st_mode & S_IFMT) == S_IFDIR {
                    childLowers = try ContainerDiff.Walk.lowerDirectories(cName, in: lowers[image.layer...], path: childPath)
                }
                let opaque = !wholeRoot && RootfsCopy.isOpaque(child.rawValue)
                let inner = try self.directory(child, lowers: childLowers, path: childPath, hidden: hidden || opaque)
                if let image {
                    if !wholeRoot || inner || ContainerDiff.Walk.differs(image.stat, st) { record(.changed, childPath, &recorded) }
                } else {
                    record(.added, childPath, &recorded)
                }
            }
            if hidden {
                let present = Set(names)
                for name in try ContainerDiff.Walk.visibleNames(lowers, path: path) where !present.contains(name) {
                    record(.deleted, path + [UInt8(ascii: "/")] + name, &recorded)
                }
            }
            return recorded
        }

        private mutating func record(_ kind: FileChange.Kind, _ path: [UInt8], _ recorded: inout Bool) {
            changes.append((kind, path))
            recorded = true
        }

        private func display(_ path: [UInt8]) -> String { path.isEmpty ? "/" : String(decoding: path, as: UTF8.self) }

        /// What the image has at `name`: the topmost layer's entry and that
        /// layer's index; nil when no layer has it or a whiteout hides it.
        static func imageEntry(_ name: [CChar], in lowers: [FileDescriptor]) -> (stat: stat, layer: Int)? {
            for (index, lower) in lowers.enumerated() {
                var st = stat()
                guard fstatat(lower.rawValue, name, &st, AT_SYMLINK_NOFOLLOW) == 0 else { continue }
                if ContainerDiff.isWhiteout(lower, name, st) { return nil }
                return (st, index)
            }
            return nil
        }

        /// The image's directories `name` in `lowers` (from the topmost that
        /// has it, a directory), down to one that is opaque or the first
        /// layer whose `name` is not a directory (a whiteout or a file hides
        /// what is below).
        static func lowerDirectories(_ name: [CChar], in lowers: ArraySlice<FileDescriptor>,
                                     path: [UInt8]) throws(EngineError) -> [FileDescriptor] {
            var result: [FileDescriptor] = []
            for lower in lowers {
                var st = stat()
                guard fstatat(lower.rawValue, name, &st, AT_SYMLINK_NOFOLLOW) == 0 else { continue }
                guard (st.st_mode & S_IFMT) == S_IFDIR else { break }
                let fd = berth_openat(lower.rawValue, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC, 0)
                guard fd >= 0 else {
                    let error = Errno.current
                    for opened in result { opened.close() }
                    throw EngineError(.failed, "cannot open \(String(decoding: path, as: UTF8.self)) in an image layer: \(error)")
                }
                result.append(FileDescriptor(rawValue: fd))
                if RootfsCopy.isOpaque(fd) { break }
            }
            return result
        }

        /// The names the image has in a directory (its layers' `lowers`
        /// merged: a whiteout hides the name in the layers below).
        static func visibleNames(_ lowers: [FileDescriptor], path: [UInt8]) throws(EngineError) -> [[UInt8]] {
            var seen = Set<[UInt8]>()
            var visible: [[UInt8]] = []
            for lower in lowers {
                let names: [[UInt8]]
                do { names = try directoryEntries(lower) } catch {
                    throw EngineError(.failed, "cannot list \(path.isEmpty ? "/" : String(decoding: path, as: UTF8.self)) in an image layer: \(error)")
                }
                for name in names where seen.insert(name).inserted {
                    let cName = cString(name)
                    var st = stat()
                    guard fstatat(lower.rawValue, cName, &st, AT_SYMLINK_NOFOLLOW) == 0 else { continue }
                    if !ContainerDiff.isWhiteout(lower, cName, st) { visible.append(name) }
                }
            }
            return visible
        }

        /// The copy driver's test: what a copy keeps (type, mode, owner,
        /// device, size but a directory's, modification time) differs.
        static func differs(_ image: stat, _ root: stat) -> Bool {
            image.st_mode != root.st_mode || image.st_uid != root.st_uid || image.st_gid != root.st_gid
                || image.st_rdev != root.st_rdev
                || ((image.st_mode & S_IFMT) != S_IFDIR && image.st_size != root.st_size)
                || image.st_mtim.tv_sec != root.st_mtim.tv_sec || image.st_mtim.tv_nsec != root.st_mtim.tv_nsec
        }
    }
}

extension Engine {
    /// What the container changed in its root compared with its image
    /// (`ContainerDiff`), without the paths the runtime makes for its
    /// mounts. Running or not; a container never started has no changes.
    /// Rootless, call inside the store's user namespace (the changes belong
    /// to the container's ids and need not be readable by the user).
    package func diff(_ container: Container) throws(EngineError) -> [FileChange] {
        let overlay = try rootfsOverlay(container)
        let wholeRoot = overlay.driver == .copy
        // The copy driver fills its directory at the first start.
        if wholeRoot && Files.list(overlay.upper).isEmpty { return [] }
        let layers = overlay.lower.map { overlay.layersDirectory + "/" + $0 }
        do {
            return try ContainerDiff.changes(upper: overlay.upper, layers: layers, wholeRoot: wholeRoot)
                .filter { !ContainerDiff.runtimePaths.contains($0.path) }
        } catch {
            throw EngineError(error.kind, "cannot read the changes of container \(container.name): \(error.message)")
        }
    }
}

#if canImport(Glibc)
import Glibc
#endif
import BerthOS
import CBerth

/// The last root file system fallback: the image's layers copied, bottom
/// first, into the container's own directory, with overlay whiteouts and
/// opaque directories applied, then bound on root.path. Runs in the
/// container's init (inside its user namespace when rootless, so owners
/// are copied as they are). Everything is done relative to open
/// directories with O_NOFOLLOW: a layer's symlinks are copied, never followed.
package enum RootfsCopy {
    struct Failure: Error { let message: String }

    /// Copies `layer` (a directory) over `destination`.
    static func apply(layer: Int32, onto destination: Int32) throws(Failure) {
        var links: [String: [CChar]] = [:]
        try copyDirectory(layer, destination, root: destination, path: [], links: &links)
    }

    /// Whether a directory is overlay-opaque (trusted.* or, rootless, user.* xattr).
    package static func isOpaque(_ fd: Int32) -> Bool {
        for name in ["trusted.overlay.opaque", "user.overlay.opaque"] {
            var value: UInt8 = 0
            if berth_fgetxattr(fd, name, &value, 1) == 1 && value == UInt8(ascii: "y") { return true }
        }
        return false
    }

    /// Removes `name` in `directory`, recursively, without following links.
    static func remove(_ name: [CChar], in directory: Int32) {
        try? removeEntry(FileDescriptor(rawValue: directory), name.dropLast().map { UInt8(bitPattern: $0) })
    }

    static func copyDirectory(_ source: Int32, _ destination: Int32, root: Int32, path: [UInt8],
                              links: inout [String: [CChar]]) throws(Failure) {
        let entries: [[UInt8]]
        do { entries = try directoryEntries(FileDescriptor(rawValue: source)) } catch {
            throw Failure(message: "list \(String(decoding: path, as: UTF8.self)): \(error)")
        }
        for entryName in entries {
            let name = cString(entryName)
            var st = stat()
            guard fstatat(source, name, &st, AT_SYMLINK_NOFOLLOW) == 0 else { continue }
            let kind = st.st_mode & S_IFMT
            let relativeBytes = path.isEmpty ? entryName : path + [UInt8(ascii: "/")] + entryName
            let relative = String(decoding: relativeBytes, as: UTF8.self)
            // A whiteout hides what lower layers had.
            if kind == S_IFCHR && st.st_rdev == 0 {
                remove(name, in: destination)
                continue
            }
            var existing = stat()
            let exists = fstatat(destination, name, &existing, AT_SYMLINK_NOFOLLOW) == 0
            if exists && !(kind == S_IFDIR && (existing.st_mode & S_IFMT) == S_IFDIR) {
                remove(name, in: destination)
            }
            switch kind {
            case S_IFDIR:
                let from = openat(source, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
                guard from >= 0 else { throw Failure(message: "open layer directory \(relative): \(Errno.current)") }
                defer { close(from) }
                if exists && (existing.st_mode & S_IFMT) == S_IFDIR && isOpaque(from) {
                    remove(name, in: destination)
                }
                if mkdirat(destination, name, 0o700) != 0 && Errno.current != .exists {
                    throw Failure(message: "mkdir \(relative): \(Errno.current)")
                }
                let to = openat(destination, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
                guard to >= 0 else { throw Failure(message: "open \(relative): \(Errno.current)") }
                defer { close(to) }
                try copyDirectory(from, to, root: root, path: relativeBytes, links: &links)
                copyAttributes(from, to)
                finish(to, st)
            case S_IFREG:
                let key = "\(st.st_dev):\(st.st_ino)"
                if st.st_nlink > 1, let first = links[key], linkat(root, first, destination, name, 0) == 0 {
                    continue  // the same inode earlier in this layer: a hard link
                }
                try copyFile(source, destination, name: name, relative: relative, st)
                if st.st_nlink > 1 { links[key] = cString(relativeBytes) }
            case S_IFLNK:
                var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
                let n = readlinkat(source, name, &buffer, buffer.count - 1)
                guard n >= 0 else { throw Failure(message: "readlink \(relative): \(Errno.current)") }
                buffer[n] = 0
                guard symlinkat(buffer, destination, name) == 0 else { throw Failure(message: "symlink \(relative): \(Errno.current)") }
                _ = fchownat(destination, name, st.st_uid, st.st_gid, AT_SYMLINK_NOFOLLOW)
                var times = [st.st_atim, st.st_mtim]
                _ = utimensat(destination, name, &times, AT_SYMLINK_NOFOLLOW)
            default:
                // fifos, sockets, devices (refused in a user namespace: skipped, as unpacking does).
                if mknodat(destination, name, st.st_mode, st.st_rdev) == 0 {
                    _ = fchownat(destination, name, st.st_uid, st.st_gid, AT_SYMLINK_NOFOLLOW)
                }
            }
        }
    }

    static func copyFile(_ source: Int32, _ destination: Int32, name: [CChar], relative: String, _ st: stat) throws(Failure) {
        let from = openat(source, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)
        guard from >= 0 else { throw Failure(message: "open layer file \(relative): \(Errno.current)") }
        defer { close(from) }
        let to = openat(destination, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
        guard to >= 0 else { throw Failure(message: "create \(relative): \(Errno.current)") }
        defer { close(to) }
        var buffer = [UInt8](repeating: 0, count: 1 << 20)
        while true {
            let r = buffer.withUnsafeMutableBytes { read(from, $0.baseAddress, $0.count) }
            if r < 0 && Errno.current == .interrupted { continue }
            guard r >= 0 else { throw Failure(message: "read \(relative): \(Errno.current)") }
            if r == 0 { break }
            var offset = 0
            while offset < r {
                let w = buffer.withUnsafeBytes { write(to, $0.baseAddress! + offset, r - offset) }
                guard w > 0 else { throw Failure(message: "write \(relative): \(Errno.current)") }
                offset += w
            }
        }
        copyAttributes(from, to)
        finish(to, st)
    }

    /// Extended attributes but overlay's own (which describe the layer, not the file).
    static func copyAttributes(_ from: Int32, _ to: Int32) {
        var list = [CChar](repeating: 0, count: 4096)
        let size = berth_flistxattr(from, &list, list.count)
        guard size > 0 else { return }
        var start = 0
        while start < size {
            let name = String(cString: Array(list[start..<size]) + [0])
            start += name.utf8.count + 1
            if name.hasPrefix("trusted.overlay.") || name.hasPrefix("user.overlay.") { continue }
            var value = [UInt8](repeating: 0, count: 65536)
            let n = berth_fgetxattr(from, name, &value, value.count)
            if n >= 0 { _ = berth_fsetxattr(to, name, value, n) }
        }
    }

    /// Owner, then mode (so set-id bits survive the chown), then times.
    static func finish(_ fd: Int32, _ st: stat) {
        _ = fchown(fd, st.st_uid, st.st_gid)
        _ = fchmod(fd, st.st_mode & 0o7777)
        var times = [st.st_atim, st.st_mtim]
        _ = futimens(fd, &times)
    }
}

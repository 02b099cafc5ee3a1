#if canImport(Glibc)
import Glibc
#endif
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import BerthImage
import BerthOCI
import BerthOS
import BerthRuntime
import CBerth

// The engine side of attach, top, stats, cp, commit, export and system df:
// a streaming tar writer, the container's file system as a directory
// (live, or its layers mounted read-only or writable in a private mount
// namespace), the copy that `cp` does between two directories without ever
// following a link of the container's, the layer a commit makes of the
// overlay's upper directory, and readers of /proc and the cgroup.

// MARK: - tar

/// A tar stream (ustar headers, pax records for what ustar cannot hold:
/// long names and links, big sizes and ids, extended attributes), written
/// as it goes, so a file of any size passes through a small buffer.
package final class TarStream {
    package enum Kind: Sendable, Equatable {
        case regular, hardlink, symlink, character, block, directory, fifo

        var flag: UInt8 {
            switch self {
            case .regular: UInt8(ascii: "0")
            case .hardlink: UInt8(ascii: "1")
            case .symlink: UInt8(ascii: "2")
            case .character: UInt8(ascii: "3")
            case .block: UInt8(ascii: "4")
            case .directory: UInt8(ascii: "5")
            case .fifo: UInt8(ascii: "6")
            }
        }
    }

    package struct Header: Sendable {
        /// The path inside the archive, without a leading "/" (raw bytes: names need not be UTF-8).
        package var name: [UInt8]
        package var kind: Kind
        package var mode: UInt32
        package var uid: UInt32 = 0
        package var gid: UInt32 = 0
        /// Bytes that follow (regular files only).
        package var size: Int64 = 0
        package var modificationTime: Int64 = 0
        /// Symlink target or hard link name.
        package var link: [UInt8] = []
        package var major: UInt32 = 0
        package var minor: UInt32 = 0
        /// SCHILY.xattr records, in this order.
        package var extendedAttributes: [(String, [UInt8])] = []

        package init(name: [UInt8], kind: Kind, mode: UInt32, uid: UInt32 = 0, gid: UInt32 = 0, size: Int64 = 0,
                     modificationTime: Int64 = 0, link: [UInt8] = []) {
            self.name = name
            self.kind = kind
            self.mode = mode
            self.uid = uid
            self.gid = gid
            self.size = size
            self.modificationTime = modificationTime
            self.link = link
        }
    }

    /// libarchive's pax writer (BerthImage's `TarWriter`), kept open between calls.
    private var writer: TarWriter?

    /// The descriptor stays open; `finish()` writes the end of the archive.
    package init(output: FileDescriptor) throws(EngineError) {
        do { writer = try TarWriter(descriptor: output) } catch {
            throw EngineError(.failed, "write the archive: \(error.message)")
        }
    }

    package func write(_ header: Header) throws(EngineError) {
        let kind: TarEntry.Kind = switch header.kind {
        case .regular: .regularFile
        case .directory: .directory
        case .symlink: .symlink(target: "")
        case .hardlink: .hardlink(target: "")
        case .character: .characterDevice(major: header.major, minor: header.minor)
        case .block: .blockDevice(major: header.major, minor: header.minor)
        case .fifo: .fifo
        }
        try run { (writer: inout TarWriter) throws(ImageError) in
            try writer.addHeader(name: header.name, kind: kind, link: header.kind == .symlink || header.kind == .hardlink ? header.link : nil,
                                 mode: mode_t(header.mode), size: header.kind == .regular ? header.size : 0, uid: Int64(header.uid),
                                 gid: Int64(header.gid), modificationTime: header.modificationTime,
                                 extendedAttributes: header.extendedAttributes)
        }
    }

    /// Exactly `size` bytes of `source` (from its offset) as the contents of
    /// the entry just written; a file that shrank meanwhile is padded with
    /// zeros, one that grew is cut, so the archive stays well-formed.
    package func writeContents(from source: FileDescriptor, size: Int64, name: String) throws(EngineError) {
        var remaining = size
        var chunk = [UInt8](repeating: 0, count: 256 << 10)
        while remaining > 0 {
            let wanted = Int(min(Int64(chunk.count), remaining))
            var n: Int
            do {
                n = try chunk.withUnsafeMutableBytes { (raw) throws(Errno) -> Int in
                    try source.read(into: UnsafeMutableRawBufferPointer(rebasing: raw[..<wanted]))
                }
            } catch {
                throw EngineError(.failed, "read \(name): \(error)")
            }
            if n == 0 {
                for i in 0..<wanted { chunk[i] = 0 }
                n = wanted
            }
            let piece = chunk[..<n]
            try run { (writer: inout TarWriter) throws(ImageError) in try writer.addData(piece, name: name) }
            remaining -= Int64(n)
        }
    }

    /// Contents given in memory (for the `size` the header said).
    package func writeContents(_ bytes: [UInt8]) throws(EngineError) {
        try run { (writer: inout TarWriter) throws(ImageError) in try writer.addData(bytes[...], name: "contents") }
    }

    /// The end of the archive.
    package func finish() throws(EngineError) {
        guard let done = writer.take() else { return }
        do { try done.finish() } catch { throw EngineError(.failed, "write the archive: \(error.message)") }
    }

    private func run(_ body: (inout TarWriter) throws(ImageError) -> Void) throws(EngineError) {
        guard var current = writer.take() else { throw EngineError(.failed, "write the archive: it is already finished") }
        var failure: ImageError? = nil
        do { try body(&current) } catch { failure = error }
        writer = consume current
        if let failure { throw EngineError(.failed, "write the archive: \(failure.message)") }
    }
}

// MARK: - archiving a directory

/// Writes a directory tree into a tar, never following a link. As `plain`
/// it is the tree as it is (export); as `layer` it is an overlay upper
/// directory turned into an image layer (commit): a whiteout (char device
/// 0/0, or an empty file with an `overlay.whiteout` xattr) becomes a
/// `.wh.<name>` entry, a directory whose `overlay.opaque` is "y" is
/// followed by its `.wh..wh..opq`, and overlay's own xattrs are left out.
package struct TreeArchiver {
    package enum Mode: Sendable { case plain, layer }

    let tar: TarStream
    let mode: Mode
    private var links: [FileKey: [UInt8]] = [:]
    /// Entries written (whiteouts and opaque markers included).
    package private(set) var entries = 0

    struct FileKey: Hashable { let device: UInt64; let inode: UInt64 }

    package init(tar: TarStream, mode: Mode) {
        self.tar = tar
        self.mode = mode
    }

    /// Archives what is in `directory` (open for reading) under `prefix`
    /// (empty, or a path ending in "/"), in byte order of the names.
    package mutating func archive(directory: FileDescriptor, prefix: [UInt8] = []) throws(EngineError) {
        let names: [[UInt8]]
        do { names = try directoryEntries(directory).sorted { $0.lexicographicallyPrecedes($1) } } catch {
            throw EngineError(.failed, "list \(TreeArchiver.display(prefix.isEmpty ? [UInt8(ascii: ".")] : prefix)): \(error)")
        }
        for name in names { try add(name, in: directory, prefix: prefix) }
    }

    /// Archives the one entry `name` of `directory` (with everything in it, for a directory).
    package mutating func archive(entry name: [UInt8], in directory: FileDescriptor, prefix: [UInt8] = []) throws(EngineError) {
        try add(name, in: directory, prefix: prefix)
    }

    private mutating func add(_ name: [UInt8], in directory: FileDescriptor, prefix: [UInt8]) throws(EngineError) {
        let path = prefix + name
        let cName = cString(name)
        var st = stat()
        guard fstatat(directory.rawValue, cName, &st, AT_SYMLINK_NOFOLLOW) == 0 else {
            if Errno.current == .noSuchFile { return } // gone meanwhile
            throw EngineError(.failed, "stat \(TreeArchiver.display(path)): \(Errno.current)")
        }
        let kind = st.st_mode & S_IFMT
        var header = TarStream.Header(name: path, kind: .regular, mode: UInt32(st.st_mode & 0o7777), uid: st.st_uid, gid: st.st_gid,
                                      modificationTime: Int64(st.st_mtim.tv_sec))
        if mode == .layer && kind == S_IFCHR && st.st_rdev == 0 {
            try whiteout(name, prefix: prefix)
            return
        }
        switch kind {
        case S_IFDIR:
            let child = try open(directory, cName, O_RDONLY | O_DIRECTORY, path)
            defer { child.close() }
            header.kind = .directory
            header.extendedAttributes = TreeArchiver.attributes(of: child)
            try tar.write(header)
            entries += 1
            if mode == .layer && RootfsCopy.isOpaque(child.rawValue) {
                try tar.write(TarStream.Header(name: path + Array("/.wh..wh..opq".utf8), kind: .regular, mode: 0o644,
                                               modificationTime: Int64(st.st_mtim.tv_sec)))
                entries += 1
            }
            try archive(directory: child, prefix: path + [UInt8(ascii: "/")])
        case S_IFREG:
            let key = FileKey(device: UInt64(st.st_dev), inode: UInt64(st.st_ino))
            if st.st_nlink > 1, let first = links[key] {
                header.kind = .hardlink
                header.link = first
                try tar.write(header)
                entries += 1
                return
            }
            let file = try open(directory, cName, O_RDONLY | O_NONBLOCK, path)
            defer { file.close() }
            if mode == .layer && st.st_size == 0 && TreeArchiver.isWhiteoutFile(file) {
                try whiteout(name, prefix: prefix)
                return
            }
            header.size = Int64(st.st_size)
            header.extendedAttributes = TreeArchiver.attributes(of: file)
            try tar.write(header)
            try tar.writeContents(from: file, size: Int64(st.st_size), name: TreeArchiver.display(path))
            entries += 1
            if st.st_nlink > 1 { links[key] = path }
        case S_IFLNK:
            header.kind = .symlink
            do { header.link = try TreeArchiver.readLink(directory, name) } catch {
                throw EngineError(.failed, "read link \(TreeArchiver.display(path)): \(error)")
            }
            try tar.write(header)
            entries += 1
        case S_IFCHR, S_IFBLK:
            header.kind = kind == S_IFCHR ? .character : .block
            (header.major, header.minor) = TreeArchiver.deviceNumbers(UInt64(st.st_rdev))
            try tar.write(header)
            entries += 1
        case S_IFIFO:
            header.kind = .fifo
            try tar.write(header)
            entries += 1
        default:
            return // sockets are not archived
        }
    }

    private mutating func whiteout(_ name: [UInt8], prefix: [UInt8]) throws(EngineError) {
        try tar.write(TarStream.Header(name: prefix + Array(".wh.".utf8) + name, kind: .regular, mode: 0o644))
        entries += 1
    }

    private func open(_ directory: FileDescriptor, _ name: [CChar], _ flags: Int32, _ path: [UInt8]) throws(EngineError) -> FileDescriptor {
        let fd = berth_openat(directory.rawValue, name, flags | O_NOFOLLOW | O_CLOEXEC, 0)
        guard fd >= 0 else { throw EngineError(.failed, "open \(TreeArchiver.display(path)): \(Errno.current)") }
        return FileDescriptor(rawValue: fd)
    }

    static func display(_ path: [UInt8]) -> String { String(decoding: path, as: UTF8.self) }

    /// glibc's major()/minor() (macros Swift does not import).
    static func deviceNumbers(_ device: UInt64) -> (UInt32, UInt32) {
        let major = ((device >> 8) & 0xfff) | ((device >> 32) & ~UInt64(0xfff))
        let minor = (device & 0xff) | ((device >> 12) & ~UInt64(0xff))
        return (UInt32(truncatingIfNeeded: major), UInt32(truncatingIfNeeded: minor))
    }

    static func readLink(_ directory: FileDescriptor, _ name: [UInt8]) throws(Errno) -> [UInt8] {
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        let n = readlinkat(directory.rawValue, cString(name), &buffer, buffer.count - 1)
        if n < 0 { throw Errno.current }
        return buffer[0..<n].map { UInt8(bitPattern: $0) }
    }

    /// `overlay.opaque` = "y" (root: trusted.*, rootless: user.*).
    /// An empty file with `overlay.whiteout`: the kernel's (6.7+) other whiteout.
    static func isWhiteoutFile(_ fd: FileDescriptor) -> Bool {
        let names: [String] = ["trusted.overlay.whiteout", "user.overlay.whiteout"]
        return names.contains { berth_fgetxattr(fd.rawValue, $0, nil, 0) >= 0 }
    }

    /// The file's extended attributes worth keeping: not overlay's own, not
    /// the host's security labels, not ACLs.
    static func attributes(of fd: FileDescriptor) -> [(String, [UInt8])] {
        var list = [CChar](repeating: 0, count: 4096)
        let size = berth_flistxattr(fd.rawValue, &list, list.count)
        guard size > 0 else { return [] }
        var result: [(String, [UInt8])] = []
        var start = 0
        while start < size {
            let end = list[start..<size].firstIndex(of: 0) ?? size
            let name = String(decoding: list[start..<end].map { UInt8(bitPattern: $0) }, as: UTF8.self)
            start = end + 1
            if name.isEmpty || name.hasPrefix("trusted.") || name.hasPrefix("user.overlay.") || name.hasPrefix("system.")
                || name == "security.selinux" { continue }
            var value = [UInt8](repeating: 0, count: 65536)
            let n = berth_fgetxattr(fd.rawValue, name, &value, value.count)
            if n >= 0 { result.append((name, Array(value[0..<n]))) }
        }
        return result.sorted { $0.0 < $1.0 }
    }
}

// MARK: - the container's file system

/// A container's root file system, open as a directory: the running
/// container's own root (`/proc/PID/root`: its mount namespace, volumes and
/// all), or its layers with its upper directory on top, mounted by this
/// process in a mount namespace of its own (gone when it exits).
package final class ContainerRoot {
    package let root: SecureRoot
    /// The running container's own view.
    package let live: Bool
    private let mountPoint: String?

    init(root: SecureRoot, live: Bool, mountPoint: String?) {
        self.root = root
        self.live = live
        self.mountPoint = mountPoint
    }

    package func close() {
        root.close()
        if let mountPoint {
            _ = umount2(mountPoint, Int32(MNT_DETACH))
            _ = rmdir(mountPoint)
        }
    }
}

extension Engine {
    /// Whether the container's process runs (or is paused).
    package func isRunning(_ container: Container) -> Bool {
        (container.state.status == "running" || container.state.status == "paused") && container.processAlive
    }

    /// How the container's root is assembled: config.json's annotation.
    package func rootfsOverlay(_ container: Container) throws(EngineError) -> RootfsOverlay {
        let path = containers.path(container.id) + "/config.json"
        guard let bytes = try? Files.read(path), let spec = try? JSONDecoder().decode(Spec.self, from: Data(bytes)) else {
            throw EngineError(.failed, "cannot read the configuration of container \(container.name) (\(path))")
        }
        guard let text = spec.annotations?[RootfsOverlay.annotation],
              let overlay = try? JSONDecoder().decode(RootfsOverlay.self, from: Data(text.utf8)) else {
            throw EngineError(.failed, "container \(container.name) has no root file system made of image layers")
        }
        return overlay
    }

    /// Opens the container's root. With `live` and the container running:
    /// its own root, entered rootless through its user namespace (joined by
    /// this process, which then acts as the container's root). Otherwise the
    /// layers: rootless, this continues in the store's user namespace (a
    /// child process; see `UserNamespaceSession`), then mounts the overlay
    /// read-only (the upper directory as the top lower layer, nothing
    /// written) or, with `writable`, with the container's upper and work
    /// directories, in a new mount namespace. Call before any thread starts.
    package func openRoot(_ container: Container, live: Bool, writable: Bool) throws(EngineError) -> ContainerRoot {
        if live && isRunning(container) {
            let pid = container.state.pid
            if geteuid() != 0 { try Engine.joinUserNamespace(of: pid, container: container.name) }
            do {
                return ContainerRoot(root: try SecureRoot(path: "/proc/\(pid)/root"), live: true, mountPoint: nil)
            } catch {
                throw EngineError(.failed, "cannot open the root of container \(container.name) (pid \(pid)): \(error)")
            }
        }
        if geteuid() != 0 && UserNamespaceSession.needed {
            do { try UserNamespaceSession.enter() } catch { throw EngineError(.failed, error.message) }
        }
        let overlay = try rootfsOverlay(container)
        if overlay.driver == .copy && !Files.list(overlay.upper).isEmpty {
            // The copy driver's upper directory is the whole root already.
            do { return ContainerRoot(root: try SecureRoot(path: overlay.upper), live: false, mountPoint: nil) } catch {
                throw EngineError(.failed, "cannot open \(overlay.upper): \(error)")
            }
        }
        guard berth_unshare(Int32(BERTH_CLONE_NEWNS)) == 0 else {
            throw EngineError(.failed, "cannot make a mount namespace for the file system of container \(container.name): \(Errno.current)")
        }
        _ = try? BerthOS.mount(source: nil, target: "/", type: nil, flags: UInt(MS_REC | MS_PRIVATE))
        let target: String
        do {
            target = try images.temporaryPath("rootfs")
            _ = try check(mkdir(target, 0o700))
        } catch {
            throw EngineError(.failed, "cannot make a mount point in \(images.tmpDirectory): \(error)")
        }
        func escape(_ path: String) -> String {
            path.replacing("\\", with: "\\\\").replacing(":", with: "\\:")
        }
        var options: String
        var lower = overlay.lower.map(escape)
        if writable {
            options = "lowerdir=\(lower.joined(separator: ":")),upperdir=\(escape(overlay.upper)),workdir=\(escape(overlay.work))"
        } else {
            lower.insert(escape(overlay.upper), at: 0)
            if lower.count < 2, let empty = try? images.temporaryPath("empty"), mkdir(empty, 0o700) == 0 {
                lower.append(escape(empty))
            }
            options = "lowerdir=\(lower.joined(separator: ":"))"
        }
        if overlay.userxattr { options += ",userxattr" }
        // Lower directories are relative to layers/, as the container's init mounts them.
        let saved = berth_open(".", Int32(BERTH_O_PATH) | O_DIRECTORY | O_CLOEXEC, 0)
        defer { if saved >= 0 { _ = fchdir(saved); _ = Glibc.close(saved) } }
        guard chdir(overlay.layersDirectory) == 0 else {
            _ = rmdir(target)
            throw EngineError(.failed, "cannot enter \(overlay.layersDirectory): \(Errno.current)")
        }
        do {
            try BerthOS.mount(source: "overlay", target: target, type: "overlay", flags: writable ? 0 : UInt(MS_RDONLY), data: options)
        } catch {
            _ = rmdir(target)
            throw EngineError(.failed, "cannot mount the file system of container \(container.name): \(error)")
        }
        do {
            return ContainerRoot(root: try SecureRoot(path: target), live: false, mountPoint: target)
        } catch {
            _ = umount2(target, Int32(MNT_DETACH))
            _ = rmdir(target)
            throw EngineError(.failed, "cannot open the file system of container \(container.name): \(error)")
        }
    }

    /// Rootless: become the container's root by joining its user namespace
    /// (the caller owns it, so it may); files made then belong to the
    /// container's root, and every file of the container can be read.
    static func joinUserNamespace(of pid: pid_t, container name: String) throws(EngineError) {
        let path = "/proc/\(pid)/ns/user"
        guard let theirs = Files.readLink(path) else {
            throw EngineError(.failed, "cannot read the user namespace of container \(name) (pid \(pid)): \(Errno.current)")
        }
        if Files.readLink("/proc/self/ns/user") == theirs { return }
        let fd = berth_open(path, O_RDONLY | O_CLOEXEC, 0)
        guard fd >= 0 else { throw EngineError(.failed, "cannot open \(path): \(Errno.current)") }
        defer { _ = Glibc.close(fd) }
        guard berth_setns(fd, Int32(BERTH_CLONE_NEWUSER)) == 0 else {
            throw EngineError(.failed, "cannot join the user namespace of container \(name): \(Errno.current)")
        }
    }

    /// The container's root archived as a tar on `output`: its layers and its
    /// changes, read-only (never the live root: no /proc, no volumes, as
    /// `podman export` has it). Rootless, this continues in the store's user
    /// namespace, so owners are the container's.
    package func export(_ container: Container, to output: FileDescriptor) throws(EngineError) {
        let opened = try openRoot(container, live: false, writable: false)
        defer { opened.close() }
        let directory: FileDescriptor
        do { directory = try opened.root.open("", O_RDONLY | O_DIRECTORY) } catch {
            throw EngineError(.failed, "cannot read the file system of container \(container.name): \(error)")
        }
        defer { directory.close() }
        let tar = try TarStream(output: output)
        var archiver = TreeArchiver(tar: tar, mode: .plain)
        try archiver.archive(directory: directory)
        try tar.finish()
    }
}

// MARK: - cp

/// One end of a copy: a path on the host (resolved as usual, relative to
/// the working directory) or in a container's root (resolved beneath it:
/// `..` and every link stay inside, as openat2 RESOLVE_IN_ROOT does).
package struct CopyLocation {
    package let root: SecureRoot?
    package let path: String
    /// "the host" or "container NAME", for messages.
    package let label: String
    /// A running container's root: pseudo file systems (/proc, /sys) are not descended into.
    package let live: Bool

    package init(root: SecureRoot?, path: String, label: String, live: Bool = false) {
        self.root = root
        self.path = path
        self.label = label
        self.live = live
    }

    func open(_ path: String, _ flags: Int32) throws(Errno) -> FileDescriptor {
        if let root { return try root.open(path, flags) }
        return try FileDescriptor.open(path.isEmpty ? "." : path, flags | O_CLOEXEC)
    }

    /// The parent's path and the last name; nil as the name for a path
    /// that names a directory by itself ("/", ".", "..", "dir/.").
    package static func split(_ path: String, host: Bool) -> (parent: String, name: String?) {
        let components = path.split(separator: "/", omittingEmptySubsequences: true).map(String.init)
        let absolute = path.hasPrefix("/")
        guard let last = components.last, last != ".", last != ".." else { return (path, nil) }
        let parent = components.dropLast().joined(separator: "/")
        if absolute { return ("/" + parent, last) }
        return (parent.isEmpty ? (host ? "." : "/") : parent, last)
    }
}

/// `cp SRC DEST` with docker's rules: a file onto a file replaces it, into
/// a directory lands under its own name, onto a missing path takes that
/// name; a directory is copied with everything in it (as DEST if DEST does
/// not exist, else into DEST), "SRC/." copies what is in SRC. A link as the
/// last part of SRC is copied as a link (`follow`: what it points to).
/// Nothing is ever followed inside what is copied; what is written in a
/// container is made relative to directories opened beneath its root, with
/// O_NOFOLLOW, replacing whatever is in the way.
package struct TreeCopy {
    package let source: CopyLocation
    package let destination: CopyLocation
    package var follow = false
    /// What could not be copied but did not stop the copy (devices without the right to make them).
    package private(set) var warnings: [String] = []

    package init(source: CopyLocation, destination: CopyLocation, follow: Bool = false) {
        self.source = source
        self.destination = destination
        self.follow = follow
    }

    package mutating func run() throws(EngineError) {
        let sourcePath = source.path
        let (sourceParent, sourceName) = CopyLocation.split(sourcePath, host: source.root == nil)
        let contentsOnly = sourceName == nil
        let object: FileDescriptor
        do {
            if contentsOnly || follow || sourcePath.hasSuffix("/") {
                object = try source.open(sourcePath, Int32(BERTH_O_PATH))
            } else {
                let parent = try source.open(sourceParent, Int32(BERTH_O_PATH) | O_DIRECTORY)
                defer { parent.close() }
                object = try parent.openAt(sourceName!, Int32(BERTH_O_PATH) | O_NOFOLLOW | O_CLOEXEC)
            }
        } catch {
            throw EngineError(.notFound, "\"\(sourcePath)\" could not be found on \(source.label): \(error)")
        }
        defer { object.close() }
        let st: stat
        do { st = try object.stat() } catch { throw EngineError(.failed, "stat \"\(sourcePath)\" on \(source.label): \(error)") }
        let sourceIsDirectory = (st.st_mode & S_IFMT) == S_IFDIR
        let name = sourceName ?? ""

        let destinationPath = destination.path
        var existing: stat? = nil
        do throws(Errno) {
            let found = try destination.open(destinationPath, Int32(BERTH_O_PATH))
            existing = try? found.stat()
            found.close()
        } catch {
            if error != .noSuchFile {
                throw EngineError(.failed, "cannot copy to \"\(destinationPath)\" on \(destination.label): \(error)")
            }
        }
        if let existing, (existing.st_mode & S_IFMT) == S_IFDIR {
            let directory = try openDestination(destinationPath, O_RDONLY | O_DIRECTORY)
            defer { directory.close() }
            if sourceIsDirectory && contentsOnly {
                try copyContents(of: object, into: directory, path: destinationPath)
            } else {
                try copy(object, st, into: directory, as: Array(name.utf8), path: join(destinationPath, name), top: true)
            }
            return
        }
        if existing != nil && sourceIsDirectory {
            throw EngineError(.invalidArgument, "cannot copy directory \"\(sourcePath)\" onto \"\(destinationPath)\" on \(destination.label): it is not a directory")
        }
        if existing == nil && !sourceIsDirectory && (destinationPath.hasSuffix("/") || destinationPath.hasSuffix("/.")) {
            throw EngineError(.notFound, "the directory \"\(destinationPath)\" does not exist on \(destination.label)")
        }
        let (parentPath, destinationName) = CopyLocation.split(destinationPath, host: destination.root == nil)
        guard let destinationName else {
            throw EngineError(.notFound, "the directory \"\(destinationPath)\" does not exist on \(destination.label)")
        }
        let parent: FileDescriptor
        do { parent = try destination.open(parentPath, O_RDONLY | O_DIRECTORY) } catch {
            throw EngineError(.notFound, "cannot copy to \"\(destinationPath)\" on \(destination.label): its directory \"\(parentPath)\" does not exist")
        }
        defer { parent.close() }
        if sourceIsDirectory {
            // A directory onto a missing path: made there, with what is in it.
            let made = try makeDirectory(in: parent, Array(destinationName.utf8), path: destinationPath)
            defer { made.close() }
            try copyContents(of: object, into: made, path: destinationPath)
            TreeCopy.finish(made, st)
        } else {
            try copy(object, st, into: parent, as: Array(destinationName.utf8), path: destinationPath, top: true)
        }
    }

    /// `cp CONTAINER:SRC -`: SRC as a tar on `output` (a directory with
    /// everything in it, under its own name; "SRC/." without it).
    package static func archive(_ source: CopyLocation, to output: FileDescriptor) throws(EngineError) {
        let (parentPath, name) = CopyLocation.split(source.path, host: source.root == nil)
        let tar = try TarStream(output: output)
        var archiver = TreeArchiver(tar: tar, mode: .plain)
        do {
            if let name {
                let parent = try source.open(parentPath, O_RDONLY | O_DIRECTORY)
                defer { parent.close() }
                var st = stat()
                guard fstatat(parent.rawValue, name, &st, AT_SYMLINK_NOFOLLOW) == 0 else { throw Errno.current }
                try archiver.archive(entry: Array(name.utf8), in: parent)
            } else {
                let directory = try source.open(source.path, O_RDONLY | O_DIRECTORY)
                defer { directory.close() }
                try archiver.archive(directory: directory)
            }
        } catch let error as EngineError {
            throw error
        } catch {
            throw EngineError(.notFound, "\"\(source.path)\" could not be found on \(source.label): \(error)")
        }
        try tar.finish()
    }

    private func openDestination(_ path: String, _ flags: Int32) throws(EngineError) -> FileDescriptor {
        do { return try destination.open(path, flags) } catch {
            throw EngineError(.failed, "cannot open \"\(path)\" on \(destination.label): \(error)")
        }
    }

    private func join(_ directory: String, _ name: String) -> String {
        directory.hasSuffix("/") ? directory + name : directory + "/" + name
    }

    /// Copies the directory `object` (an O_PATH descriptor) entry by entry into `directory`.
    private mutating func copyContents(of object: FileDescriptor, into directory: FileDescriptor, path: String) throws(EngineError) {
        let source: FileDescriptor
        do { source = try object.openAt(".", O_RDONLY | O_DIRECTORY | O_CLOEXEC) } catch {
            throw EngineError(.failed, "cannot read \"\(self.source.path)\" on \(self.source.label): \(error)")
        }
        defer { source.close() }
        try copyEntries(of: source, into: directory, path: path)
    }

    private mutating func copyEntries(of source: FileDescriptor, into directory: FileDescriptor, path: String) throws(EngineError) {
        let names: [[UInt8]]
        do { names = try directoryEntries(source).sorted { $0.lexicographicallyPrecedes($1) } } catch {
            throw EngineError(.failed, "cannot list a directory of \"\(self.source.path)\" on \(self.source.label): \(error)")
        }
        for name in names {
            let childPath = join(path, String(decoding: name, as: UTF8.self))
            let fd = berth_openat(source.rawValue, cString(name), Int32(BERTH_O_PATH) | O_NOFOLLOW | O_CLOEXEC, 0)
            guard fd >= 0 else {
                if Errno.current == .noSuchFile { continue }
                throw EngineError(.failed, "cannot open what becomes \"\(childPath)\": \(Errno.current)")
            }
            let child = FileDescriptor(rawValue: fd)
            defer { child.close() }
            guard let st = try? child.stat() else { continue }
            try copy(child, st, into: directory, as: name, path: childPath, top: false)
        }
    }

    /// Copies one object (an O_PATH descriptor, never a followed link) as
    /// `name` in `parent`, replacing what is there unless both are directories.
    private mutating func copy(_ object: FileDescriptor, _ st: stat, into parent: FileDescriptor, as name: [UInt8], path: String,
                               top: Bool) throws(EngineError) {
        let kind = st.st_mode & S_IFMT
        let cName = cString(name)
        switch kind {
        case S_IFDIR:
            let made = try makeDirectory(in: parent, name, path: path)
            defer { made.close() }
            let source: FileDescriptor
            do { source = try object.openAt(".", O_RDONLY | O_DIRECTORY | O_CLOEXEC) } catch {
                throw EngineError(.failed, "cannot read the directory that becomes \"\(path)\": \(error)")
            }
            defer { source.close() }
            if top || !(self.source.live && TreeCopy.isPseudoFilesystem(source)) {
                try copyEntries(of: source, into: made, path: path)
            }
            TreeCopy.finish(made, st)
        case S_IFREG:
            let input = berth_open(object.procPath, O_RDONLY | O_NONBLOCK | O_CLOEXEC, 0)
            guard input >= 0 else { throw EngineError(.failed, "cannot read the file that becomes \"\(path)\": \(Errno.current)") }
            let file = FileDescriptor(rawValue: input)
            defer { file.close() }
            try clear(parent, name, path: path)
            let made = berth_openat(parent.rawValue, cName, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
            guard made >= 0 else { throw EngineError(.failed, "cannot create \"\(path)\" on \(destination.label): \(Errno.current)") }
            let output = FileDescriptor(rawValue: made)
            defer { output.close() }
            _ = berth_set_nonblock(input, 0)
            var buffer = [UInt8](repeating: 0, count: 1 << 20)
            while true {
                let n: Int
                do { n = try buffer.withUnsafeMutableBytes { (raw) throws(Errno) -> Int in try file.read(into: raw) } } catch {
                    throw EngineError(.failed, "read what becomes \"\(path)\": \(error)")
                }
                if n == 0 { break }
                do { try output.writeAll(buffer[0..<n]) } catch {
                    throw EngineError(.failed, "write \"\(path)\" on \(destination.label): \(error)")
                }
            }
            TreeCopy.finish(output, st)
        case S_IFLNK:
            var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
            let n = readlinkat(object.rawValue, "", &buffer, buffer.count - 1)
            guard n >= 0 else { throw EngineError(.failed, "cannot read the link that becomes \"\(path)\": \(Errno.current)") }
            buffer[n] = 0
            try clear(parent, name, path: path)
            guard symlinkat(buffer, parent.rawValue, cName) == 0 else {
                throw EngineError(.failed, "cannot create the link \"\(path)\" on \(destination.label): \(Errno.current)")
            }
            var times = [st.st_atim, st.st_mtim]
            _ = utimensat(parent.rawValue, cName, &times, AT_SYMLINK_NOFOLLOW)
        case S_IFIFO, S_IFCHR, S_IFBLK:
            try clear(parent, name, path: path)
            if mknodat(parent.rawValue, cName, st.st_mode, st.st_rdev) != 0 {
                warnings.append("\"\(path)\" was not copied: cannot make a \(kind == S_IFIFO ? "fifo" : "device") there: \(Errno.current)")
                return
            }
            var times = [st.st_atim, st.st_mtim]
            _ = utimensat(parent.rawValue, cName, &times, AT_SYMLINK_NOFOLLOW)
        default:
            return // sockets
        }
    }

    /// Removes `name` unless it is absent; a directory is never replaced by a non-directory.
    private func clear(_ parent: FileDescriptor, _ name: [UInt8], path: String) throws(EngineError) {
        var st = stat()
        guard fstatat(parent.rawValue, cString(name), &st, AT_SYMLINK_NOFOLLOW) == 0 else { return }
        if (st.st_mode & S_IFMT) == S_IFDIR {
            throw EngineError(.invalidArgument, "cannot overwrite the directory \"\(path)\" on \(destination.label) with a non-directory")
        }
        do { try removeEntry(parent, name) } catch {
            throw EngineError(.failed, "cannot replace \"\(path)\" on \(destination.label): \(error)")
        }
    }

    /// The directory `name` in `parent`, made if missing; a non-directory in the way is removed.
    private func makeDirectory(in parent: FileDescriptor, _ name: [UInt8], path: String) throws(EngineError) -> FileDescriptor {
        let cName = cString(name)
        var st = stat()
        if fstatat(parent.rawValue, cName, &st, AT_SYMLINK_NOFOLLOW) == 0 && (st.st_mode & S_IFMT) != S_IFDIR {
            do { try removeEntry(parent, name) } catch {
                throw EngineError(.failed, "cannot replace \"\(path)\" on \(destination.label): \(error)")
            }
        }
        if mkdirat(parent.rawValue, cName, 0o700) != 0 && Errno.current != .exists {
            throw EngineError(.failed, "cannot create the directory \"\(path)\" on \(destination.label): \(Errno.current)")
        }
        let fd = berth_openat(parent.rawValue, cName, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC, 0)
        guard fd >= 0 else { throw EngineError(.failed, "cannot open the directory \"\(path)\" on \(destination.label): \(Errno.current)") }
        return FileDescriptor(rawValue: fd)
    }

    /// Mode (after any owner change, so set-id bits stay) and times.
    static func finish(_ fd: FileDescriptor, _ st: stat) {
        _ = fchmod(fd.rawValue, st.st_mode & 0o7777)
        var times = [st.st_atim, st.st_mtim]
        _ = futimens(fd.rawValue, &times)
    }

    /// proc, sysfs, cgroup, devpts, securityfs, debugfs, tracefs, bpf: the kernel's, not the container's files.
    static func isPseudoFilesystem(_ fd: FileDescriptor) -> Bool {
        let pseudo: Set<Int> = [0x9fa0, 0x62656572, 0x27e0eb, 0x63677270, 0x1cd1, 0x73636673, 0x64626720, 0x74726163, 0xcafe4a11]
        return pseudo.contains(Int(berth_fstatfs_type(fd.rawValue)))
    }
}

// MARK: - commit

package struct CommitOptions: Sendable {
    /// The history entry's comment.
    package var message: String?
    package var author: String?
    /// Dockerfile instructions, as `berth import --change` takes them.
    package var changes: [String] = []
    /// The new image's name (a full reference), if any.
    package var name: String?

    package init() {}
}

extension Engine {
    /// A new image: the container's image and one more layer, made of the
    /// overlay's upper directory (the container's changes, whiteouts and
    /// opaque directories as a layer records them), with the container's
    /// settings (command, environment, working directory, user, labels) as
    /// docker keeps them, then `changes`. The copy driver's upper directory
    /// is the whole root: that image has one layer (squashed). Rootless,
    /// call inside the store's user namespace (the changes belong to the
    /// container's ids). Synchronous, no thread.
    package func commit(_ container: Container, options: CommitOptions) throws(EngineError) -> ImageRecord {
        let store = images
        guard let imageID = Digest(container.imageID), let base = store.image(imageID) else {
            throw EngineError(.notFound, "the image of container \(container.name) (\(container.image)) is no longer in the store")
        }
        var config: ImageConfiguration
        do {
            config = try JSONDecoder().decode(ImageConfiguration.self, from: Data(try store.readBlob(base.id)))
        } catch {
            throw EngineError(.failed, "cannot read the config of image \(base.id.short): \(error)")
        }
        var inner = Engine.committedConfig(container.config, image: config.config ?? ImageConfiguration.Config())
        do { try ImageImporter.apply(options.changes, to: &inner) } catch {
            throw EngineError(.invalidArgument, error.message)
        }
        let overlay = try rootfsOverlay(container)
        let squash = overlay.driver == .copy && !Files.list(overlay.upper).isEmpty

        // The layer: a tar of the upper directory, kept as the blob and unpacked into layers/.
        let blobPath: String, layerPath: String
        do {
            try store.prepare()
            blobPath = try store.temporaryPath("commit-blob")
            layerPath = try store.temporaryPath("commit-layer")
        } catch {
            throw EngineError(.failed, error.message)
        }
        var committed = false
        defer {
            if !committed {
                Files.removeTree(blobPath)
                Files.removeTree(layerPath)
            }
        }
        do {
            let output = try FileDescriptor.open(blobPath, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode: 0o644)
            defer { output.close() }
            let upper = try FileDescriptor.open(overlay.upper, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
            defer { upper.close() }
            let tar = try TarStream(output: output)
            var archiver = TreeArchiver(tar: tar, mode: squash ? .plain : .layer)
            try archiver.archive(directory: upper)
            try tar.finish()
        } catch let error as EngineError {
            throw error
        } catch {
            throw EngineError(.failed, "cannot archive the changes of container \(container.name): \(error)")
        }
        let unpacked: LayerUnpackResult
        do {
            try Files.makeDirectories(layerPath + "/diff", mode: 0o755)
            let diff = try FileDescriptor.open(layerPath + "/diff", O_RDONLY | O_DIRECTORY | O_CLOEXEC)
            defer { diff.close() }
            let input = try FileDescriptor.open(blobPath, O_RDONLY | O_CLOEXEC)
            defer { input.close() }
            unpacked = try LayerUnpacker.unpack(input: input, compression: .none, into: diff,
                                                options: LayerUnpackOptions.defaults(rootless: rootless))
        } catch let error as ImageError {
            throw EngineError(.failed, "cannot store the new layer: \(error.message)")
        } catch {
            throw EngineError(.failed, "cannot store the new layer: \(error)")
        }
        // Uncompressed, the blob is the tar: its digest is the diff ID.
        let diffID = unpacked.diffID
        let size = unpacked.uncompressedSize
        let diffIDs = squash ? [diffID] : config.rootfs.diff_ids + [diffID]
        let chains = ImageStore.chainIDs(diffIDs)
        let chainID = chains[chains.count - 1]
        let parent = chains.count > 1 ? chains[chains.count - 2] : nil

        let now = ImageStore.timestamp()
        config.created = now
        if let author = options.author { config.author = author }
        config.config = inner
        config.rootfs = ImageConfiguration.RootFS(diffIDs: diffIDs)
        var entry = ImageConfiguration.History(created: now, createdBy: container.config.command.joined(separator: " "),
                                               comment: options.message)
        entry.author = options.author
        config.history = (squash ? [] : config.history ?? []) + [entry]
        let baseLayers = squash ? [] : base.layers
        let layer = ImageRecord.Layer(chainID: chainID, diffID: diffID, blob: diffID, mediaType: MediaType.ociLayer,
                                      compressedSize: size, size: size)
        do {
            let configBytes = try ImageImporter.encode(config)
            let record = try store.withLock { () throws -> ImageRecord in
                for layer in baseLayers where !store.hasLayer(layer.chainID) {
                    throw EngineError(.failed, "layer \(layer.chainID.short) of image \(base.id.short) is gone (a concurrent rmi?): commit again")
                }
                if !store.hasBlob(diffID) { try store.adoptBlob(temporary: blobPath, digest: diffID) }
                try store.commitLayer(temporary: layerPath, record: LayerRecord(
                    chainID: chainID, diffID: diffID, parent: parent, size: size, blob: diffID,
                    mediaType: MediaType.ociLayer, entries: unpacked.entries))
                committed = true
                let configDigest = try store.writeBlob(configBytes)
                let manifest = ImageManifest(
                    config: Descriptor(mediaType: MediaType.ociConfig, digest: configDigest, size: Int64(configBytes.count)),
                    layers: baseLayers.map { Descriptor(mediaType: Engine.ociMediaType($0.mediaType), digest: $0.blob, size: $0.compressedSize) }
                        + [Descriptor(mediaType: MediaType.ociLayer, digest: diffID, size: size)])
                let manifestBytes = try ImageImporter.encode(manifest)
                let manifestDigest = try store.writeBlob(manifestBytes)
                let record = ImageRecord(
                    id: configDigest, names: store.image(configDigest)?.names ?? [], digests: [], manifestDigest: manifestDigest,
                    manifestMediaType: MediaType.ociManifest, indexDigest: nil, layers: baseLayers + [layer],
                    created: now, added: now, platform: config.platform)
                try store.save(record)
                if let name = options.name { try store.tag(record.id, as: name) }
                return store.image(record.id) ?? record
            }
            return record
        } catch let error as EngineError {
            throw error
        } catch let error as ImageError {
            throw EngineError(.failed, "cannot store the image: \(error.message)")
        } catch {
            throw EngineError(.failed, "cannot store the image: \(error)")
        }
    }

    /// The image config a commit starts from: the image's, with what the
    /// container was created with (docker's and podman's commit keep the
    /// container's command, environment and the rest).
    package static func committedConfig(_ settings: ContainerConfig, image: ImageConfiguration.Config) -> ImageConfiguration.Config {
        var inner = image
        inner.Entrypoint = settings.entrypoint.isEmpty ? nil : settings.entrypoint
        inner.Cmd = settings.cmd.isEmpty ? nil : settings.cmd
        // HOSTNAME is the container's own, set at run.
        let env = settings.env.filter { !$0.hasPrefix("HOSTNAME=") || (image.Env ?? []).contains($0) }
        inner.Env = env.isEmpty ? image.Env : env
        if settings.workingDir != "/" || image.WorkingDir != nil { inner.WorkingDir = settings.workingDir }
        if !settings.user.isEmpty { inner.User = settings.user }
        if !settings.labels.isEmpty { inner.Labels = (image.Labels ?? [:]).merging(settings.labels) { $1 } }
        if settings.stopSignal != "SIGTERM" || image.StopSignal != nil { inner.StopSignal = settings.stopSignal }
        if !settings.exposedPorts.isEmpty {
            var ports = image.ExposedPorts ?? [:]
            for port in settings.exposedPorts { ports[port] = .object([:]) }
            inner.ExposedPorts = ports
        }
        return inner
    }

    /// Docker's layer media types as their OCI equals (same bytes), for an OCI manifest.
    static func ociMediaType(_ type: String) -> String {
        switch type {
        case MediaType.dockerLayerGzip: return MediaType.ociLayerGzip
        case MediaType.dockerLayerForeignGzip: return MediaType.ociLayerNondistributableGzip
        case "application/vnd.docker.image.rootfs.diff.tar": return MediaType.ociLayer
        default: return type
        }
    }
}

// MARK: - processes (top)

/// One process of a container, as `top` shows it: ids both as the
/// container sees them and as the host does.
package struct ContainerProcess: Sendable, Equatable {
    package var hostPID: pid_t
    /// In the container's pid namespace.
    package var pid: pid_t
    /// In the container's pid namespace; 0 when the parent is outside it.
    package var parentPID: pid_t
    package var hostParentPID: pid_t
    package var processGroup: pid_t
    /// Effective ids, as the container sees them.
    package var uid: UInt32
    package var gid: UInt32
    package var realUID: UInt32
    package var realGID: UInt32
    package var hostUID: UInt32
    package var hostGID: UInt32
    package var state: String
    package var nice: Int
    /// "pts/0", or "?" without a terminal.
    package var tty: String
    package var cpuNanoseconds: UInt64
    package var elapsedNanoseconds: UInt64
    /// Seconds since the epoch.
    package var startTime: Int64
    package var virtualKiB: UInt64
    package var residentKiB: UInt64
    package var command: String
    package var arguments: [String]
}

extension Engine {
    /// The container's processes (those of its cgroup, or of its pid
    /// namespace), read from /proc.
    package func processes(_ container: Container) throws(EngineError) -> [ContainerProcess] {
        guard isRunning(container) else {
            throw EngineError(.invalidState, "container \(container.name) is not running")
        }
        let pids: [pid_t]
        do { pids = try Operations.pids(container.id, paths: runtime) } catch {
            throw EngineError(.failed, error.message)
        }
        let ticks = UInt64(max(1, sysconf(Int32(_SC_CLK_TCK))))
        var boot = timespec()
        clock_gettime(CLOCK_BOOTTIME, &boot)
        let uptime = UInt64(boot.tv_sec) * 1_000_000_000 + UInt64(boot.tv_nsec)
        let bootEpoch = Int64(time(nil)) - Int64(boot.tv_sec)
        let page = UInt64(max(1, sysconf(Int32(_SC_PAGESIZE))))
        let uidMap = Engine.idMap((try? Files.readString("/proc/\(container.state.pid)/uid_map")) ?? "")
        let gidMap = Engine.idMap((try? Files.readString("/proc/\(container.state.pid)/gid_map")) ?? "")
        var result: [ContainerProcess] = []
        var namespacePID: [pid_t: pid_t] = [:]
        for hostPID in pids {
            guard let stat = try? Files.readString("/proc/\(hostPID)/stat"),
                  let status = try? Files.readString("/proc/\(hostPID)/status"),
                  let open = stat.firstIndex(of: "("), let close = stat.lastIndex(of: ")") else { continue }
            let fields = stat[stat.index(after: close)...].split(separator: " ").map(String.init)
            guard fields.count > 21 else { continue }
            func number(_ index: Int) -> UInt64 { UInt64(fields[index]) ?? 0 }
            var values: [String: [String]] = [:]
            for line in status.split(separator: "\n") {
                guard let colon = line.firstIndex(of: ":") else { continue }
                values[String(line[..<colon])] = line[line.index(after: colon)...].split(whereSeparator: { $0 == "\t" || $0 == " " }).map(String.init)
            }
            let uids = (values["Uid"] ?? []).compactMap { UInt32($0) }
            let gids = (values["Gid"] ?? []).compactMap { UInt32($0) }
            let nspid = pid_t(values["NSpid"]?.last ?? "") ?? hostPID
            namespacePID[hostPID] = nspid
            let started = number(19)
            let startNanoseconds = started * 1_000_000_000 / ticks
            let cmdline = (try? Files.read("/proc/\(hostPID)/cmdline")) ?? []
            let arguments = cmdline.split(separator: 0, omittingEmptySubsequences: false).map { String(decoding: $0, as: UTF8.self) }
            let hostUID = uids.count > 1 ? uids[1] : 0, hostGID = gids.count > 1 ? gids[1] : 0
            result.append(ContainerProcess(
                hostPID: hostPID, pid: nspid, parentPID: 0, hostParentPID: pid_t(fields[1]) ?? 0,
                processGroup: pid_t(fields[2]) ?? 0,
                uid: Engine.mapID(hostUID, uidMap), gid: Engine.mapID(hostGID, gidMap),
                realUID: Engine.mapID(uids.first ?? 0, uidMap), realGID: Engine.mapID(gids.first ?? 0, gidMap),
                hostUID: hostUID, hostGID: hostGID,
                state: fields[0], nice: Int(fields[16]) ?? 0, tty: Engine.ttyName(Int(fields[4]) ?? 0),
                cpuNanoseconds: (number(11) + number(12)) * 1_000_000_000 / ticks,
                elapsedNanoseconds: uptime > startNanoseconds ? uptime - startNanoseconds : 0,
                startTime: bootEpoch + Int64(started / ticks),
                virtualKiB: number(20) / 1024, residentKiB: number(21) * page / 1024,
                command: String(stat[stat.index(after: open)..<close]),
                arguments: arguments.last == "" ? Array(arguments.dropLast()) : arguments))
        }
        for index in result.indices { result[index].parentPID = namespacePID[result[index].hostParentPID] ?? 0 }
        return result.sorted { $0.pid < $1.pid }
    }

    /// uid_map/gid_map lines: (inside, outside, count).
    static func idMap(_ text: String) -> [(UInt32, UInt32, UInt32)] {
        text.split(separator: "\n").compactMap { line in
            let parts = line.split(separator: " ", omittingEmptySubsequences: true).compactMap { UInt32($0) }
            return parts.count == 3 ? (parts[0], parts[1], parts[2]) : nil
        }
    }

    /// A host id as the namespace of `map` sees it (65534 when unmapped).
    static func mapID(_ id: UInt32, _ map: [(UInt32, UInt32, UInt32)]) -> UInt32 {
        if map.isEmpty { return id }
        for (inside, outside, count) in map where id >= outside && UInt64(id) < UInt64(outside) + UInt64(count) {
            return inside + (id - outside)
        }
        return 65534
    }

    /// /proc's tty_nr as ps names it.
    package static func ttyName(_ number: Int) -> String {
        guard number != 0 else { return "?" }
        let major = (number >> 8) & 0xfff
        let minor = (number & 0xff) | ((number >> 12) & 0xfff00)
        switch major {
        case 136...143: return "pts/\(minor + (major - 136) * 256)"
        case 4: return minor < 64 ? "tty\(minor)" : "ttyS\(minor - 64)"
        case 5 where minor == 1: return "console"
        default: return "\(major):\(minor)"
        }
    }

    /// Go's time.Duration.String ("0s", "1.5ms", "4.102656838s", "1h2m3s"), as podman prints durations.
    package static func goDuration(nanoseconds: UInt64) -> String {
        func fraction(_ value: UInt64, unit: UInt64, digits: Int) -> String {
            let whole = value / unit, rest = value % unit
            guard rest > 0 else { return String(whole) }
            var text = String(rest)
            text = String(repeating: "0", count: digits - text.count) + text
            while text.hasSuffix("0") { text.removeLast() }
            return "\(whole).\(text)"
        }
        let d = nanoseconds
        if d == 0 { return "0s" }
        if d < 1_000 { return "\(d)ns" }
        if d < 1_000_000 { return fraction(d, unit: 1_000, digits: 3) + "µs" }
        if d < 1_000_000_000 { return fraction(d, unit: 1_000_000, digits: 6) + "ms" }
        let hours = d / 3_600_000_000_000
        let minutes = d / 60_000_000_000 % 60
        let seconds = fraction(d % 60_000_000_000, unit: 1_000_000_000, digits: 9)
        return (hours > 0 ? "\(hours)h" : "") + (hours > 0 || minutes > 0 ? "\(minutes)m" : "") + seconds + "s"
    }

    /// `value` with `decimals` digits after the point (no String(format:) here).
    package static func fixed(_ value: Double, decimals: Int) -> String {
        var scale = 1.0
        for _ in 0..<decimals { scale *= 10 }
        let scaled = (abs(value) * scale).rounded()
        guard scaled.isFinite, scaled < 9e18 else { return String(value) }
        let units = UInt64(scaled)
        let power = UInt64(scale)
        var text = String(units / power)
        if decimals > 0 {
            let rest = String(units % power)
            text += "." + String(repeating: "0", count: decimals - rest.count) + rest
        }
        return (value < 0 && units > 0 ? "-" : "") + text
    }
}

// MARK: - stats

/// One reading of a container's resource use. A value the host cannot
/// give (no cgroup, or no controller for it in the container's cgroup) is nil.
package struct ContainerStatsSample: Sendable {
    package var id: String
    package var name: String
    /// CLOCK_MONOTONIC nanoseconds of the reading.
    package var time: UInt64
    /// Since the container's process started.
    package var uptimeNanoseconds: UInt64?
    package var cpuNanoseconds: UInt64?
    package var memoryUsage: UInt64?
    /// memory.max, or the host's memory when unlimited.
    package var memoryLimit: UInt64?
    package var pids: Int
    package var networkReceived: UInt64?
    package var networkSent: UInt64?
    package var blockRead: UInt64?
    package var blockWritten: UInt64?

    /// CPU use in percent of one CPU: since `previous`, or on average since the container started.
    package func cpuPercent(since previous: ContainerStatsSample?) -> Double? {
        guard let cpu = cpuNanoseconds else { return nil }
        if let previous, let before = previous.cpuNanoseconds, time > previous.time {
            return Double(cpu >= before ? cpu - before : 0) / Double(time - previous.time) * 100
        }
        guard let uptime = uptimeNanoseconds, uptime > 0 else { return nil }
        return Double(cpu) / Double(uptime) * 100
    }

    package var memoryPercent: Double? {
        guard let usage = memoryUsage, let limit = memoryLimit, limit > 0 else { return nil }
        return Double(usage) / Double(limit) * 100
    }
}

extension Engine {
    /// Reads the container's cgroup (cpu.stat, memory.current/max,
    /// pids.current, io.stat) and /proc (its processes, net/dev). Never fails:
    /// what cannot be read stays nil.
    package func stats(_ container: Container) -> ContainerStatsSample {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        var sample = ContainerStatsSample(id: container.id, name: container.name,
                                          time: UInt64(now.tv_sec) * 1_000_000_000 + UInt64(now.tv_nsec), pids: 0)
        guard isRunning(container) else { return sample }
        let pids = (try? Operations.pids(container.id, paths: runtime)) ?? []
        sample.pids = pids.count
        let ticks = UInt64(max(1, sysconf(Int32(_SC_CLK_TCK))))
        func statFields(_ pid: pid_t) -> [Substring]? {
            guard let text = try? Files.readString("/proc/\(pid)/stat"), let close = text.lastIndex(of: ")") else { return nil }
            let fields = text[text.index(after: close)...].split(separator: " ")
            return fields.count > 19 ? fields : nil
        }
        if let fields = statFields(container.state.pid), let started = UInt64(fields[19]) {
            var boot = timespec()
            clock_gettime(CLOCK_BOOTTIME, &boot)
            let uptime = UInt64(boot.tv_sec) * 1_000_000_000 + UInt64(boot.tv_nsec)
            let start = started * 1_000_000_000 / ticks
            sample.uptimeNanoseconds = uptime > start ? uptime - start : 0
        }
        let cgroup = runtimeCgroup(container.id)
        if let cgroup, let usage = CgroupStatsReader.value(of: "usage_usec", inFile: cgroup + "/cpu.stat") {
            sample.cpuNanoseconds = usage * 1000
        } else {
            // No cgroup: what its processes have used (not counting those that ended).
            var total: UInt64 = 0
            for pid in pids {
                if let fields = statFields(pid) { total += ((UInt64(fields[11]) ?? 0) + (UInt64(fields[12]) ?? 0)) * 1_000_000_000 / ticks }
            }
            sample.cpuNanoseconds = total
        }
        if let cgroup {
            if let current = Engine.limit(cgroup + "/memory.current") {
                sample.memoryUsage = current
                sample.memoryLimit = Engine.limit(cgroup + "/memory.max") ?? Engine.hostMemory()
            }
            if let count = Engine.limit(cgroup + "/pids.current") { sample.pids = Int(count) }
            if let text = try? Files.readString(cgroup + "/io.stat") {
                var read: UInt64 = 0, written: UInt64 = 0
                for field in text.split(whereSeparator: { $0 == " " || $0 == "\n" }) {
                    if field.hasPrefix("rbytes=") { read += UInt64(field.dropFirst(7)) ?? 0 }
                    if field.hasPrefix("wbytes=") { written += UInt64(field.dropFirst(7)) ?? 0 }
                }
                sample.blockRead = read
                sample.blockWritten = written
            }
        }
        if container.config.network != "host", let text = try? Files.readString("/proc/\(container.state.pid)/net/dev") {
            var received: UInt64 = 0, sent: UInt64 = 0
            for line in text.split(separator: "\n").dropFirst(2) {
                guard let colon = line.firstIndex(of: ":") else { continue }
                if line[..<colon].trimmingCharacters(in: " ") == "lo" { continue }
                let numbers = line[line.index(after: colon)...].split(separator: " ").compactMap { UInt64($0) }
                if numbers.count > 8 { received += numbers[0]; sent += numbers[8] }
            }
            sample.networkReceived = received
            sample.networkSent = sent
        }
        return sample
    }

    /// The container's cgroup directory, from the runtime's state.json.
    func runtimeCgroup(_ id: String) -> String? {
        struct State: Decodable { var cgroup: String? }
        guard let bytes = try? Files.read(runtime.directory(of: id) + "/state.json"),
              let cgroup = (try? JSONDecoder().decode(State.self, from: Data(bytes)))?.cgroup, Files.isDirectory(cgroup) else { return nil }
        return cgroup
    }

    /// A single-value cgroup file; "max" (no limit) is nil.
    static func limit(_ path: String) -> UInt64? {
        CgroupStatsReader.single(path).flatMap { $0 == .max ? nil : $0 }
    }

    static func hostMemory() -> UInt64? {
        guard let text = try? Files.readString("/proc/meminfo") else { return nil }
        for line in text.split(separator: "\n") where line.hasPrefix("MemTotal:") {
            return line.split(separator: " ").dropFirst().first.flatMap { UInt64($0) }.map { $0 * 1024 }
        }
        return nil
    }
}

extension StringProtocol {
    fileprivate func trimmingCharacters(in character: Character) -> String {
        var text = Substring(self)
        while text.first == character { text.removeFirst() }
        while text.last == character { text.removeLast() }
        return String(text)
    }
}

// MARK: - system df and prune

/// Bytes of what is under a directory: regular files and links, each
/// inode once, never following a link or leaving the file system.
package enum DiskUsage {
    package static func size(of path: String) -> Int64 {
        guard let fd = try? FileDescriptor.open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC) else { return 0 }
        defer { fd.close() }
        var seen = Set<UInt64>()
        var st = stat()
        guard fstat(fd.rawValue, &st) == 0 else { return 0 }
        return size(fd, device: UInt64(st.st_dev), seen: &seen)
    }

    private static func size(_ directory: FileDescriptor, device: UInt64, seen: inout Set<UInt64>) -> Int64 {
        var total: Int64 = 0
        for name in (try? directoryEntries(directory)) ?? [] {
            let cName = cString(name)
            var st = stat()
            guard fstatat(directory.rawValue, cName, &st, AT_SYMLINK_NOFOLLOW) == 0, UInt64(st.st_dev) == device else { continue }
            switch st.st_mode & S_IFMT {
            case S_IFDIR:
                let child = berth_openat(directory.rawValue, cName, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC, 0)
                guard child >= 0 else { continue }
                let fd = FileDescriptor(rawValue: child)
                total += size(fd, device: device, seen: &seen)
                fd.close()
            case S_IFREG, S_IFLNK:
                if st.st_nlink > 1 && !seen.insert(UInt64(st.st_ino)).inserted { continue }
                total += Int64(st.st_size)
            default:
                continue
            }
        }
        return total
    }
}

/// One row of `system df`.
package struct DiskUsageRow: Sendable, Equatable {
    package var type: String
    package var total: Int
    package var active: Int
    package var size: Int64
    package var reclaimable: Int64
}

/// What `system prune` removed.
package struct PruneReport: Sendable {
    package var containers: [String] = []
    package var volumes: [String] = []
    package var images: [String] = []
    /// Bytes freed (apparent sizes: container changes, volume data, unpacked layers).
    package var reclaimed: Int64 = 0
}

extension Engine {
    /// Images, containers and local volumes: how many, how many in use
    /// (images a container was made from, running containers, volumes a
    /// container mounts), their size and what removing the unused would free.
    package func diskUsage() -> [DiskUsageRow] {
        let all = list(all: true)
        let records = images.images()
        let usedImages = Set(all.map(\.imageID))
        var layerSize: [Digest: Int64] = [:]
        var usedLayers = Set<Digest>()
        for record in records {
            for layer in record.layers {
                layerSize[layer.chainID] = layer.size
                if usedImages.contains(record.id.description) { usedLayers.insert(layer.chainID) }
            }
        }
        let imageSize = layerSize.values.reduce(0, +)
        let imageReclaimable = layerSize.filter { !usedLayers.contains($0.key) }.values.reduce(0, +)
        var containerSize: Int64 = 0, containerReclaimable: Int64 = 0, running = 0
        for container in all {
            let size = DiskUsage.size(of: containers.path(container.id) + "/upper")
            containerSize += size
            if isRunning(container) { running += 1 } else { containerReclaimable += size }
        }
        let volumeRecords = volumes.list()
        var volumeSize: Int64 = 0, volumeReclaimable: Int64 = 0, usedVolumes = 0
        for volume in volumeRecords {
            let size = DiskUsage.size(of: volumes.dataPath(volume.name))
            volumeSize += size
            let used = all.contains { $0.config.mounts.contains { $0.type == "volume" && $0.source == volume.name } }
            if used { usedVolumes += 1 } else { volumeReclaimable += size }
        }
        return [
            DiskUsageRow(type: "Images", total: records.count, active: records.filter { usedImages.contains($0.id.description) }.count,
                         size: imageSize, reclaimable: imageReclaimable),
            DiskUsageRow(type: "Containers", total: all.count, active: running, size: containerSize, reclaimable: containerReclaimable),
            DiskUsageRow(type: "Local Volumes", total: volumeRecords.count, active: usedVolumes, size: volumeSize, reclaimable: volumeReclaimable),
        ]
    }

    /// Removes every container that is not running, then (`volumes`) every
    /// volume no container mounts, then images no container was made from:
    /// those without a name, or (`all`) every one; then layers and blobs no
    /// image needs. Rootless, call inside the store's user namespace.
    package func prune(all: Bool, volumes pruneVolumes: Bool) throws(EngineError) -> PruneReport {
        var report = PruneReport()
        for container in list(all: true) where !isRunning(container) && container.state.status != "running" && container.state.status != "paused" {
            let size = DiskUsage.size(of: containers.path(container.id) + "/upper")
            if (try? remove(container, force: false, volumes: false)) != nil {
                report.containers.append(container.id)
                report.reclaimed += size
            }
        }
        if pruneVolumes {
            for volume in volumes.list() where usersOf(volume: volume.name).isEmpty {
                let size = DiskUsage.size(of: volumes.dataPath(volume.name))
                do {
                    if let leftover = try volumes.remove(volume.name, inUseBy: []) { containers.removeDirectory(leftover) }
                } catch {
                    continue
                }
                report.volumes.append(volume.name)
                report.reclaimed += size
            }
        }
        let store = images
        do {
            let (removed, freed) = try store.withLock { () -> ([String], Int64) in
                let used = Set(containers.list().map(\.imageID))
                let records = store.images()
                let doomed = records.filter { !used.contains($0.id.description) && (all || $0.names.isEmpty) }
                let doomedIDs = Set(doomed.map(\.id))
                let kept = Set(records.filter { !doomedIDs.contains($0.id) }.flatMap { $0.layers.map(\.chainID) })
                var freed: [Digest: Int64] = [:]
                for record in doomed {
                    for layer in record.layers where !kept.contains(layer.chainID) { freed[layer.chainID] = layer.size }
                    store.deleteRecord(record.id)
                }
                store.collectGarbage()
                return (doomed.map(\.id.hex), freed.values.reduce(0, +))
            }
            report.images = removed
            report.reclaimed += freed
        } catch {
            throw EngineError(.failed, "prune images: \(error)")
        }
        return report
    }
}

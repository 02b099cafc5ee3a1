#if canImport(Glibc)
import Glibc
#endif
import BerthOS
import CArchive
import CBerth

/// A problem with one entry; the unpacker names the entry in front of it.
struct EntryProblem: Error {
    let message: String
    init(_ message: String) { self.message = message }
}

/// One tar header, in the unpacker's terms.
struct LayerEntry {
    enum Kind: Equatable {
        case directory, regularFile, symlink, hardlink, characterDevice, blockDevice, fifo, unsupported
    }

    var kind: Kind
    var name: [UInt8]
    /// The symlink's or the hardlink's target.
    var link: [UInt8] = []
    /// Permission bits with setuid, setgid and sticky.
    var mode: mode_t
    var uid: Int64
    var gid: Int64
    var size: Int64
    var deviceMajor: UInt32
    var deviceMinor: UInt32
    var accessTime: timespec
    var modificationTime: timespec

    init(_ entry: OpaquePointer) {
        name = LayerEntry.bytes(archive_entry_pathname(entry) ?? archive_entry_pathname_utf8(entry))
        if let hardlink = archive_entry_hardlink(entry) {
            kind = .hardlink
            link = LayerEntry.bytes(hardlink)
        } else {
            switch archive_entry_filetype(entry) & 0o170000 {
            case 0o040000: kind = .directory
            case 0o100000: kind = .regularFile
            case 0o120000:
                kind = .symlink
                link = LayerEntry.bytes(archive_entry_symlink(entry))
            case 0o020000: kind = .characterDevice
            case 0o060000: kind = .blockDevice
            case 0o010000: kind = .fifo
            default: kind = .unsupported
            }
        }
        mode = archive_entry_perm(entry) & 0o7777
        uid = archive_entry_uid(entry)
        gid = archive_entry_gid(entry)
        size = archive_entry_size(entry)
        deviceMajor = UInt32(truncatingIfNeeded: archive_entry_rdevmajor(entry))
        deviceMinor = UInt32(truncatingIfNeeded: archive_entry_rdevminor(entry))
        modificationTime = LayerEntry.time(archive_entry_mtime(entry), archive_entry_mtime_nsec(entry))
        accessTime = archive_entry_atime_is_set(entry) != 0
            ? LayerEntry.time(archive_entry_atime(entry), archive_entry_atime_nsec(entry))
            : modificationTime
    }

    static func bytes(_ pointer: UnsafePointer<CChar>?) -> [UInt8] {
        guard let pointer else { return [] }
        return Array(UnsafeRawBufferPointer(start: pointer, count: strlen(pointer)))
    }

    static func time(_ seconds: time_t, _ nanoseconds: Int) -> timespec {
        timespec(tv_sec: seconds, tv_nsec: min(max(nanoseconds, 0), 999_999_999))
    }
}

/// Creates a layer's entries beneath its root, one at a time, and at the end
/// gives directories their modes and times (deepest first, so creating
/// children does not disturb them, and an unwritable directory does not stop
/// its own entries).
struct LayerWriter {
    /// Linux's PATH_MAX: a longer name cannot be a path the layer will use.
    static let maximumNameLength = 4096
    static let whiteoutPrefix: [UInt8] = Array(".wh.".utf8)
    static let aufsMetadataPrefix: [UInt8] = Array(".wh..wh.".utf8)
    static let opaqueMarker: [UInt8] = Array(".wh..wh..opq".utf8)

    let root: LayerRoot
    let options: LayerUnpackOptions
    private var directories: [DirectoryRecord] = []
    private var directoryIndex: [[[UInt8]]: Int] = [:]

    /// A directory's deferred mode and times, and which inode they are for.
    struct DirectoryRecord {
        var path: LayerPath
        var device: UInt64
        var inode: UInt64
        var mode: mode_t
        var times: [timespec]
    }

    init(root: LayerRoot, options: LayerUnpackOptions) {
        self.root = root
        self.options = options
    }

    /// Writes one entry; returns its name for messages.
    mutating func write(_ archiveEntry: OpaquePointer, archive: OpaquePointer) throws(ImageError) -> String {
        let entry = LayerEntry(archiveEntry)
        let display = Self.display(entry.name)
        do throws(EntryProblem) {
            try write(entry, archiveEntry, archive)
        } catch {
            throw ImageError("layer entry \(display): \(error.message)")
        }
        return display
    }

    private mutating func write(_ entry: LayerEntry, _ archiveEntry: OpaquePointer, _ archive: OpaquePointer) throws(EntryProblem) {
        if entry.name.isEmpty { throw EntryProblem("entry without a name") }
        if entry.name.count > Self.maximumNameLength {
            throw EntryProblem("name is \(entry.name.count) bytes long, over the \(Self.maximumNameLength)-byte limit")
        }
        guard let path = LayerPath.clean(entry.name) else { throw EntryProblem("path escapes the layer root") }

        // Whiteouts, and aufs's metadata (.wh..wh.plnk, .wh..wh.aufs), which is skipped.
        if path.parent.contains(where: { $0.starts(with: Self.aufsMetadataPrefix) }) { return }
        let name = path.name
        if name == Self.opaqueMarker { return try markOpaque(LayerPath(components: Array(path.parent))) }
        if name.starts(with: Self.aufsMetadataPrefix) { return }
        if name.starts(with: Self.whiteoutPrefix) {
            let target = Array(name.dropFirst(Self.whiteoutPrefix.count))
            if target.isEmpty || target == Array(".".utf8) || target == Array("..".utf8) {
                throw EntryProblem("invalid whiteout of \(Self.display(target))")
            }
            return try whiteOut(LayerPath(components: Array(path.parent) + [target]))
        }
        if path.isRoot && entry.kind != .directory { throw EntryProblem("only a directory can be the layer root") }

        switch entry.kind {
        case .directory: try makeDirectory(path, entry, archiveEntry)
        case .regularFile: try makeFile(path, entry, archiveEntry, archive)
        case .symlink: try makeSymlink(path, entry, archiveEntry)
        case .hardlink: try makeHardlink(path, entry)
        case .characterDevice, .blockDevice:
            if options.allowDeviceNodes { try makeNode(path, entry, archiveEntry) }
        case .fifo: try makeNode(path, entry, archiveEntry)
        case .unsupported: return
        }
    }

    // MARK: entry kinds

    private mutating func makeDirectory(_ path: LayerPath, _ entry: LayerEntry, _ archiveEntry: OpaquePointer) throws(EntryProblem) {
        let directory: FileDescriptor
        if path.isRoot {
            directory = try call("open") { () throws(Errno) in try openAt(root.descriptor, Array(".".utf8), O_RDONLY | O_DIRECTORY) }
        } else {
            let parent = try parentDirectory(path)
            defer { parent.close() }
            let name = cString(path.name)
            // 0700 until finish() sets the mode: the entries inside come first.
            if mkdirat(parent.rawValue, name, 0o700) != 0 {
                guard Errno.current == .exists else { throw EntryProblem("mkdir: \(Errno.current)") }
                var st = Glibc.stat()
                if fstatat(parent.rawValue, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && (st.st_mode & S_IFMT) != S_IFDIR {
                    try call("replace") { () throws(Errno) in try removeEntry(parent, path.name) }
                    if mkdirat(parent.rawValue, name, 0o700) != 0 { throw EntryProblem("mkdir: \(Errno.current)") }
                }
            }
            directory = try call("open") { () throws(Errno) in try openAt(parent, path.name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW) }
        }
        defer { directory.close() }
        try setOwner(directory, entry)
        try setAttributes(archiveEntry) { name, value, size in berth_fsetxattr(directory.rawValue, name, value, size) }
        var st = Glibc.stat()
        if fstat(directory.rawValue, &st) != 0 { throw EntryProblem("stat: \(Errno.current)") }
        let record = DirectoryRecord(path: path, device: UInt64(st.st_dev), inode: UInt64(st.st_ino), mode: entry.mode,
                                     times: [entry.accessTime, entry.modificationTime])
        if let index = directoryIndex[path.components] {
            directories[index] = record
        } else {
            directoryIndex[path.components] = directories.count
            directories.append(record)
        }
    }

    private func makeFile(_ path: LayerPath, _ entry: LayerEntry, _ archiveEntry: OpaquePointer, _ archive: OpaquePointer) throws(EntryProblem) {
        let parent = try parentDirectory(path)
        defer { parent.close() }
        let file = try replacing(parent, path.name) { () throws(Errno) in
            try openAt(parent, path.name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, mode: 0o600)
        }
        defer { file.close() }
        try copyData(archive, to: file, size: entry.size)
        try setOwner(file, entry)
        if fchmod(file.rawValue, entry.mode) != 0 { throw EntryProblem("chmod: \(Errno.current)") }
        try setAttributes(archiveEntry) { name, value, size in berth_fsetxattr(file.rawValue, name, value, size) }
        let times = [entry.accessTime, entry.modificationTime]
        if futimens(file.rawValue, times) != 0 { throw EntryProblem("set times: \(Errno.current)") }
    }

    private func makeSymlink(_ path: LayerPath, _ entry: LayerEntry, _ archiveEntry: OpaquePointer) throws(EntryProblem) {
        if entry.link.isEmpty { throw EntryProblem("symlink without a target") }
        let parent = try parentDirectory(path)
        defer { parent.close() }
        let name = cString(path.name)
        let target = cString(entry.link)
        try replacing(parent, path.name) { () throws(Errno) in _ = try check(symlinkat(target, parent.rawValue, name)) }
        try finishNode(parent, path.name, entry, archiveEntry, chmod: false)
    }

    private func makeNode(_ path: LayerPath, _ entry: LayerEntry, _ archiveEntry: OpaquePointer) throws(EntryProblem) {
        let parent = try parentDirectory(path)
        defer { parent.close() }
        let name = cString(path.name)
        let type: mode_t = switch entry.kind {
        case .characterDevice: S_IFCHR
        case .blockDevice: S_IFBLK
        default: S_IFIFO
        }
        let device = entry.kind == .fifo ? 0 : berth_makedev(entry.deviceMajor, entry.deviceMinor)
        try replacing(parent, path.name) { () throws(Errno) in
            _ = try check(mknodat(parent.rawValue, name, type | (entry.mode & 0o777), device))
        }
        try finishNode(parent, path.name, entry, archiveEntry, chmod: true)
    }

    /// Owner, mode, xattrs and times of something that cannot be opened
    /// (a symlink, device or fifo), by name in its parent, never following it.
    private func finishNode(_ parent: FileDescriptor, _ name: [UInt8], _ entry: LayerEntry, _ archiveEntry: OpaquePointer,
                            chmod: Bool) throws(EntryProblem) {
        let cName = cString(name)
        if options.preserveOwnership {
            let (uid, gid) = try owner(entry)
            if fchownat(parent.rawValue, cName, uid, gid, AT_SYMLINK_NOFOLLOW) != 0 {
                throw EntryProblem("chown \(uid):\(gid): \(Errno.current)")
            }
        }
        // Not a symlink (created just now by this process): fchmodat's follow is moot.
        if chmod && fchmodat(parent.rawValue, cName, entry.mode, 0) != 0 { throw EntryProblem("chmod: \(Errno.current)") }
        try setAttributes(archiveEntry) { attribute, value, size in berth_setxattr_at(parent.rawValue, cName, attribute, value, size) }
        let times = [entry.accessTime, entry.modificationTime]
        if utimensat(parent.rawValue, cName, times, AT_SYMLINK_NOFOLLOW) != 0 { throw EntryProblem("set times: \(Errno.current)") }
    }

    /// A hardlink to an earlier entry of this layer. Its own header's owner,
    /// mode and times are not applied: the inode already has the target's.
    private func makeHardlink(_ path: LayerPath, _ entry: LayerEntry) throws(EntryProblem) {
        let display = Self.display(entry.link)
        guard let target = LayerPath.clean(entry.link) else { throw EntryProblem("hardlink target \(display) escapes the layer root") }
        if target.isRoot { throw EntryProblem("hardlink to the layer root") }
        let targetParent: FileDescriptor
        do { targetParent = try root.openDirectory(target.parent) } catch {
            throw EntryProblem("hardlink target \(display) is not in this layer")
        }
        defer { targetParent.close() }
        let targetName = cString(target.name)
        var targetStat = Glibc.stat()
        if fstatat(targetParent.rawValue, targetName, &targetStat, AT_SYMLINK_NOFOLLOW) != 0 {
            throw EntryProblem("hardlink target \(display) is not in this layer")
        }
        if (targetStat.st_mode & S_IFMT) == S_IFDIR { throw EntryProblem("hardlink target \(display) is a directory") }
        let parent = try parentDirectory(path)
        defer { parent.close() }
        let name = cString(path.name)
        var existing = Glibc.stat()
        if fstatat(parent.rawValue, name, &existing, AT_SYMLINK_NOFOLLOW) == 0
            && existing.st_ino == targetStat.st_ino && existing.st_dev == targetStat.st_dev {
            return  // already that inode (a link to itself)
        }
        try replacing(parent, path.name) { () throws(Errno) in
            _ = try check(linkat(targetParent.rawValue, targetName, parent.rawValue, name, 0))
        }
    }

    // MARK: whiteouts

    /// `dir/.wh.name`: removes `dir/name` if this layer made it, and records
    /// the deletion for overlayfs.
    private func whiteOut(_ path: LayerPath) throws(EntryProblem) {
        let parent = try parentDirectory(path)
        defer { parent.close() }
        try call("remove") { () throws(Errno) in try removeEntry(parent, path.name) }
        let name = cString(path.name)
        if mknodat(parent.rawValue, name, S_IFCHR, 0) == 0 { return }
        guard Errno.current == .notPermitted else { throw EntryProblem("mknod whiteout: \(Errno.current)") }
        // Kernels before 5.8 refuse 0/0 devices without CAP_MKNOD: overlayfs
        // (6.7+) also takes an empty file with "overlay.whiteout" whose
        // directory is marked "overlay.opaque=x" (has such whiteouts).
        let file = try call("create whiteout") { () throws(Errno) in
            try openAt(parent, path.name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, mode: 0o600)
        }
        defer { file.close() }
        let prefix = options.whiteouts.xattrPrefix
        if berth_fsetxattr(file.rawValue, prefix + "whiteout", "", 0) != 0 { throw EntryProblem("set whiteout xattr: \(Errno.current)") }
        let directory = try call("open") { () throws(Errno) in try openAt(parent, Array(".".utf8), O_RDONLY | O_DIRECTORY) }
        defer { directory.close() }
        var current: UInt8 = 0
        let opaque = prefix + "opaque"
        if berth_fgetxattr(directory.rawValue, opaque, &current, 1) == 1 && current == UInt8(ascii: "y") { return }
        if berth_fsetxattr(directory.rawValue, opaque, "x", 1) != 0 { throw EntryProblem("set \(opaque): \(Errno.current)") }
    }

    /// `dir/.wh..wh..opq`: the lower layers' `dir` is hidden; this layer's
    /// entries in it stay, whichever order they come in.
    private func markOpaque(_ directoryPath: LayerPath) throws(EntryProblem) {
        let parent = try call("opaque directory") { () throws(Errno) in try root.makeDirectories(directoryPath.components[...]) }
        defer { parent.close() }
        let directory = try call("open") { () throws(Errno) in try openAt(parent, Array(".".utf8), O_RDONLY | O_DIRECTORY) }
        defer { directory.close() }
        let attribute = options.whiteouts.xattrPrefix + "opaque"
        if berth_fsetxattr(directory.rawValue, attribute, "y", 1) != 0 { throw EntryProblem("set \(attribute): \(Errno.current)") }
    }

    // MARK: the end

    /// Directory modes and times, deepest first. A directory a later entry
    /// removed or replaced is left alone (checked by inode).
    func finish() throws(ImageError) {
        let order = directories.indices.sorted {
            let (a, b) = (directories[$0].path.components.count, directories[$1].path.components.count)
            return a != b ? a > b : $0 < $1
        }
        for index in order {
            let record = directories[index]
            guard let directory = try? reopen(record.path) else { continue }
            defer { directory.close() }
            var st = Glibc.stat()
            guard fstat(directory.rawValue, &st) == 0, UInt64(st.st_dev) == record.device, UInt64(st.st_ino) == record.inode else {
                continue
            }
            if fchmod(directory.rawValue, record.mode) != 0 {
                throw ImageError("layer entry \(record.path.display): chmod: \(Errno.current)")
            }
            if futimens(directory.rawValue, record.times) != 0 {
                throw ImageError("layer entry \(record.path.display): set times: \(Errno.current)")
            }
        }
    }

    private func reopen(_ path: LayerPath) throws(Errno) -> FileDescriptor {
        if path.isRoot { return try openAt(root.descriptor, Array(".".utf8), O_RDONLY | O_DIRECTORY) }
        let parent = try root.openDirectory(path.parent)
        defer { parent.close() }
        return try openAt(parent, path.name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW)
    }

    // MARK: helpers

    /// The entry's parent directory (O_PATH), created as needed, resolved in the root.
    private func parentDirectory(_ path: LayerPath) throws(EntryProblem) -> FileDescriptor {
        do { return try root.makeDirectories(path.parent) } catch {
            throw EntryProblem("parent directory: \(error)")
        }
    }

    /// Runs `create`; when the name is taken, removes what is there (a
    /// directory with its contents, as docker does) and runs it once more.
    @discardableResult
    private func replacing<T>(_ parent: FileDescriptor, _ name: [UInt8], _ create: () throws(Errno) -> T) throws(EntryProblem) -> T {
        do throws(Errno) { return try create() } catch where error != .exists {
            throw EntryProblem("create: \(error)")
        } catch {}
        do {
            try removeEntry(parent, name)
            return try create()
        } catch {
            throw EntryProblem("replace: \(error)")
        }
    }

    private func call<T>(_ what: String, _ body: () throws(Errno) -> T) throws(EntryProblem) -> T {
        do { return try body() } catch { throw EntryProblem("\(what): \(error)") }
    }

    private func owner(_ entry: LayerEntry) throws(EntryProblem) -> (uid_t, gid_t) {
        guard (0..<Int64(UInt32.max)).contains(entry.uid), (0..<Int64(UInt32.max)).contains(entry.gid) else {
            throw EntryProblem("owner \(entry.uid):\(entry.gid) is out of range")
        }
        return (uid_t(entry.uid), gid_t(entry.gid))
    }

    /// fchown before any chmod: chown clears setuid and setgid bits.
    private func setOwner(_ descriptor: FileDescriptor, _ entry: LayerEntry) throws(EntryProblem) {
        guard options.preserveOwnership else { return }
        let (uid, gid) = try owner(entry)
        if fchown(descriptor.rawValue, uid, gid) != 0 { throw EntryProblem("chown \(uid):\(gid): \(Errno.current)") }
    }

    /// Xattr names a layer may not set: security.* but file capabilities
    /// (selinux labels, IMA/EVM belong to the host), trusted.* (overlayfs's
    /// own whiteouts, opaque markers and redirects among them),
    /// user.overlay.* (the same for a userxattr overlay), and system.* but
    /// POSIX ACLs.
    static func acceptsAttribute(_ name: String) -> Bool {
        if name.hasPrefix("security.") { return name == "security.capability" }
        if name.hasPrefix("trusted.") || name.hasPrefix("user.overlay.") { return false }
        if name.hasPrefix("system.") { return name == "system.posix_acl_access" || name == "system.posix_acl_default" }
        return true
    }

    private func setAttributes(_ archiveEntry: OpaquePointer,
                               _ set: (UnsafePointer<CChar>, UnsafeRawPointer?, Int) -> Int32) throws(EntryProblem) {
        guard options.extendedAttributes, archive_entry_xattr_reset(archiveEntry) > 0 else { return }
        var name: UnsafePointer<CChar>?
        var value: UnsafeRawPointer?
        var size = 0
        while archive_entry_xattr_next(archiveEntry, &name, &value, &size) == ARCHIVE_OK {
            guard let name else { continue }
            let text = String(cString: name)
            guard Self.acceptsAttribute(text) else { continue }
            if set(name, value, size) != 0 {
                let error = Errno.current
                // As docker: a file system without xattrs (or without this
                // namespace, like user.* on a symlink) loses them quietly.
                if error == .notPermitted || error.rawValue == EOPNOTSUPP { continue }
                throw EntryProblem("set xattr \(text): \(error)")
            }
        }
    }

    /// The entry's data, sparse holes included, then its size.
    private func copyData(_ archive: OpaquePointer, to file: FileDescriptor, size: Int64) throws(EntryProblem) {
        var block: UnsafeRawPointer?
        var length = 0
        var offset: la_int64_t = 0
        var end: Int64 = 0
        while true {
            let status = archive_read_data_block(archive, &block, &length, &offset)
            if status == ARCHIVE_EOF { break }
            if status != ARCHIVE_OK && status != ARCHIVE_WARN { throw EntryProblem(LayerUnpacker.archiveMessage(archive)) }
            var written = 0
            while written < length {
                let count = pwrite(file.rawValue, block! + written, length - written, off_t(offset) + off_t(written))
                if count < 0 {
                    if Errno.current == .interrupted { continue }
                    throw EntryProblem("write: \(Errno.current)")
                }
                written += count
            }
            end = max(end, Int64(offset) + Int64(length))
        }
        if size > end && ftruncate(file.rawValue, off_t(size)) != 0 { throw EntryProblem("truncate: \(Errno.current)") }
    }

    /// For messages: one line, whatever bytes the name holds.
    static func display(_ bytes: [UInt8]) -> String {
        var text = ""
        for scalar in String(decoding: bytes.prefix(512), as: UTF8.self).unicodeScalars {
            if scalar.value < 0x20 || scalar.value == 0x7f {
                text += "\\x" + Digest.hex([UInt8(scalar.value)])
            } else {
                text.unicodeScalars.append(scalar)
            }
        }
        if bytes.count > 512 { text += "…" }
        return "\"" + text + "\""
    }
}

/// openat(2) of raw bytes, close-on-exec.
func openAt(_ directory: FileDescriptor, _ name: [UInt8], _ flags: Int32, mode: mode_t = 0) throws(Errno) -> FileDescriptor {
    let path = cString(name)
    return FileDescriptor(rawValue: try retryOnInterrupt { berth_openat(directory.rawValue, path, flags | O_CLOEXEC, UInt32(mode)) })
}

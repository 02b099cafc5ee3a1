#if canImport(Glibc)
import Glibc
#endif
import BerthOS
import CArchive

/// Writes a tar (pax format, headers only where ustar cannot say it) to a
/// descriptor through libarchive, for image archives (docker-archive,
/// oci-archive) and test fixtures. Deterministic: what an entry does not set
/// is 0 (mtime, uid, gid) or empty (user and group names), and the archive
/// is not padded past its two end blocks.
package struct TarWriter: ~Copyable {
    private let archive: OpaquePointer
    private let entry: OpaquePointer

    /// The descriptor stays open; the caller closes it after `finish()`.
    package init(descriptor: FileDescriptor) throws(ImageError) {
        guard let archive = archive_write_new() else { throw archiveFailure("tar") }
        if archive_write_set_format_pax_restricted(archive) != ARCHIVE_OK
            || archive_write_set_bytes_in_last_block(archive, 1) != ARCHIVE_OK
            || archive_write_open_fd(archive, descriptor.rawValue) != ARCHIVE_OK {
            let message = LayerUnpacker.archiveMessage(archive)
            archive_write_free(archive)
            throw ImageError("tar: \(message)")
        }
        guard let entry = archive_entry_new() else {
            archive_write_free(archive)
            throw archiveFailure("tar")
        }
        self.archive = archive
        self.entry = entry
    }

    deinit {
        archive_write_free(archive)
        archive_entry_free(entry)
    }

    package mutating func addDirectory(_ name: String, mode: mode_t = 0o755, modificationTime: Int64 = 0) throws(ImageError) {
        try add(TarEntry(name: name, kind: .directory, mode: mode, modificationTime: modificationTime))
    }

    package mutating func addFile(_ name: String, bytes: [UInt8], mode: mode_t = 0o644, modificationTime: Int64 = 0) throws(ImageError) {
        try add(TarEntry(name: name, kind: .regularFile, mode: mode, size: Int64(bytes.count), modificationTime: modificationTime),
                contents: bytes)
    }

    /// A regular file whose `size` bytes are read from `source` (from its
    /// current offset); fewer bytes there is an error.
    package mutating func addFile(_ name: String, from source: FileDescriptor, size: Int64, mode: mode_t = 0o644,
                                  modificationTime: Int64 = 0) throws(ImageError) {
        try writeHeader(TarEntry(name: name, kind: .regularFile, mode: mode, size: size, modificationTime: modificationTime))
        var remaining = size
        var chunk = [UInt8](repeating: 0, count: 256 << 10)
        while remaining > 0 {
            let wanted = Int(min(Int64(chunk.count), remaining))
            let count: Int
            do { count = try chunk.withUnsafeMutableBytes { raw throws(Errno) in try source.read(into: UnsafeMutableRawBufferPointer(rebasing: raw[..<wanted])) } } catch {
                throw ImageError("tar: read \(name): \(error)")
            }
            if count == 0 { throw ImageError("tar: \(name) ended \(remaining) bytes short of \(size)") }
            try writeData(chunk[..<count], name)
            remaining -= Int64(count)
        }
    }

    /// Any entry; `contents` for a regular file (its `size` must match).
    package mutating func add(_ header: TarEntry, contents: [UInt8] = []) throws(ImageError) {
        if case .regularFile = header.kind, header.size != Int64(contents.count) {
            throw ImageError("tar: \(header.name): size \(header.size) but \(contents.count) bytes given")
        }
        try writeHeader(header)
        if !contents.isEmpty { try writeData(contents[...], header.name) }
    }

    /// Writes the end of the archive. Dropping the writer without it leaves
    /// the tar unfinished.
    package consuming func finish() throws(ImageError) {
        if archive_write_close(archive) != ARCHIVE_OK { throw ImageError("tar: \(LayerUnpacker.archiveMessage(archive))") }
    }

    private func writeHeader(_ header: TarEntry) throws(ImageError) {
        var link: [UInt8]? = nil
        var hardlink = false
        switch header.kind {
        case .symlink(let target): link = Array(target.utf8)
        case .hardlink(let target): link = Array(target.utf8); hardlink = true
        default: break
        }
        try writeHeader(name: Array(header.name.utf8), kind: header.kind, link: link, hardlink: hardlink, mode: header.mode,
                        size: header.size, uid: header.uid, gid: header.gid, modificationTime: header.modificationTime,
                        extendedAttributes: header.extendedAttributes.keys.sorted().map { ($0, header.extendedAttributes[$0]!) })
    }

    /// An entry whose name and link target are raw bytes (a file system's
    /// names need not be UTF-8); `kind` gives the type and device numbers
    /// (its own link targets are ignored in favour of `link`). Contents
    /// follow with `addData`.
    package mutating func addHeader(name: [UInt8], kind: TarEntry.Kind, link: [UInt8]? = nil, mode: mode_t, size: Int64 = 0,
                                    uid: Int64 = 0, gid: Int64 = 0, modificationTime: Int64 = 0,
                                    extendedAttributes: [(String, [UInt8])] = []) throws(ImageError) {
        var isHardlink = false
        if case .hardlink = kind { isHardlink = true }
        try writeHeader(name: name, kind: kind, link: link, hardlink: isHardlink, mode: mode, size: size, uid: uid, gid: gid,
                        modificationTime: modificationTime, extendedAttributes: extendedAttributes)
    }

    /// Contents of the entry whose header was written last.
    package mutating func addData(_ bytes: ArraySlice<UInt8>, name: String) throws(ImageError) {
        try writeData(bytes, name)
    }

    private func writeHeader(name: [UInt8], kind: TarEntry.Kind, link: [UInt8]?, hardlink: Bool, mode: mode_t, size: Int64,
                             uid: Int64, gid: Int64, modificationTime: Int64,
                             extendedAttributes: [(String, [UInt8])]) throws(ImageError) {
        archive_entry_clear(entry)
        func cString(_ bytes: [UInt8], _ body: (UnsafePointer<CChar>) -> Void) {
            (bytes + [0]).withUnsafeBufferPointer { $0.withMemoryRebound(to: CChar.self) { body($0.baseAddress!) } }
        }
        cString(name) { archive_entry_copy_pathname(entry, $0) }
        var type: mode_t = 0o100000
        var entrySize = size
        switch kind {
        case .regularFile: break
        case .directory: type = 0o040000; entrySize = 0
        case .symlink: type = 0o120000; entrySize = 0
        case .hardlink: entrySize = 0
        case .characterDevice(let major, let minor):
            type = 0o020000; entrySize = 0
            archive_entry_set_rdevmajor(entry, dev_t(major)); archive_entry_set_rdevminor(entry, dev_t(minor))
        case .blockDevice(let major, let minor):
            type = 0o060000; entrySize = 0
            archive_entry_set_rdevmajor(entry, dev_t(major)); archive_entry_set_rdevminor(entry, dev_t(minor))
        case .fifo: type = 0o010000; entrySize = 0
        }
        if let link {
            if hardlink { cString(link) { archive_entry_copy_hardlink(entry, $0) } } else { cString(link) { archive_entry_copy_symlink(entry, $0) } }
        }
        archive_entry_set_filetype(entry, UInt32(type))
        archive_entry_set_perm(entry, mode & 0o7777)
        archive_entry_set_size(entry, entrySize)
        archive_entry_set_uid(entry, uid)
        archive_entry_set_gid(entry, gid)
        archive_entry_set_mtime(entry, time_t(modificationTime), 0)
        for (key, value) in extendedAttributes {
            value.withUnsafeBytes { archive_entry_xattr_add_entry(entry, key, $0.baseAddress, $0.count) }
        }
        let status = archive_write_header(archive, entry)
        if status != ARCHIVE_OK && status != ARCHIVE_WARN {
            throw ImageError("tar: \(String(decoding: name, as: UTF8.self)): \(LayerUnpacker.archiveMessage(archive))")
        }
    }

    private func writeData(_ bytes: ArraySlice<UInt8>, _ name: String) throws(ImageError) {
        var offset = 0
        while offset < bytes.count {
            let written = bytes.withUnsafeBytes { raw in
                archive_write_data(archive, raw.baseAddress! + offset, raw.count - offset)
            }
            if written <= 0 { throw ImageError("tar: write \(name): \(LayerUnpacker.archiveMessage(archive))") }
            offset += written
        }
    }
}

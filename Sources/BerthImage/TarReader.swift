#if canImport(Glibc)
import Glibc
#endif
import BerthOS
import CArchive

/// Reads the entries of a tar file, plain or gzip (detected), through
/// libarchive, for image archives: `docker load`'s docker-archive and
/// oci-archive. Names are data; a caller that writes files uses them as
/// keys (a digest, "manifest.json"), never as paths.
package struct TarReader: ~Copyable {
    private let archive: OpaquePointer
    private var current: TarEntry?

    /// The descriptor stays open; the caller closes it.
    package init(descriptor: FileDescriptor) throws(ImageError) {
        guard let archive = archive_read_new() else { throw archiveFailure("tar") }
        archive_read_support_format_tar(archive)
        archive_read_support_filter_gzip(archive)
        archive_read_support_filter_none(archive)
        if archive_read_open_fd(archive, descriptor.rawValue, 64 << 10) != ARCHIVE_OK {
            let message = LayerUnpacker.archiveMessage(archive)
            archive_read_free(archive)
            throw ImageError("tar: \(message)")
        }
        self.archive = archive
    }

    deinit { archive_read_free(archive) }

    /// The next entry, nil at the end. Its contents can be read before the
    /// next call; unread contents are skipped.
    package mutating func next() throws(ImageError) -> TarEntry? {
        var pointer: OpaquePointer?
        let status = archive_read_next_header(archive, &pointer)
        if status == ARCHIVE_EOF { current = nil; return nil }
        guard status == ARCHIVE_OK || status == ARCHIVE_WARN, let pointer else {
            let place = current.map { " after \($0.name)" } ?? ""
            throw ImageError("tar: \(LayerUnpacker.archiveMessage(archive))\(place)")
        }
        let raw = LayerEntry(pointer)
        let kind: TarEntry.Kind
        switch raw.kind {
        case .regularFile, .unsupported: kind = .regularFile
        case .directory: kind = .directory
        case .symlink: kind = .symlink(target: String(decoding: raw.link, as: UTF8.self))
        case .hardlink: kind = .hardlink(target: String(decoding: raw.link, as: UTF8.self))
        case .characterDevice: kind = .characterDevice(major: raw.deviceMajor, minor: raw.deviceMinor)
        case .blockDevice: kind = .blockDevice(major: raw.deviceMajor, minor: raw.deviceMinor)
        case .fifo: kind = .fifo
        }
        var attributes: [String: [UInt8]] = [:]
        if archive_entry_xattr_reset(pointer) > 0 {
            var name: UnsafePointer<CChar>?
            var value: UnsafeRawPointer?
            var size = 0
            while archive_entry_xattr_next(pointer, &name, &value, &size) == ARCHIVE_OK, let name {
                attributes[String(cString: name)] = value.map { Array(UnsafeRawBufferPointer(start: $0, count: size)) } ?? []
            }
        }
        let entry = TarEntry(name: TarEntry.normalizedName(String(decoding: raw.name, as: UTF8.self)), kind: kind, mode: raw.mode,
                             size: kind == .regularFile ? raw.size : 0, uid: raw.uid, gid: raw.gid,
                             modificationTime: Int64(raw.modificationTime.tv_sec), extendedAttributes: attributes)
        current = entry
        return entry
    }

    /// The current entry's contents; more than `limit` bytes is an error.
    package mutating func readContents(limit: Int) throws(ImageError) -> [UInt8] {
        guard let entry = current else { throw ImageError("tar: no current entry") }
        if entry.size > Int64(limit) { throw ImageError("tar: \(entry.name) is \(entry.size) bytes, over the \(limit)-byte limit") }
        var result: [UInt8] = []
        result.reserveCapacity(Int(entry.size))
        try forEachBlock(entry) { block throws(ImageError) in
            if result.count + block.count > limit {
                throw ImageError("tar: \(entry.name) is over the \(limit)-byte limit")
            }
            result.append(contentsOf: block)
        }
        return result
    }

    /// Writes the current entry's contents to `destination`; returns the count.
    @discardableResult
    package mutating func copyContents(to destination: FileDescriptor) throws(ImageError) -> Int64 {
        guard let entry = current else { throw ImageError("tar: no current entry") }
        var total: Int64 = 0
        try forEachBlock(entry) { block throws(ImageError) in
            var offset = 0
            while offset < block.count {
                let count = Glibc.write(destination.rawValue, block.baseAddress! + offset, block.count - offset)
                if count < 0 {
                    if Errno.current == .interrupted { continue }
                    throw ImageError("tar: write \(entry.name): \(Errno.current)")
                }
                offset += count
            }
            total += Int64(block.count)
        }
        return total
    }

    /// Data blocks in order; sparse holes come back as zeros.
    private func forEachBlock(_ entry: TarEntry, _ body: (UnsafeRawBufferPointer) throws(ImageError) -> Void) throws(ImageError) {
        var block: UnsafeRawPointer?
        var length = 0
        var offset: la_int64_t = 0
        var position: Int64 = 0
        let zeros = UnsafeMutableRawBufferPointer.allocate(byteCount: 64 << 10, alignment: 16)
        zeros.initializeMemory(as: UInt8.self, repeating: 0)
        defer { zeros.deallocate() }
        while true {
            let status = archive_read_data_block(archive, &block, &length, &offset)
            if status == ARCHIVE_EOF { break }
            if status != ARCHIVE_OK && status != ARCHIVE_WARN { throw ImageError("tar: \(entry.name): \(LayerUnpacker.archiveMessage(archive))") }
            while position < Int64(offset) {
                let count = Int(min(Int64(zeros.count), Int64(offset) - position))
                try body(UnsafeRawBufferPointer(rebasing: zeros[..<count]))
                position += Int64(count)
            }
            if length > 0 { try body(UnsafeRawBufferPointer(start: block, count: length)) }
            position = Int64(offset) + Int64(length)
        }
        while position < entry.size {
            let count = Int(min(Int64(zeros.count), entry.size - position))
            try body(UnsafeRawBufferPointer(rebasing: zeros[..<count]))
            position += Int64(count)
        }
    }
}

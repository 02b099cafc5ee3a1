#if canImport(Glibc)
import Glibc
#endif
import BerthOCI
import BerthOS
import CArchive
import Crypto

/// How the layer's deletions are recorded for overlayfs.
package enum WhiteoutFormat: Sendable, Equatable {
    /// As root: a whiteout is a char device 0/0, an opaque directory has
    /// `trusted.overlay.opaque="y"`.
    case trustedOverlay
    /// Rootless, for an overlay mounted with `userxattr`: a whiteout is a char
    /// device 0/0 too (unprivileged since Linux 5.8), an opaque directory has
    /// `user.overlay.opaque="y"`.
    case userOverlay

    var xattrPrefix: String {
        switch self {
        case .trustedOverlay: "trusted.overlay."
        case .userOverlay: "user.overlay."
        }
    }
}

package struct LayerUnpackOptions: Sendable, Equatable {
    package var whiteouts: WhiteoutFormat
    /// Give entries the tar's uid/gid (lchown). Off, everything belongs to
    /// the caller.
    package var preserveOwnership: Bool
    /// Create char and block devices; off, they are skipped silently, as
    /// podman does rootless (fifos are always created).
    package var allowDeviceNodes: Bool
    /// Apply the xattrs of SCHILY.xattr pax records, except the namespaces a
    /// layer must not set (see `LayerWriter.acceptsAttribute`).
    package var extendedAttributes: Bool
    /// Tests turn openat2 off to exercise the per-component resolver.
    var useOpenat2: Bool = SecureRoot.hasOpenat2

    package init(whiteouts: WhiteoutFormat = .trustedOverlay, preserveOwnership: Bool = true,
                 allowDeviceNodes: Bool = true, extendedAttributes: Bool = true) {
        self.whiteouts = whiteouts
        self.preserveOwnership = preserveOwnership
        self.allowDeviceNodes = allowDeviceNodes
        self.extendedAttributes = extendedAttributes
    }

    /// Root: trusted.overlay xattrs, devices. Rootless (uid 0 of a user
    /// namespace): user.overlay xattrs, no devices.
    package static func defaults(rootless: Bool) -> LayerUnpackOptions {
        rootless
            ? LayerUnpackOptions(whiteouts: .userOverlay, allowDeviceNodes: false)
            : LayerUnpackOptions(whiteouts: .trustedOverlay, allowDeviceNodes: true)
    }
}

package struct LayerUnpackResult: Sendable, Equatable {
    /// sha256 of the uncompressed tar stream, all of it (what an image
    /// config's rootfs.diff_ids lists).
    package var diffID: Digest
    package var uncompressedSize: Int64
    /// Tar entries read, skipped ones included.
    package var entries: Int
}

/// Unpacks an image layer (a tar, plain, gzip or zstd) into a directory.
///
/// The unpacker decompresses and hashes the stream itself and hands the tar
/// bytes to libarchive only to parse headers; libarchive never writes to
/// disk. Every entry is created by `LayerWriter` beneath the root: parents
/// are resolved in the root (openat2 RESOLVE_IN_ROOT), the final component
/// with calls that never follow it. What this means for a hostile archive:
///
/// - a name whose `..` climbs above the root (`../../x`) is an error;
///   absolute names are inside the root (`/etc/x` is `etc/x`);
/// - a symlink may point anywhere (it is data, read later inside the
///   container), but an entry beneath one (`link/file`) resolves as if the
///   root were `/`: `link -> /tmp/outside` makes `link/file` mean
///   `<root>/tmp/outside/file`, never the host's;
/// - a hardlink's target must be an earlier entry of this layer: one that
///   escapes lexically is an error, one that is absent (`/etc/passwd`) too;
/// - a truncated or corrupt stream, a damaged header, a pax header over
///   libarchive's 1 MiB, a name over 4096 bytes: errors.
package enum LayerUnpacker {
    /// Reads a compressed tar stream from `input` (a pipe or file) until EOF
    /// and creates its entries beneath the directory `root` (the layer's
    /// "diff" directory, initially empty). Errors are one line naming the
    /// entry and the problem.
    package static func unpack(input: FileDescriptor, compression: LayerCompression, into root: FileDescriptor,
                               options: LayerUnpackOptions) throws(ImageError) -> LayerUnpackResult {
        let stream = LayerStream(decompressor: makeDecompressor(input: input, compression: compression))
        var writer = LayerWriter(root: LayerRoot(descriptor: root, useOpenat2: options.useOpenat2), options: options)
        guard let archive = archive_read_new() else { throw archiveFailure("unpack layer") }
        defer { archive_read_free(archive) }
        archive_read_support_format_tar(archive)
        archive_read_support_filter_none(archive)
        let client = Unmanaged.passUnretained(stream).toOpaque()
        let opened = archive_read_open(archive, client, nil, { _, client, buffer in
            let stream = Unmanaged<LayerStream>.fromOpaque(client!).takeUnretainedValue()
            do throws(ImageError) {
                let count = try stream.fill()
                buffer?.pointee = UnsafeRawPointer(stream.buffer.baseAddress)
                return la_ssize_t(count)
            } catch {
                stream.failure = error
                return -1
            }
        }, nil)
        if opened != ARCHIVE_OK { throw stream.failure ?? ImageError("invalid layer: \(archiveMessage(archive))") }

        var entries = 0
        var last: String?
        while true {
            var entry: OpaquePointer?
            let status = archive_read_next_header(archive, &entry)
            if status == ARCHIVE_EOF { break }
            if let failure = stream.failure { throw failure }
            // ARCHIVE_RETRY (a damaged header libarchive could skip) is an error here too.
            guard status == ARCHIVE_OK || status == ARCHIVE_WARN, let entry else {
                let place = last.map { "after entry \($0)" } ?? "at the start of the archive"
                throw ImageError("invalid layer: \(archiveMessage(archive)) \(place)")
            }
            entries += 1
            do {
                last = try writer.write(entry, archive: archive)
            } catch {
                // A decompression error met while reading the entry's data
                // is the stream's problem, not the entry's.
                if let failure = stream.failure { throw failure }
                throw error
            }
        }
        try writer.finish()
        try stream.finish()
        return LayerUnpackResult(diffID: Digest(bytes: stream.hasher.finalize()),
                                 uncompressedSize: stream.size, entries: entries)
    }

    /// libarchive's message with a lowercase first letter and no final period.
    static func archiveMessage(_ archive: OpaquePointer) -> String {
        guard let pointer = archive_error_string(archive) else { return "unreadable tar archive" }
        var text = String(cString: pointer)
        if text.hasSuffix(".") { text.removeLast() }
        guard let first = text.first else { return "unreadable tar archive" }
        return first.lowercased() + text.dropFirst()
    }
}

/// The error of a libarchive constructor that returned nil: the library
/// (loaded on first use, Sources/CArchive) could not be loaded, or memory
/// ran out.
func archiveFailure(_ what: String) -> ImageError {
    guard let reason = berth_archive_load_error() else { return ImageError("\(what): out of memory") }
    return ImageError("\(what): \(String(cString: reason))")
}

/// The uncompressed side, as libarchive's read callback sees it: every byte
/// handed over is hashed and counted first.
final class LayerStream {
    let decompressor: any Decompressor
    let buffer: UnsafeMutableRawBufferPointer
    var hasher = SHA256()
    var size: Int64 = 0
    var failure: ImageError?
    private var ended = false

    init(decompressor: any Decompressor) {
        self.decompressor = decompressor
        buffer = .allocate(byteCount: 1 << 20, alignment: 16)
    }

    deinit { buffer.deallocate() }

    /// Fills the buffer (less only at the end); 0 at the end of the stream.
    func fill() throws(ImageError) -> Int {
        var filled = 0
        while !ended && filled < buffer.count {
            let count = try decompressor.read(into: UnsafeMutableRawBufferPointer(rebasing: buffer[filled...]))
            if count == 0 { ended = true }
            filled += count
        }
        let bytes = UnsafeRawBufferPointer(rebasing: buffer[..<filled])
        hasher.update(bufferPointer: bytes)
        size += Int64(filled)
        return filled
    }

    /// After the tar's end: the rest of the uncompressed stream (padding)
    /// counts for the diffID; then the input is read to its end.
    func finish() throws(ImageError) {
        while try fill() > 0 {}
        try decompressor.drainInput()
    }
}

#if canImport(Glibc)
import Glibc
#endif

/// One entry of a tar, as `TarWriter` writes it and `TarReader` reads it.
/// Names are as in the archive with any leading "/" or "./" and trailing "/"
/// removed; nothing here resolves them against a directory.
package struct TarEntry: Sendable, Equatable {
    package enum Kind: Sendable, Equatable {
        case regularFile
        case directory
        case symlink(target: String)
        case hardlink(target: String)
        case characterDevice(major: UInt32, minor: UInt32)
        case blockDevice(major: UInt32, minor: UInt32)
        case fifo
    }

    package var name: String
    package var kind: Kind
    /// Permission bits with setuid, setgid and sticky.
    package var mode: mode_t
    /// The content's length (regular files only).
    package var size: Int64
    package var uid: Int64
    package var gid: Int64
    /// Seconds since the epoch.
    package var modificationTime: Int64
    /// Written as SCHILY.xattr pax records, in name order.
    package var extendedAttributes: [String: [UInt8]]

    package init(name: String, kind: Kind, mode: mode_t? = nil, size: Int64 = 0, uid: Int64 = 0, gid: Int64 = 0,
                 modificationTime: Int64 = 0, extendedAttributes: [String: [UInt8]] = [:]) {
        self.name = name
        self.kind = kind
        self.mode = mode ?? (kind == .directory ? 0o755 : 0o644)
        self.size = size
        self.uid = uid
        self.gid = gid
        self.modificationTime = modificationTime
        self.extendedAttributes = extendedAttributes
    }

    /// Strips a leading "/" or "./" and a trailing "/".
    static func normalizedName(_ name: String) -> String {
        var text = Substring(name)
        while true {
            if text.hasPrefix("./") { text = text.dropFirst(2) } else if text.hasPrefix("/") { text = text.dropFirst() } else { break }
        }
        while text.hasSuffix("/") { text = text.dropLast() }
        return String(text)
    }
}

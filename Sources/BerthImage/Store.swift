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
import Crypto

/// The image store on disk:
///
///     <root>/store.lock             flock: every mutation holds it exclusively
///     <root>/blobs/sha256/<hex>     verified content: manifests, indexes, configs, layer blobs
///     <root>/layers/<chain hex>/    one unpacked layer: diff/ (an overlay lowerdir) + layer.json
///     <root>/images/<id hex>.json   image records (id = the config's digest)
///     <root>/tmp/<pid>-<n>-<kind>   work in progress; renamed into place when complete
///
/// Nothing is ever written in place: a blob, a layer or a record appears by
/// rename(2) once complete and verified, so a reader (or a `kill -9` at any
/// moment) sees either the old state or the new one, plus at most some
/// leftovers in tmp/ that the next locked operation removes.
package struct ImageStore: Sendable {
    package let root: String

    package init(root: String) {
        self.root = root
    }

    /// `/var/lib/berth` for root, `$XDG_DATA_HOME/berth` (`~/.local/share/berth`) otherwise.
    package static func defaultRoot(rootless: Bool) -> String {
        if !rootless { return "/var/lib/berth" }
        if let data = environment("XDG_DATA_HOME"), data.hasPrefix("/") { return data + "/berth" }
        let home = environment("HOME") ?? "/tmp"
        return home + "/.local/share/berth"
    }

    static func environment(_ name: String) -> String? {
        guard let value = getenv(name) else { return nil }
        let text = String(cString: value)
        return text.isEmpty ? nil : text
    }

    package var blobsDirectory: String { root + "/blobs/sha256" }
    package var layersDirectory: String { root + "/layers" }
    package var imagesDirectory: String { root + "/images" }
    package var tmpDirectory: String { root + "/tmp" }

    package func blobPath(_ digest: Digest) -> String { "\(root)/blobs/\(digest.algorithm)/\(digest.hex)" }
    package func layerPath(_ chainID: Digest) -> String { "\(layersDirectory)/\(chainID.hex)" }
    package func layerDiffPath(_ chainID: Digest) -> String { layerPath(chainID) + "/diff" }
    package func imagePath(_ id: Digest) -> String { "\(imagesDirectory)/\(id.hex).json" }

    /// Creates the directories (idempotent).
    package func prepare() throws(ImageError) {
        for dir in [root, blobsDirectory, layersDirectory, imagesDirectory, tmpDirectory] {
            do { try Files.makeDirectories(dir, mode: 0o700) } catch {
                throw ImageError("cannot create the image store at \(dir): \(error)")
            }
        }
    }

    // MARK: locking

    /// Runs `body` holding the store's lock exclusively. Leftovers of
    /// operations whose process is gone are removed first.
    package func withLock<R>(_ body: () throws -> R) throws -> R {
        try prepare()
        let fd: FileDescriptor
        do { fd = try FileDescriptor.open(root + "/store.lock", O_RDWR | O_CREAT | O_CLOEXEC, mode: 0o600) } catch {
            throw ImageError("cannot open the store lock \(root)/store.lock: \(error)")
        }
        defer { fd.close() }
        while flock(fd.rawValue, LOCK_EX) != 0 {
            if Errno.current != .interrupted { throw ImageError("cannot lock the store: \(Errno.current)") }
        }
        _ = removeStaleTemporaries()
        return try body()
    }

    // MARK: temporaries

    nonisolated(unsafe) private static var counter = 0

    /// A fresh path under tmp/ whose name records this process, so a later
    /// locked operation can tell leftovers of dead processes from work in progress.
    package func temporaryPath(_ kind: String) throws(ImageError) -> String {
        try prepare()
        ImageStore.counter += 1
        let random = UInt64.random(in: 0...UInt64.max)
        let start = processStartTime(getpid()) ?? 0
        return "\(tmpDirectory)/\(getpid())-\(start)-\(ImageStore.counter)-\(String(random, radix: 16))-\(kind)"
    }

    /// Removes tmp/ entries whose creating process no longer exists. Returns their names.
    @discardableResult
    package func removeStaleTemporaries() -> [String] {
        var removed: [String] = []
        for name in Files.list(tmpDirectory) {
            let fields = name.split(separator: "-", maxSplits: 2)
            if fields.count >= 2, let pid = pid_t(fields[0]), let start = UInt64(fields[1]),
               processExists(pid), processStartTime(pid) == start {
                continue
            }
            Files.removeTree(tmpDirectory + "/" + name)
            removed.append(name)
        }
        return removed
    }

    // MARK: blobs

    package func hasBlob(_ digest: Digest) -> Bool { Files.exists(blobPath(digest)) }

    /// Reads a small blob and checks its digest (manifests, configs).
    package func readBlob(_ digest: Digest, limit: Int = 32 << 20) throws(ImageError) -> [UInt8] {
        let bytes: [UInt8]
        do {
            let fd = try FileDescriptor.open(blobPath(digest), O_RDONLY | O_CLOEXEC)
            bytes = try fd.closeAfter { (fd) throws(Errno) in try fd.readAll(limit: limit) }
        } catch {
            throw ImageError("blob \(digest) is missing from the store (berth system check repairs it)")
        }
        guard ImageStore.digest(of: bytes) == digest else {
            throw ImageError("blob \(digest) in the store is corrupt (berth system check repairs it)")
        }
        return bytes
    }

    /// Stores `bytes` under their digest (no-op when present).
    @discardableResult
    package func writeBlob(_ bytes: [UInt8], expected: Digest? = nil) throws(ImageError) -> Digest {
        let digest = ImageStore.digest(of: bytes)
        if let expected, expected != digest {
            throw ImageError("digest mismatch: expected \(expected), got \(digest)")
        }
        if hasBlob(digest) { return digest }
        let temp = try temporaryPath("blob")
        do {
            let fd = try FileDescriptor.open(temp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode: 0o644)
            try fd.closeAfter { (fd) throws(Errno) in try fd.writeAll(bytes) }
        } catch {
            Files.removeTree(temp)
            throw ImageError("cannot write blob \(digest): \(error)")
        }
        do { try adoptBlob(temporary: temp, digest: digest) } catch {
            Files.removeTree(temp)
            throw error
        }
        return digest
    }

    /// Renames a verified temporary file into blobs/.
    package func adoptBlob(temporary: String, digest: Digest) throws(ImageError) {
        try prepare()
        if digest.algorithm != "sha256" {
            try? Files.makeDirectories("\(root)/blobs/\(digest.algorithm)", mode: 0o700)
        }
        guard rename(temporary, blobPath(digest)) == 0 else {
            throw ImageError("cannot store blob \(digest): \(Errno.current)")
        }
    }

    package static func digest(of bytes: some Sequence<UInt8>) -> Digest {
        var hasher = SHA256()
        let array = Array(bytes)
        array.withUnsafeBytes { hasher.update(bufferPointer: $0) }
        return Digest(hex: hexString(hasher.finalize()))
    }

    package static func hexString(_ digest: some Sequence<UInt8>) -> String { Digest.hex(digest) }

    /// The layer chain IDs of an image's diff IDs (image-spec: chainID(n) =
    /// sha256(chainID(n-1) + " " + diffID(n))).
    package static func chainIDs(_ diffIDs: [Digest]) -> [Digest] {
        var result: [Digest] = []
        for diffID in diffIDs {
            if let parent = result.last {
                result.append(digest(of: Array("\(parent) \(diffID)".utf8)))
            } else {
                result.append(diffID)
            }
        }
        return result
    }

    // MARK: layers

    package func hasLayer(_ chainID: Digest) -> Bool { Files.exists(layerPath(chainID) + "/layer.json") }

    package func layerRecord(_ chainID: Digest) -> LayerRecord? {
        guard let bytes = try? Files.read(layerPath(chainID) + "/layer.json") else { return nil }
        return try? JSONDecoder().decode(LayerRecord.self, from: Data(bytes))
    }

    /// Moves an unpacked layer directory (containing diff/) into place; the
    /// record is written inside it first, so a layer dir in layers/ is always
    /// complete. If another process committed the same layer meanwhile, ours
    /// is discarded.
    package func commitLayer(temporary: String, record: LayerRecord) throws(ImageError) {
        do {
            let data = try JSONEncoder().encode(record)
            try Files.writeAtomically(temporary + "/layer.json", Array(data), mode: 0o644)
        } catch {
            throw ImageError("cannot write layer record: \(error)")
        }
        if hasLayer(record.chainID) {
            Files.removeTree(temporary)
            return
        }
        Files.removeTree(layerPath(record.chainID))  // an incomplete leftover
        guard rename(temporary, layerPath(record.chainID)) == 0 else {
            let error = Errno.current
            Files.removeTree(temporary)
            throw ImageError("cannot store layer \(record.chainID): \(error)")
        }
    }

    // MARK: images

    package func images() -> [ImageRecord] {
        Files.list(imagesDirectory).compactMap { name -> ImageRecord? in
            guard name.hasSuffix(".json"), let bytes = try? Files.read(imagesDirectory + "/" + name) else { return nil }
            return try? JSONDecoder().decode(ImageRecord.self, from: Data(bytes))
        }.sorted { ($0.added, $0.id.hex) > ($1.added, $1.id.hex) }
    }

    package func image(_ id: Digest) -> ImageRecord? {
        guard let bytes = try? Files.read(imagePath(id)) else { return nil }
        return try? JSONDecoder().decode(ImageRecord.self, from: Data(bytes))
    }

    /// Writes a record (call with the lock held).
    package func save(_ record: ImageRecord) throws(ImageError) {
        do {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            let data = try encoder.encode(record)
            try Files.writeAtomically(imagePath(record.id), Array(data), mode: 0o644)
        } catch {
            throw ImageError("cannot write image record \(record.id.short): \(error)")
        }
    }

    package func deleteRecord(_ id: Digest) {
        _ = unlink(imagePath(id))
    }

    /// Adds `name` (a full reference with tag) to image `id`, taking it from
    /// any other image that has it (call with the lock held).
    package func tag(_ id: Digest, as name: String) throws(ImageError) {
        for var other in images() where other.id != id && other.names.contains(name) {
            other.names.removeAll { $0 == name }
            try save(other)
        }
        guard var record = image(id) else { throw ImageError("image \(id.short) not found") }
        if !record.names.contains(name) {
            record.names.append(name)
            try save(record)
        }
    }

    /// Finds an image by name (`busybox`, `docker.io/library/busybox:latest`,
    /// `name@sha256:…` for a pulled manifest digest), by full or prefix ID
    /// (`sha256:` optional, at least 3 hex digits), or by an untagged name
    /// which means `:latest`.
    package func lookup(_ text: String, searchRegistries: [String] = [ImageReference.defaultRegistry]) throws(ImageError) -> ImageRecord {
        let all = images()
        var hex = text
        if hex.hasPrefix("sha256:") { hex.removeFirst(7) }
        if hex.count >= 3, hex.count <= 64, hex.utf8.allSatisfy({ ($0 >= 48 && $0 <= 57) || ($0 >= 97 && $0 <= 102) }) {
            let matches = all.filter { $0.id.hex.hasPrefix(hex) }
            if matches.count == 1 { return matches[0] }
            if matches.count > 1 { throw ImageError("image id prefix \"\(text)\" is ambiguous: \(matches.count) images match") }
        }
        guard let reference = try? ImageReference(parsing: text) else {
            throw ImageError("\(text): image not known")
        }
        var candidates = [reference]
        if !reference.qualified {
            candidates = searchRegistries.map { reference.inRegistry($0) }
            if !searchRegistries.contains(ImageReference.defaultRegistry) { candidates.append(reference) }
        }
        for candidate in candidates {
            if let digest = candidate.digest {
                if let match = all.first(where: { $0.digests.contains("\(candidate.name)@\(digest)") || $0.manifestDigest == digest && $0.names.contains(where: { $0.hasPrefix(candidate.name + ":") }) }) {
                    return match
                }
                continue
            }
            if let match = all.first(where: { $0.names.contains(candidate.description) }) { return match }
        }
        throw ImageError("\(text): image not known")
    }
}

/// One unpacked layer, stored as layers/<chain hex>/layer.json.
package struct LayerRecord: Codable, Sendable, Equatable {
    package var chainID: Digest
    package var diffID: Digest
    package var parent: Digest?
    /// Bytes of the uncompressed tar.
    package var size: Int64
    /// The compressed blob it came from, when it came from one that is kept.
    package var blob: Digest?
    package var mediaType: String?
    package var entries: Int?

    package init(chainID: Digest, diffID: Digest, parent: Digest?, size: Int64, blob: Digest?, mediaType: String?, entries: Int?) {
        self.chainID = chainID
        self.diffID = diffID
        self.parent = parent
        self.size = size
        self.blob = blob
        self.mediaType = mediaType
        self.entries = entries
    }
}

/// An image as the store knows it: images/<id hex>.json.
package struct ImageRecord: Codable, Sendable, Equatable {
    /// The config blob's digest (docker's and podman's image ID).
    package var id: Digest
    /// Full references with tags: `docker.io/library/busybox:latest`.
    package var names: [String]
    /// `registry/repo@sha256:…` for each repository it was pulled from or pushed to.
    package var digests: [String]
    package var manifestDigest: Digest
    package var manifestMediaType: String
    /// The index (manifest list) it was chosen from, when there was one.
    package var indexDigest: Digest?
    package var layers: [Layer]
    /// The image's creation time from its config.
    package var created: String?
    /// When it came into this store (RFC 3339).
    package var added: String
    package var platform: Platform

    package struct Layer: Codable, Sendable, Equatable {
        package var chainID: Digest
        package var diffID: Digest
        package var blob: Digest
        package var mediaType: String
        package var compressedSize: Int64
        package var size: Int64

        package init(chainID: Digest, diffID: Digest, blob: Digest, mediaType: String, compressedSize: Int64, size: Int64) {
            self.chainID = chainID
            self.diffID = diffID
            self.blob = blob
            self.mediaType = mediaType
            self.compressedSize = compressedSize
            self.size = size
        }
    }

    package init(id: Digest, names: [String], digests: [String], manifestDigest: Digest, manifestMediaType: String,
                 indexDigest: Digest?, layers: [Layer], created: String?, added: String, platform: Platform) {
        self.id = id
        self.names = names
        self.digests = digests
        self.manifestDigest = manifestDigest
        self.manifestMediaType = manifestMediaType
        self.indexDigest = indexDigest
        self.layers = layers
        self.created = created
        self.added = added
        self.platform = platform
    }

    /// Unpacked size, as `images` reports SIZE.
    package var size: Int64 { layers.reduce(0) { $0 + $1.size } }
}

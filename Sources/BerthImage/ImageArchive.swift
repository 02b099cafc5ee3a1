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

/// `save` and `load`: docker-archive (`manifest.json`, `<config>.json`,
/// `<diff id>/layer.tar` uncompressed) and oci-archive (an OCI image layout:
/// `oci-layout`, `index.json`, `blobs/sha256/…` as stored).
package struct ImageArchive: Sendable {
    package enum Format: String, Sendable { case dockerArchive = "docker-archive", ociArchive = "oci-archive" }

    package let store: ImageStore
    package let rootless: Bool

    package init(store: ImageStore, rootless: Bool) {
        self.store = store
        self.rootless = rootless
    }

    struct DockerManifestEntry: Codable {
        var Config: String
        var RepoTags: [String]?
        var Layers: [String]
    }

    // MARK: save

    package func save(_ records: [(record: ImageRecord, names: [String])], format: Format, to path: String) throws {
        let temp = try store.temporaryPath("save")
        defer { Files.removeTree(temp) }
        let fd: FileDescriptor
        do { fd = try FileDescriptor.open(temp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode: 0o644) } catch {
            throw ImageError("cannot write \(temp): \(error)")
        }
        defer { fd.close() }
        var writer = try TarWriter(descriptor: fd)
        switch format {
        case .ociArchive:
            try writer.addFile("oci-layout", bytes: Array(#"{"imageLayoutVersion":"1.0.0"}"#.utf8))
            try writer.addDirectory("blobs")
            try writer.addDirectory("blobs/sha256")
            var written = Set<Digest>()
            var manifests: [Descriptor] = []
            for (record, names) in records {
                let manifestBytes = try store.readBlob(record.manifestDigest)
                for digest in [record.id, record.manifestDigest] + record.layers.map(\.blob) where written.insert(digest).inserted {
                    try addBlob(&writer, digest)
                }
                for name in names.isEmpty ? [""] : names {
                    var descriptor = Descriptor(mediaType: record.manifestMediaType, digest: record.manifestDigest, size: Int64(manifestBytes.count))
                    if !name.isEmpty { descriptor.annotations = ["org.opencontainers.image.ref.name": name] }
                    manifests.append(descriptor)
                }
            }
            try writer.addFile("index.json", bytes: try ImageImporter.encode(ImageIndex(manifests: manifests)))
        case .dockerArchive:
            var entries: [DockerManifestEntry] = []
            var written = Set<String>()
            for (record, names) in records {
                let config = "\(record.id.hex).json"
                if written.insert(config).inserted { try writer.addFile(config, bytes: try store.readBlob(record.id)) }
                var layers: [String] = []
                for layer in record.layers {
                    let name = "\(layer.diffID.hex)/layer.tar"
                    layers.append(name)
                    guard written.insert(name).inserted else { continue }
                    try writer.addDirectory(layer.diffID.hex)
                    try addUncompressedLayer(&writer, layer, name: name)
                }
                entries.append(DockerManifestEntry(Config: config, RepoTags: names.isEmpty ? nil : names, Layers: layers))
            }
            try writer.addFile("manifest.json", bytes: try ImageImporter.encode(entries))
        }
        try writer.finish()
        guard rename(temp, path) == 0 else {
            // Another file system: copy.
            let error = Errno.current
            guard error == .crossDevice else { throw ImageError("cannot write \(path): \(error)") }
            try ImageArchive.copy(temp, to: path)
            return
        }
    }

    func addBlob(_ writer: inout TarWriter, _ digest: Digest) throws {
        let path = store.blobPath(digest)
        let fd: FileDescriptor
        do { fd = try FileDescriptor.open(path, O_RDONLY | O_CLOEXEC) } catch {
            throw ImageError("blob \(digest) is missing from the store (pull the image again)")
        }
        defer { fd.close() }
        let size = Int64((try? fd.stat().st_size) ?? 0)
        try writer.addFile("blobs/sha256/\(digest.hex)", from: fd, size: size)
    }

    func addUncompressedLayer(_ writer: inout TarWriter, _ layer: ImageRecord.Layer, name: String) throws {
        let compression = MediaType.layerCompression(layer.mediaType) ?? .gzip
        let blob: FileDescriptor
        do { blob = try FileDescriptor.open(store.blobPath(layer.blob), O_RDONLY | O_CLOEXEC) } catch {
            throw ImageError("layer blob \(layer.blob.short) is missing from the store (pull the image again)")
        }
        defer { blob.close() }
        if compression == .none {
            try writer.addFile(name, from: blob, size: layer.compressedSize)
            return
        }
        // The tar header needs the size first: decompress into a temporary file.
        let temp = try store.temporaryPath("layer.tar")
        defer { Files.removeTree(temp) }
        let out: FileDescriptor
        do { out = try FileDescriptor.open(temp, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, mode: 0o600) } catch {
            throw ImageError("cannot write \(temp): \(error)")
        }
        defer { out.close() }
        let decompressor = makeDecompressor(input: blob, compression: compression)
        var buffer = [UInt8](repeating: 0, count: 1 << 20)
        var total: Int64 = 0
        while true {
            let n = try buffer.withUnsafeMutableBytes { raw -> Int in try decompressor.read(into: raw) }
            if n == 0 { break }
            let failure: Errno? = buffer.withUnsafeBytes { raw -> Errno? in
                do { try out.writeAll(UnsafeRawBufferPointer(rebasing: raw[0..<n])); return nil } catch { return (error as? Errno) ?? Errno(EIO) }
            }
            if let failure { throw ImageError("write \(temp): \(failure)") }
            total += Int64(n)
        }
        _ = lseek(out.rawValue, 0, SEEK_SET)
        try writer.addFile(name, from: out, size: total)
    }

    static func copy(_ source: String, to destination: String) throws {
        do {
            let input = try FileDescriptor.open(source, O_RDONLY | O_CLOEXEC)
            defer { input.close() }
            let partial = destination + ".berth-partial"
            let output = try FileDescriptor.open(partial, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode: 0o644)
            defer { output.close() }
            var buffer = [UInt8](repeating: 0, count: 1 << 20)
            while true {
                let n = try buffer.withUnsafeMutableBytes { try input.read(into: $0) }
                if n == 0 { break }
                try buffer.withUnsafeBytes { try output.writeAll(UnsafeRawBufferPointer(rebasing: $0[0..<n])) }
            }
            guard rename(partial, destination) == 0 else { throw Errno.current }
        } catch {
            throw ImageError("cannot write \(destination): \(error)")
        }
    }

    // MARK: load

    /// Loads every image of the archive; returns the records with the names given to them.
    package func load(from path: String) async throws -> [ImageRecord] {
        let input: FileDescriptor
        do { input = try FileDescriptor.open(path, O_RDONLY | O_CLOEXEC) } catch {
            throw ImageError("cannot open \(path): \(error)")
        }
        defer { input.close() }
        // Unpack the archive's files into tmp/, keyed by their names.
        let temp = try store.temporaryPath("load")
        defer { Files.removeTree(temp) }
        do { try Files.makeDirectories(temp, mode: 0o700) } catch { throw ImageError("cannot create \(temp): \(error)") }
        var files: [String: String] = [:]
        var reader = try TarReader(descriptor: input)
        var index = 0
        while let entry = try reader.next() {
            guard case .regularFile = entry.kind else { continue }
            index += 1
            let file = "\(temp)/\(index)"
            let out: FileDescriptor
            do { out = try FileDescriptor.open(file, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode: 0o600) } catch {
                throw ImageError("cannot write \(file): \(error)")
            }
            defer { out.close() }
            _ = try reader.copyContents(to: out)
            files[entry.name] = file
        }
        func read(_ name: String, limit: Int = 32 << 20) throws -> [UInt8] {
            guard let file = files[name] else { throw ImageError("\(path): the archive has no \(name)") }
            do { return try Files.read(file) } catch { throw ImageError("\(path): cannot read \(name): \(error)") }
        }
        if files["index.json"] != nil && files["oci-layout"] != nil {
            return try await loadOCI(files: files, read: read, path: path)
        }
        if files["manifest.json"] != nil {
            return try await loadDocker(files: files, read: read, path: path)
        }
        throw ImageError("\(path) is neither a docker-archive (manifest.json) nor an oci-archive (oci-layout, index.json)")
    }

    func loadOCI(files: [String: String], read: (String, Int) throws -> [UInt8], path: String) async throws -> [ImageRecord] {
        let index: ImageIndex
        do { index = try JSONDecoder().decode(ImageIndex.self, from: Data(try read("index.json", 1 << 20))) } catch let error as ImageError { throw error } catch {
            throw ImageError("\(path): index.json is not valid: \(error)")
        }
        var results: [ImageRecord] = []
        for entry in index.manifests {
            var descriptor = entry
            var manifestBytes = try verified(read("blobs/sha256/\(descriptor.digest.hex)", 32 << 20), descriptor.digest, path)
            var indexDigest: Digest? = nil
            if MediaType.isIndex(descriptor.mediaType) {
                let nested = try JSONDecoder().decode(ImageIndex.self, from: Data(manifestBytes))
                guard let chosen = nested.manifest(for: .host) else { throw ImageError("\(path): no image for \(Platform.host)") }
                indexDigest = descriptor.digest
                descriptor = chosen
                manifestBytes = try verified(read("blobs/sha256/\(descriptor.digest.hex)", 32 << 20), descriptor.digest, path)
            }
            let manifest: ImageManifest
            do { manifest = try JSONDecoder().decode(ImageManifest.self, from: Data(manifestBytes)) } catch {
                throw ImageError("\(path): manifest \(descriptor.digest.short) is not valid: \(error)")
            }
            let configBytes = try verified(read("blobs/sha256/\(manifest.config.digest.hex)", 32 << 20), manifest.config.digest, path)
            let config = try JSONDecoder().decode(ImageConfiguration.self, from: Data(configBytes))
            let layers = try await ingestLayers(manifest.layers.map { ($0, files["blobs/sha256/\($0.digest.hex)"]) }, config: config, path: path)
            try store.writeBlob(configBytes, expected: manifest.config.digest)
            try store.writeBlob(manifestBytes, expected: descriptor.digest)
            var names: [String] = []
            if let name = entry.annotations?["org.opencontainers.image.ref.name"], let reference = try? ImageReference(parsing: name), name.contains("/") || name.contains(":") {
                names.append(reference.description)
            }
            results.append(try commit(id: manifest.config.digest, manifestDigest: descriptor.digest,
                                      mediaType: manifest.mediaType ?? descriptor.mediaType, indexDigest: indexDigest,
                                      layers: layers, config: config, names: names))
        }
        return results
    }

    func loadDocker(files: [String: String], read: (String, Int) throws -> [UInt8], path: String) async throws -> [ImageRecord] {
        let entries: [DockerManifestEntry]
        do { entries = try JSONDecoder().decode([DockerManifestEntry].self, from: Data(try read("manifest.json", 1 << 20))) } catch let error as ImageError { throw error } catch {
            throw ImageError("\(path): manifest.json is not valid: \(error)")
        }
        var results: [ImageRecord] = []
        for entry in entries {
            let configBytes = try read(entry.Config, 32 << 20)
            let configDigest = ImageStore.digest(of: configBytes)
            let config: ImageConfiguration
            do { config = try JSONDecoder().decode(ImageConfiguration.self, from: Data(configBytes)) } catch {
                throw ImageError("\(path): \(entry.Config) is not a valid image config: \(error)")
            }
            guard config.rootfs.diff_ids.count == entry.Layers.count else {
                throw ImageError("\(path): \(entry.Config) names \(config.rootfs.diff_ids.count) layers, manifest.json \(entry.Layers.count)")
            }
            var sources: [(Descriptor, String?)] = []
            for name in entry.Layers {
                guard let file = files[name] else { throw ImageError("\(path): the archive has no \(name)") }
                let compression = try ImageImporter.sniffCompression(file)
                let mediaType = compression == .gzip ? MediaType.ociLayerGzip : compression == .zstd ? MediaType.ociLayerZstd : MediaType.ociLayer
                let size = Int64((try? Files.stat(file).st_size) ?? 0)
                // The digest is learnt while ingesting; a placeholder until then.
                sources.append((Descriptor(mediaType: mediaType, digest: Digest(hex: String(repeating: "0", count: 64)), size: size), file))
            }
            let layers = try await ingestLayers(sources, config: config, path: path, digestsKnown: false)
            try store.writeBlob(configBytes)
            let manifest = ImageManifest(config: Descriptor(mediaType: MediaType.ociConfig, digest: configDigest, size: Int64(configBytes.count)),
                                         layers: layers.map { Descriptor(mediaType: $0.mediaType, digest: $0.blob, size: $0.compressedSize) })
            let manifestBytes = try ImageImporter.encode(manifest)
            let manifestDigest = try store.writeBlob(manifestBytes)
            let names = (entry.RepoTags ?? []).compactMap { try? ImageReference(parsing: $0).description }
            results.append(try commit(id: configDigest, manifestDigest: manifestDigest, mediaType: MediaType.ociManifest,
                                      indexDigest: nil, layers: layers, config: config, names: names))
        }
        return results
    }

    func verified(_ bytes: [UInt8], _ digest: Digest, _ path: String) throws -> [UInt8] {
        guard ImageStore.digest(of: bytes) == digest else { throw ImageError("\(path): blob \(digest) does not match its digest") }
        return bytes
    }

    func ingestLayers(_ sources: [(Descriptor, String?)], config: ImageConfiguration, path: String, digestsKnown: Bool = true) async throws -> [ImageRecord.Layer] {
        let diffIDs = config.rootfs.diff_ids
        guard diffIDs.count == sources.count else {
            throw ImageError("\(path): the manifest has \(sources.count) layers but the config names \(diffIDs.count)")
        }
        let chainIDs = ImageStore.chainIDs(diffIDs)
        let ingest = LayerIngest(store: store, rootless: rootless)
        var layers: [ImageRecord.Layer] = []
        for (index, (descriptor, file)) in sources.enumerated() {
            guard let file else { throw ImageError("\(path): the archive has no blob \(descriptor.digest)") }
            let compression = MediaType.layerCompression(descriptor.mediaType) ?? .gzip
            let result = try await ingest.ingest(chainID: chainIDs[index], parent: index > 0 ? chainIDs[index - 1] : nil,
                                                 compression: compression, mediaType: descriptor.mediaType,
                                                 expected: digestsKnown ? (descriptor.digest, descriptor.size) : nil,
                                                 diffID: diffIDs[index], source: LayerIngest.fileSource(file))
            layers.append(ImageRecord.Layer(chainID: chainIDs[index], diffID: diffIDs[index], blob: result.blob, mediaType: descriptor.mediaType,
                                            compressedSize: result.compressedSize, size: result.size))
        }
        return layers
    }

    func commit(id: Digest, manifestDigest: Digest, mediaType: String, indexDigest: Digest?, layers: [ImageRecord.Layer],
                config: ImageConfiguration, names: [String]) throws -> ImageRecord {
        try store.withLock { () throws -> ImageRecord in
            guard layers.allSatisfy({ store.hasLayer($0.chainID) }) else {
                throw ImageError("layers disappeared while the image was recorded (a concurrent prune?); load again")
            }
            var record = store.image(id) ?? ImageRecord(id: id, names: [], digests: [], manifestDigest: manifestDigest,
                                                          manifestMediaType: mediaType, indexDigest: indexDigest, layers: layers,
                                                          created: config.created, added: ImageStore.timestamp(), platform: config.platform)
            record.layers = layers
            try store.save(record)
            for name in names { try store.tag(id, as: name) }
            return store.image(id) ?? record
        }
    }
}

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
import BerthRegistry

/// `pull`: resolve the reference (search registries, mirrors), pick the
/// platform's manifest, fetch the config, then every missing layer in
/// parallel (download, verify and unpack at once), and record the image
/// under the store's lock.
package struct ImagePuller: Sendable {
    package enum BlobState: Sendable { case exists, progress(Int64, Int64), done }
    package enum Event: Sendable {
        case trying(String)
        case blob(Digest, BlobState)
        case config(Digest)
        case writingManifest
    }

    package let store: ImageStore
    package let client: RegistryClient
    package let registries: RegistriesConfiguration
    package let rootless: Bool
    package let report: @Sendable (Event) -> Void
    /// Layers fetched at once.
    package var parallelism = 3

    package init(store: ImageStore, client: RegistryClient, registries: RegistriesConfiguration, rootless: Bool,
                 report: @escaping @Sendable (Event) -> Void) {
        self.store = store
        self.client = client
        self.registries = registries
        self.rootless = rootless
        self.report = report
    }

    package func pull(_ text: String, platform: Platform) async throws -> ImageRecord {
        let reference: ImageReference
        do { reference = try ImageReference(parsing: text) } catch { throw ImageError("\(error)") }
        let candidates = try registries.resolve(reference)
        report(.trying(candidates.first?.description ?? reference.description))
        let resolved = try await client.resolveManifest(candidates: candidates, platform: platform)
        let endpoint = resolved.endpoint
        let manifest = resolved.manifest

        // The config: small, verified by the client.
        let configBytes = try await client.fetchBlobData(endpoint, descriptor: manifest.config)
        let config: ImageConfiguration
        do { config = try JSONDecoder().decode(ImageConfiguration.self, from: Data(configBytes)) } catch {
            throw ImageError("\(reference): the image config \(manifest.config.digest.short) is not valid: \(error)")
        }
        let diffIDs = config.rootfs.diff_ids
        guard diffIDs.count == manifest.layers.count else {
            throw ImageError("\(reference): the manifest has \(manifest.layers.count) layers but the config names \(diffIDs.count)")
        }
        for layer in manifest.layers where MediaType.layerCompression(layer.mediaType) == nil {
            throw ImageError("\(reference): unsupported layer media type \(layer.mediaType)")
        }
        let chainIDs = ImageStore.chainIDs(diffIDs)

        // Layers; a second pass covers a layer removed by a concurrent rmi
        // between our check and our record.
        var layers: [ImageRecord.Layer] = []
        for _ in 0..<2 {
            layers = try await fetchLayers(manifest.layers, diffIDs: diffIDs, chainIDs: chainIDs, endpoint: endpoint)
            try store.writeBlob(configBytes, expected: manifest.config.digest)
            report(.config(manifest.config.digest))
            try store.writeBlob(resolved.manifestBytes, expected: resolved.digest)
            if let indexBytes = resolved.indexBytes, let indexDigest = resolved.indexDigest {
                try store.writeBlob(indexBytes, expected: indexDigest)
            }
            report(.writingManifest)
            let committed: ImageRecord? = try store.withLock { () throws -> ImageRecord? in
                guard chainIDs.allSatisfy({ store.hasLayer($0) }), layers.allSatisfy({ store.hasBlob($0.blob) }),
                      store.hasBlob(manifest.config.digest), store.hasBlob(resolved.digest) else { return nil }
                // A name from an unqualified search is the registry it was found
                // in; a reference by digest alone gets no name.
                let registry = resolvedRegistry(reference, endpoint), repository = resolvedRepository(reference, endpoint)
                let shownName = reference.digest != nil && reference.tag == nil ? nil
                    : ImageReference(registry: registry, repository: repository, tag: reference.tag ?? ImageReference.defaultTag).description
                let repoDigest = "\(registry)/\(repository)@\(resolved.indexDigest ?? resolved.digest)"
                var record = store.image(manifest.config.digest) ?? ImageRecord(
                    id: manifest.config.digest, names: [], digests: [], manifestDigest: resolved.digest,
                    manifestMediaType: resolved.mediaType, indexDigest: resolved.indexDigest, layers: layers,
                    created: config.created, added: ImageStore.timestamp(), platform: config.platform)
                record.layers = layers
                record.manifestDigest = resolved.digest
                record.manifestMediaType = resolved.mediaType
                record.indexDigest = resolved.indexDigest
                if !record.digests.contains(repoDigest) { record.digests.append(repoDigest) }
                try store.save(record)
                if let shownName { try store.tag(record.id, as: shownName) }
                return store.image(record.id)
            }
            if let committed { return committed }
        }
        throw ImageError("\(reference): layers kept disappearing while the image was recorded (a concurrent rmi?); pull again")
    }

    /// The registry an image came from, as users name it (a mirror is not its name).
    func resolvedRegistry(_ reference: ImageReference, _ endpoint: Endpoint) -> String {
        if reference.qualified || endpoint.isMirror { return reference.registry }
        return endpoint.reference.registry
    }

    func resolvedRepository(_ reference: ImageReference, _ endpoint: Endpoint) -> String {
        if reference.qualified || endpoint.isMirror { return reference.repository }
        return endpoint.reference.repository
    }

    func fetchLayers(_ descriptors: [Descriptor], diffIDs: [Digest], chainIDs: [Digest], endpoint: Endpoint) async throws -> [ImageRecord.Layer] {
        let ingest = LayerIngest(store: store, rootless: rootless)
        let client = self.client
        let report = self.report
        let store = self.store
        return try await withThrowingTaskGroup(of: (Int, ImageRecord.Layer).self) { group in
            var next = 0
            var results = [ImageRecord.Layer?](repeating: nil, count: descriptors.count)
            func start(_ index: Int) {
                let descriptor = descriptors[index]
                let chainID = chainIDs[index], diffID = diffIDs[index]
                let parent = index > 0 ? chainIDs[index - 1] : nil
                group.addTask {
                    let compression = MediaType.layerCompression(descriptor.mediaType) ?? .gzip
                    if let existing = store.layerRecord(chainID), store.hasLayer(chainID), store.hasBlob(descriptor.digest) {
                        report(.blob(descriptor.digest, .exists))
                        return (index, ImageRecord.Layer(chainID: chainID, diffID: diffID, blob: descriptor.digest, mediaType: descriptor.mediaType,
                                                         compressedSize: descriptor.size, size: existing.size))
                    }
                    let result: LayerIngest.Result
                    if store.hasBlob(descriptor.digest) {
                        result = try await ingest.ingestStoredBlob(descriptor, chainID: chainID, parent: parent, compression: compression, diffID: diffID)
                    } else {
                        result = try await ingest.ingest(
                            chainID: chainID, parent: parent, compression: compression, mediaType: descriptor.mediaType,
                            expected: (descriptor.digest, descriptor.size), diffID: diffID,
                            source: { consume in
                                try await client.fetchBlob(endpoint, descriptor: descriptor, progress: { p in
                                    report(.blob(descriptor.digest, .progress(p.completed, p.total)))
                                }, consume: consume)
                            })
                    }
                    report(.blob(descriptor.digest, .done))
                    return (index, ImageRecord.Layer(chainID: chainID, diffID: diffID, blob: result.blob, mediaType: descriptor.mediaType,
                                                     compressedSize: result.compressedSize, size: result.size))
                }
            }
            while next < min(parallelism, descriptors.count) { start(next); next += 1 }
            while let (index, layer) = try await group.next() {
                results[index] = layer
                if next < descriptors.count { start(next); next += 1 }
            }
            return results.map { $0! }
        }
    }
}

/// `push`: every layer blob (skipped when the registry has it, mounted from
/// another repository of the same registry when it is known to be there),
/// then the config and the manifest, as stored (so the digest is kept).
package struct ImagePusher: Sendable {
    package let store: ImageStore
    package let client: RegistryClient
    package let registries: RegistriesConfiguration
    package let chunkSize: Int?
    package let report: @Sendable (String) -> Void

    package init(store: ImageStore, client: RegistryClient, registries: RegistriesConfiguration, chunkSize: Int?,
                 report: @escaping @Sendable (String) -> Void) {
        self.store = store
        self.client = client
        self.registries = registries
        self.chunkSize = chunkSize
        self.report = report
    }

    package func push(_ record: ImageRecord, to reference: ImageReference) async throws -> Digest {
        let endpoints = try registries.resolve(reference)
        guard let endpoint = endpoints.first(where: { !$0.isMirror }) ?? endpoints.first else {
            throw ImageError("\(reference): no registry to push to")
        }
        let manifestBytes = try store.readBlob(record.manifestDigest)
        let configBytes = try store.readBlob(record.id)
        // Repositories of the same registry that have these blobs (for mounts).
        let sameRegistry = record.digests.compactMap { entry -> String? in
            guard let at = entry.firstIndex(of: "@") else { return nil }
            let name = entry[..<at]
            guard name.hasPrefix(endpoint.reference.registry + "/") else { return nil }
            let repository = String(name.dropFirst(endpoint.reference.registry.count + 1))
            return repository == endpoint.reference.repository ? nil : repository
        }
        for layer in record.layers {
            let descriptor = Descriptor(mediaType: layer.mediaType, digest: layer.blob, size: layer.compressedSize)
            if try await client.blobExists(endpoint, digest: layer.blob) {
                report("Copying blob \(layer.blob.short) skipped: already exists")
                continue
            }
            var mounted = false
            for repository in sameRegistry where !mounted {
                mounted = (try? await client.mountBlob(endpoint, digest: layer.blob, from: repository)) ?? false
            }
            if mounted {
                report("Copying blob \(layer.blob.short) mounted from another repository")
                continue
            }
            let path = store.blobPath(layer.blob)
            guard Files.exists(path) else { throw ImageError("layer blob \(layer.blob.short) is missing from the store (pull the image again)") }
            try await client.uploadBlob(endpoint, descriptor: descriptor, source: .reader({ offset, count in
                let fd = try FileDescriptor.open(path, O_RDONLY | O_CLOEXEC)
                defer { fd.close() }
                var buffer = [UInt8](repeating: 0, count: count)
                let n = buffer.withUnsafeMutableBytes { pread(fd.rawValue, $0.baseAddress, count, off_t(offset)) }
                guard n >= 0 else { throw ImageError("read \(path): \(Errno.current)") }
                return Array(buffer[0..<n])
            }), chunkSize: chunkSize)
            report("Copying blob \(layer.blob.short) done")
        }
        let configDescriptor = Descriptor(mediaType: MediaType.ociConfig, digest: record.id, size: Int64(configBytes.count))
        if try await !client.blobExists(endpoint, digest: record.id) {
            try await client.uploadBlob(endpoint, descriptor: configDescriptor, source: .bytes(configBytes))
        }
        report("Copying config \(record.id.short) done")
        report("Writing manifest to image destination")
        let digest = try await client.putManifest(endpoint, bytes: manifestBytes, mediaType: record.manifestMediaType)
        // Remember where it went (for later mounts and `images --digests`).
        try store.withLock { () throws -> Void in
            guard var current = store.image(record.id) else { return }
            let entry = "\(reference.name)@\(digest)"
            if !current.digests.contains(entry) { current.digests.append(entry); try store.save(current) }
        }
        return digest
    }
}

extension ImageStore {
    package static func timestamp() -> String {
        Date().formatted(.iso8601)
    }
}

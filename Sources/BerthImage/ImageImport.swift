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

/// `import`: a root file system tarball (plain, gzip or zstd) becomes a
/// one-layer image. The tarball is kept as the layer blob as it is.
package struct ImageImporter: Sendable {
    package let store: ImageStore
    package let rootless: Bool

    package init(store: ImageStore, rootless: Bool) {
        self.store = store
        self.rootless = rootless
    }

    /// Dockerfile-style `--change` instructions podman's import takes.
    package static func apply(_ changes: [String], to config: inout ImageConfiguration.Config) throws(ImageError) {
        for change in changes {
            let trimmed = change.trimmed
            guard let space = trimmed.firstIndex(where: { $0 == " " || $0 == "=" }) else {
                throw ImageError("--change \"\(change)\": expected INSTRUCTION VALUE")
            }
            let instruction = trimmed[..<space].uppercased()
            let value = String(trimmed[trimmed.index(after: space)...]).trimmed
            func list() -> [String] {
                if value.hasPrefix("["), let data = value.data(using: .utf8), let array = try? JSONDecoder().decode([String].self, from: data) {
                    return array
                }
                return ["/bin/sh", "-c", value]
            }
            func pairs() -> [(String, String)] {
                value.split(separator: " ").map { item in
                    let parts = item.split(separator: "=", maxSplits: 1)
                    return (String(parts[0]), parts.count > 1 ? String(parts[1]).trimmingQuotes() : "")
                }
            }
            switch instruction {
            case "CMD": config.Cmd = list()
            case "ENTRYPOINT": config.Entrypoint = list()
            case "ENV":
                var env = config.Env ?? []
                for (key, val) in pairs() {
                    env.removeAll { $0.hasPrefix(key + "=") }
                    env.append("\(key)=\(val)")
                }
                config.Env = env
            case "WORKDIR": config.WorkingDir = value
            case "USER": config.User = value
            case "LABEL":
                var labels = config.Labels ?? [:]
                for (key, val) in pairs() { labels[key] = val }
                config.Labels = labels
            case "EXPOSE":
                var ports = config.ExposedPorts ?? [:]
                for port in value.split(separator: " ") { ports[port.contains("/") ? String(port) : "\(port)/tcp"] = .object([:]) }
                config.ExposedPorts = ports
            case "VOLUME":
                var volumes = config.Volumes ?? [:]
                for path in (value.hasPrefix("[") ? list() : value.split(separator: " ").map(String.init)) { volumes[path] = .object([:]) }
                config.Volumes = volumes
            case "STOPSIGNAL": config.StopSignal = value
            default:
                throw ImageError("--change \"\(change)\": unsupported instruction \(instruction) (CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, STOPSIGNAL, USER, VOLUME, WORKDIR)")
            }
        }
    }

    package func importTarball(_ path: String, name: ImageReference?, changes: [String], message: String?) async throws -> ImageRecord {
        let (inner, compression, mediaType) = try ImageImporter.prepare(path, changes: changes)
        let ingest = LayerIngest(store: store, rootless: rootless)
        let layer = try await ingest.ingest(chainID: nil, parent: nil, compression: compression, mediaType: mediaType,
                                            expected: nil, diffID: nil, source: LayerIngest.fileSource(path))
        return try finish(layer, inner: inner, mediaType: mediaType, name: name, comment: message ?? "imported from \(path)")
    }

    /// The config from `--change`, and the layer's compression (synchronous
    /// work kept out of the async function).
    static func prepare(_ path: String, changes: [String]) throws -> (ImageConfiguration.Config, LayerCompression, String) {
        var inner = ImageConfiguration.Config()
        try ImageImporter.apply(changes, to: &inner)
        let compression = try ImageImporter.sniffCompression(path)
        let mediaType: String
        switch compression {
        case .gzip: mediaType = MediaType.ociLayerGzip
        case .zstd: mediaType = MediaType.ociLayerZstd
        case .none: mediaType = MediaType.ociLayer
        }
        return (inner, compression, mediaType)
    }

    func finish(_ layer: LayerIngest.Result, inner: ImageConfiguration.Config, mediaType: String, name: ImageReference?,
                comment: String) throws -> ImageRecord {
        let now = ImageStore.timestamp()
        var config = ImageConfiguration(architecture: Platform.host.architecture, os: "linux", variant: Platform.host.variant,
                                        config: inner, rootfs: .init(diffIDs: [layer.diffID]))
        config.created = now
        config.history = [.init(created: now, createdBy: "berth import", comment: comment)]
        let configBytes = try ImageImporter.encode(config)
        let configDigest = try store.writeBlob(configBytes)
        let manifest = ImageManifest(
            config: Descriptor(mediaType: MediaType.ociConfig, digest: configDigest, size: Int64(configBytes.count)),
            layers: [Descriptor(mediaType: mediaType, digest: layer.blob, size: layer.compressedSize)])
        let manifestBytes = try ImageImporter.encode(manifest)
        let manifestDigest = try store.writeBlob(manifestBytes)
        let record = ImageRecord(
            id: configDigest, names: [], digests: [], manifestDigest: manifestDigest, manifestMediaType: MediaType.ociManifest,
            indexDigest: nil,
            layers: [.init(chainID: layer.diffID, diffID: layer.diffID, blob: layer.blob, mediaType: mediaType,
                           compressedSize: layer.compressedSize, size: layer.size)],
            created: now, added: now, platform: config.platform)
        let store = self.store
        return try store.withLock { () throws -> ImageRecord in
            guard store.hasLayer(layer.diffID) else { throw ImageError("the imported layer disappeared (a concurrent prune?); import again") }
            try store.save(record)
            if let name { try store.tag(record.id, as: name.description) }
            return store.image(record.id) ?? record
        }
    }

    /// gzip (1f 8b), zstd (28 b5 2f fd) or plain, from the first bytes.
    package static func sniffCompression(_ path: String) throws(ImageError) -> LayerCompression {
        let fd: FileDescriptor
        do { fd = try FileDescriptor.open(path, O_RDONLY | O_CLOEXEC) } catch {
            throw ImageError("cannot open \(path): \(error)")
        }
        defer { fd.close() }
        var magic = [UInt8](repeating: 0, count: 4)
        let n = magic.withUnsafeMutableBytes { (try? fd.read(into: $0)) ?? 0 }
        if n >= 2, magic[0] == 0x1f, magic[1] == 0x8b { return .gzip }
        if n >= 4, magic == [0x28, 0xb5, 0x2f, 0xfd] { return .zstd }
        return .none
    }

    package static func encode(_ value: some Encodable) throws(ImageError) -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        do { return Array(try encoder.encode(value)) } catch { throw ImageError("encode: \(error)") }
    }
}

extension String {
    func trimmingQuotes() -> String {
        if count >= 2, (hasPrefix("\"") && hasSuffix("\"")) || (hasPrefix("'") && hasSuffix("'")) {
            return String(dropFirst().dropLast())
        }
        return self
    }
}

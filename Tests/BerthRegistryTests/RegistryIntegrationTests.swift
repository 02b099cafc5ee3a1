#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#endif
import BerthOCI
@testable import BerthRegistry
import Synchronization
import Testing

/// A small image: a config blob and one gzip layer (a tar with one file).
struct TestImage {
    var config: [UInt8]
    var configDescriptor: Descriptor
    var layer: [UInt8]
    var layerDescriptor: Descriptor
    var manifest: ImageManifest
    var manifestBytes: [UInt8]

    static func make(in directory: TemporaryDirectory, content: String = "hello from berth\n", architecture: String = "amd64") throws -> TestImage {
        try directory.write("layer/hello.txt", content)
        let tarPath = directory.path + "/layer.tar"
        let script = "tar --sort=name --mtime=@0 --owner=0 --group=0 -C '\(directory.path)/layer' -cf '\(tarPath)' . && gzip -n -c '\(tarPath)' > '\(tarPath).gz'"
        let result = TestProcess.run(["/bin/bash", "-c", script])
        guard result.status == 0 else { throw TestFailure("tar/gzip failed") }
        let tar = try readBytes(tarPath)
        let layer = try readBytes(tarPath + ".gz")
        var configuration = ImageConfiguration(architecture: architecture, os: "linux", config: .init(),
                                               rootfs: .init(diffIDs: [try DigestHasher.digest(tar)]))
        configuration.config?.Cmd = ["/bin/sh"]
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let config = Array(try encoder.encode(configuration))
        let configDescriptor = Descriptor(mediaType: MediaType.ociConfig, digest: try DigestHasher.digest(config), size: Int64(config.count))
        let layerDescriptor = Descriptor(mediaType: MediaType.ociLayerGzip, digest: try DigestHasher.digest(layer), size: Int64(layer.count))
        let manifest = ImageManifest(config: configDescriptor, layers: [layerDescriptor])
        let manifestBytes = Array(try encoder.encode(manifest))
        return TestImage(config: config, configDescriptor: configDescriptor, layer: layer, layerDescriptor: layerDescriptor,
                         manifest: manifest, manifestBytes: manifestBytes)
    }

    /// Pushes config, layer (chunked when asked) and manifest under the endpoint's tag.
    @discardableResult
    func push(_ client: RegistryClient, to endpoint: Endpoint, chunkSize: Int? = nil) async throws -> Digest {
        try await client.uploadBlob(endpoint, descriptor: configDescriptor, source: .bytes(config))
        try await client.uploadBlob(endpoint, descriptor: layerDescriptor, source: .bytes(layer), chunkSize: chunkSize)
        return try await client.putManifest(endpoint, bytes: manifestBytes, mediaType: MediaType.ociManifest)
    }
}

/// Collects progress reports from the client's callbacks.
final class ProgressLog: Sendable {
    let entries = Mutex<[BlobProgress]>([])
    func record(_ progress: BlobProgress) { entries.withLock { $0.append(progress) } }
    var all: [BlobProgress] { entries.withLock { $0 } }
}

@Suite(.serialized) struct RegistryIntegrationTests {
    static func client(credentials: Credentials? = nil) -> RegistryClient {
        RegistryClient(options: .init(credentials: { _, _ in credentials }, retryDelay: .milliseconds(20)))
    }

    static func endpoint(_ registry: LocalRegistry, _ path: String) throws -> Endpoint {
        Endpoint(try ImageReference(parsing: "\(registry.address)/\(path)"), insecure: true)
    }

    @Test func pushThenPull() async throws {
        try await LocalRegistry.with(.none) { registry in
            let client = Self.client()
            do {
                let image = try TestImage.make(in: registry.directory)
                let endpoint = try Self.endpoint(registry, "test/app:v1")

                #expect(try await client.blobExists(endpoint, digest: image.layerDescriptor.digest) == false)
                try await client.uploadBlob(endpoint, descriptor: image.configDescriptor, source: .bytes(image.config))
                // The layer in 16-byte PATCHes, read through a reader.
                let layer = image.layer
                let uploadProgress = ProgressLog()
                try await client.uploadBlob(endpoint, descriptor: image.layerDescriptor, source: .reader { offset, count in
                    Array(layer[Int(offset)..<min(layer.count, Int(offset) + count)])
                }, chunkSize: 16, progress: uploadProgress.record)
                #expect(uploadProgress.all.count == (layer.count + 15) / 16)
                #expect(uploadProgress.all.last?.completed == Int64(layer.count))
                #expect(try await client.blobExists(endpoint, digest: image.layerDescriptor.digest) == true)
                let digest = try await client.putManifest(endpoint, bytes: image.manifestBytes, mediaType: MediaType.ociManifest)
                #expect(digest == (try DigestHasher.digest(image.manifestBytes)))

                // Resolve and fetch it back.
                let resolved = try await client.resolveManifest(endpoint, platform: Platform(architecture: "s390x"))
                #expect(resolved.digest == digest)
                #expect(resolved.manifestBytes == image.manifestBytes)
                #expect(resolved.mediaType == MediaType.ociManifest)
                #expect(resolved.manifest == image.manifest)
                #expect(resolved.indexDigest == nil)
                let progress = ProgressLog()
                var received: [UInt8] = []
                try await client.fetchBlob(endpoint, descriptor: image.layerDescriptor, progress: progress.record) { bytes in
                    received.append(contentsOf: bytes)
                }
                #expect(received == image.layer)
                #expect(progress.all.last == BlobProgress(digest: image.layerDescriptor.digest, completed: Int64(layer.count), total: Int64(layer.count)))
                #expect(try await client.fetchBlobData(endpoint, descriptor: image.configDescriptor) == image.config)
                await #expect(throws: RegistryError.self) {
                    try await client.fetchBlobData(endpoint, descriptor: image.layerDescriptor, limit: 10)
                }

                // By digest too (the digest is verified).
                var byDigest = endpoint
                byDigest.reference.tag = nil
                byDigest.reference.digest = digest
                #expect(try await client.resolveManifest(byDigest).digest == digest)

                // Mount into another repository; an unknown blob cannot be mounted.
                let other = try Self.endpoint(registry, "test/other:v1")
                #expect(try await client.blobExists(other, digest: image.layerDescriptor.digest) == false)
                #expect(try await client.mountBlob(other, digest: image.layerDescriptor.digest, from: "test/app") == true)
                #expect(try await client.blobExists(other, digest: image.layerDescriptor.digest) == true)
                let unknown = Digest("sha256:" + String(repeating: "0", count: 64))!
                #expect(try await client.mountBlob(other, digest: unknown, from: "test/app") == false)

                // A second image, monolithic upload of a streamed reader source.
                let second = try TestImage.make(in: TemporaryDirectory.sub(registry.directory, "second"), content: String(repeating: "x", count: 3 << 20))
                let big = second.layer
                try await client.uploadBlob(other, descriptor: second.layerDescriptor, source: .reader { offset, count in
                    Array(big[Int(offset)..<min(big.count, Int(offset) + count)])
                })
                var fetched: [UInt8] = []
                try await client.fetchBlob(other, descriptor: second.layerDescriptor) { fetched.append(contentsOf: $0) }
                #expect(fetched == big)
            } catch {
                try? await client.shutdown()
                throw error
            }
            try await client.shutdown()
        }
    }

    @Test func indexAndPlatforms() async throws {
        try await LocalRegistry.with(.none) { registry in
            let client = Self.client()
            defer { Task { try? await client.shutdown() } }
            let amd64 = try TestImage.make(in: TemporaryDirectory.sub(registry.directory, "amd64"), architecture: "amd64")
            let s390x = try TestImage.make(in: TemporaryDirectory.sub(registry.directory, "s390x"), content: "s390x\n", architecture: "s390x")
            let base = try Self.endpoint(registry, "test/multi:unused")
            var byDigest = base
            byDigest.reference.tag = nil
            var entries: [Descriptor] = []
            for (image, architecture) in [(amd64, "amd64"), (s390x, "s390x")] {
                try await client.uploadBlob(base, descriptor: image.configDescriptor, source: .bytes(image.config))
                try await client.uploadBlob(base, descriptor: image.layerDescriptor, source: .bytes(image.layer))
                let digest = try await client.putManifest(byDigest, bytes: image.manifestBytes, mediaType: MediaType.ociManifest)
                entries.append(Descriptor(mediaType: MediaType.ociManifest, digest: digest, size: Int64(image.manifestBytes.count),
                                          platform: Platform(architecture: architecture)))
            }
            let index = ImageIndex(manifests: entries)
            let indexBytes = Array(try JSONEncoder().encode(index))
            let tagged = try Self.endpoint(registry, "test/multi:v1")
            let indexDigest = try await client.putManifest(tagged, bytes: indexBytes, mediaType: MediaType.ociIndex)

            let resolved = try await client.resolveManifest(tagged, platform: Platform(architecture: "s390x"))
            #expect(resolved.indexDigest == indexDigest)
            #expect(resolved.indexBytes == indexBytes)
            #expect(resolved.indexMediaType == MediaType.ociIndex)
            #expect(resolved.digest == entries[1].digest)
            #expect(resolved.manifest == s390x.manifest)
            #expect(resolved.platform == Platform(architecture: "s390x"))

            await #expect(throws: RegistryError(.noMatchingPlatform, "no image for platform linux/arm64 in \(registry.address)/test/multi:v1 (it has: linux/amd64, linux/s390x)")) {
                try await client.resolveManifest(tagged, platform: Platform(architecture: "arm64"))
            }

            // Search candidates: the first that lacks the image is skipped.
            let missing = try Self.endpoint(registry, "test/nosuch:v1")
            var found = tagged
            found.isMirror = false
            let viaCandidates = try await client.resolveManifest(candidates: [missing, found], platform: Platform(architecture: "amd64"))
            #expect(viaCandidates.endpoint == found)
            #expect(viaCandidates.digest == entries[0].digest)
        }
    }

    @Test func errors() async throws {
        try await LocalRegistry.with(.none) { registry in
            let client = Self.client()
            defer { Task { try? await client.shutdown() } }
            let image = try TestImage.make(in: registry.directory)
            let endpoint = try Self.endpoint(registry, "test/app:v1")
            try await image.push(client, to: endpoint)

            // 404s
            await #expect(throws: RegistryError(.manifestUnknown, "manifest unknown: \(registry.address)/test/nosuch:latest")) {
                try await client.resolveManifest(try Self.endpoint(registry, "test/nosuch"))
            }
            await #expect(throws: RegistryError(.manifestUnknown, "manifest unknown: \(registry.address)/test/app:nosuchtag")) {
                try await client.resolveManifest(try Self.endpoint(registry, "test/app:nosuchtag"))
            }
            let unknown = Descriptor(mediaType: MediaType.ociLayerGzip, digest: Digest("sha256:" + String(repeating: "1", count: 64))!, size: 3)
            await #expect(throws: RegistryError(.blobUnknown, "blob unknown: \(registry.address)/test/app@\(unknown.digest)")) {
                try await client.fetchBlob(endpoint, descriptor: unknown) { _ in }
            }

            // A descriptor with the wrong size.
            var short = image.layerDescriptor
            short.size -= 1
            await #expect(throws: RegistryError.self) {
                try await client.fetchBlob(endpoint, descriptor: short) { _ in }
            }
            var long = image.layerDescriptor
            long.size += 1
            await #expect {
                try await client.fetchBlob(endpoint, descriptor: long) { _ in }
            } throws: { error in
                (error as? RegistryError)?.code == .sizeMismatch
            }

            // The registry's stored bytes corrupted (same size): the digest check catches it.
            let hex = image.layerDescriptor.digest.hex
            let stored = "storage/docker/registry/v2/blobs/sha256/\(hex.prefix(2))/\(hex)/data"
            try registry.directory.write(stored, image.layer.map { $0 ^ 0xff })
            let corrupted = try DigestHasher.digest(image.layer.map { $0 ^ 0xff })
            await #expect(throws: RegistryError(.digestMismatch, "digest mismatch for \(image.layerDescriptor.digest) (got \(corrupted))")) {
                try await client.fetchBlob(endpoint, descriptor: image.layerDescriptor) { _ in }
            }

            // An upload whose bytes do not match the descriptor.
            var lying = image.configDescriptor
            lying.digest = Digest("sha256:" + String(repeating: "2", count: 64))!
            await #expect(throws: RegistryError.self) {
                try await client.uploadBlob(endpoint, descriptor: lying, source: .bytes(image.config))
            }

            // The stored manifest altered (still valid json, same size): its
            // bytes no longer match the Docker-Content-Digest the tag points at.
            let manifestHex = try DigestHasher.digest(image.manifestBytes).hex
            let altered = Array(String(decoding: image.manifestBytes, as: UTF8.self).replacingOccurrences(of: "tar+gzip", with: "tar+gzap").utf8)
            #expect(altered.count == image.manifestBytes.count && altered != image.manifestBytes)
            try registry.directory.write("storage/docker/registry/v2/blobs/sha256/\(manifestHex.prefix(2))/\(manifestHex)/data", altered)
            await #expect(throws: RegistryError(.digestMismatch, "digest mismatch for manifest \(registry.address)/test/app:v1 (got \(try DigestHasher.digest(altered)))")) {
                try await client.resolveManifest(endpoint)
            }

            // The consumer's own errors pass through unchanged.
            struct DiskFull: Error {}
            await #expect(throws: DiskFull.self) {
                try await client.fetchBlob(endpoint, descriptor: image.configDescriptor) { _ in throw DiskFull() }
            }
        }
    }

    @Test func unreachable() async throws {
        // A port nobody listens on: bind one, then close it.
        let port = try Self.closedPort()
        let client = Self.client()
        defer { Task { try? await client.shutdown() } }
        let endpoint = Endpoint(try ImageReference(parsing: "127.0.0.1:\(port)/x/y:1"), insecure: true)
        await #expect(throws: RegistryError(.unreachable, "cannot reach registry 127.0.0.1:\(port): connection refused")) {
            try await client.resolveManifest(endpoint)
        }
        // Secure: https only; still a connection error, not a tls one.
        let secure = Endpoint(try ImageReference(parsing: "127.0.0.1:\(port)/x/y:1"))
        await #expect(throws: RegistryError(.unreachable, "cannot reach registry 127.0.0.1:\(port): connection refused")) {
            try await client.resolveManifest(secure)
        }
    }

    @Test func httpsToPlainRegistryIsATLSError() async throws {
        try await LocalRegistry.with(.none) { registry in
            let client = Self.client()
            defer { Task { try? await client.shutdown() } }
            var endpoint = try Self.endpoint(registry, "test/app:v1")
            endpoint.insecure = false
            await #expect {
                try await client.resolveManifest(endpoint)
            } throws: { error in
                guard let error = error as? RegistryError else { return false }
                return error.code == .tls && error.message.hasPrefix("tls handshake with \(registry.address) failed")
            }
        }
    }

    @Test func basicAuth() async throws {
        try await LocalRegistry.with(.basic) { registry in
            let good = Credentials(username: LocalRegistry.username, password: LocalRegistry.password)
            let bad = Credentials(username: LocalRegistry.username, password: "wrong")
            let client = Self.client(credentials: good)
            let anonymous = Self.client()
            let wrong = Self.client(credentials: bad)
            defer { Task { try? await client.shutdown(); try? await anonymous.shutdown(); try? await wrong.shutdown() } }
            let image = try TestImage.make(in: registry.directory)
            let endpoint = try Self.endpoint(registry, "test/app:v1")
            try await image.push(client, to: endpoint, chunkSize: 100)
            #expect(try await client.resolveManifest(endpoint).manifest == image.manifest)

            await #expect(throws: RegistryError(.authenticationRequired, "authentication required: \(registry.address)/test/app")) {
                try await anonymous.resolveManifest(endpoint)
            }
            await #expect(throws: RegistryError(.invalidCredentials, "invalid username or password for \(registry.address)")) {
                try await wrong.resolveManifest(endpoint)
            }
            try await anonymous.ping(registry: registry.address, insecure: true, credentials: good)
            await #expect(throws: RegistryError(.invalidCredentials, "login failed: invalid username or password")) {
                try await anonymous.ping(registry: registry.address, insecure: true, credentials: bad)
            }
            await #expect(throws: RegistryError(.authenticationRequired, "authentication required: \(registry.address)")) {
                try await anonymous.ping(registry: registry.address, insecure: true, credentials: nil)
            }
        }
    }

    @Test func tokenAuth() async throws {
        try await LocalRegistry.with(.token) { registry in
            let good = Credentials(username: LocalRegistry.username, password: LocalRegistry.password)
            let bad = Credentials(username: LocalRegistry.username, password: "wrong")
            let client = Self.client(credentials: good)
            let anonymous = Self.client()
            let wrong = Self.client(credentials: bad)
            defer { Task { try? await client.shutdown(); try? await anonymous.shutdown(); try? await wrong.shutdown() } }
            let image = try TestImage.make(in: registry.directory)
            let endpoint = try Self.endpoint(registry, "test/app:v1")
            try await image.push(client, to: endpoint)
            let resolved = try await client.resolveManifest(endpoint)
            #expect(resolved.manifest == image.manifest)
            var layer: [UInt8] = []
            try await client.fetchBlob(endpoint, descriptor: image.layerDescriptor) { layer.append(contentsOf: $0) }
            #expect(layer == image.layer)
            #expect(try await client.fetchBlobData(endpoint, descriptor: image.configDescriptor) == image.config)
            // Mount needs a token for two repositories.
            let other = try Self.endpoint(registry, "test/other:v1")
            #expect(try await client.mountBlob(other, digest: image.layerDescriptor.digest, from: "test/app") == true)

            // Tokens are cached per scope: one for push, one for pull, one for the mount, one for HEAD in other.
            let log = try registry.directory.read("token.log")
            let tokenRequests = log.split(separator: "\n").filter { $0.contains("GET /token") }.count
            #expect(tokenRequests <= 4, "token requests: \(tokenRequests)\n\(log)")

            await #expect(throws: RegistryError(.authenticationRequired, "authentication required: \(registry.address)/test/app")) {
                try await anonymous.resolveManifest(endpoint)
            }
            await #expect(throws: RegistryError(.invalidCredentials, "invalid username or password for \(registry.address)")) {
                try await wrong.resolveManifest(endpoint)
            }
            try await anonymous.ping(registry: registry.address, insecure: true, credentials: good)
            await #expect(throws: RegistryError(.invalidCredentials, "login failed: invalid username or password")) {
                try await anonymous.ping(registry: registry.address, insecure: true, credentials: bad)
            }
        }
    }

    static func closedPort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw TestFailure("socket failed") }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0 }
        }
        guard bound else { throw TestFailure("bind failed") }
        return Int(UInt16(bigEndian: address.sin_port))
    }
}

extension TemporaryDirectory {
    /// A sub-directory of another temporary directory (removed with it).
    static func sub(_ parent: TemporaryDirectory, _ name: String) -> TemporaryDirectory {
        mkdir(parent.path + "/" + name, 0o755)
        return TemporaryDirectory(existing: parent.path + "/" + name)
    }

    init(existing path: String) { self.path = path }
}

import AsyncHTTPClient
import BerthOCI
import NIOCore
import NIOHTTP1
import Synchronization

/// Where an upload's bytes come from: memory, or a reader called with an
/// offset and a maximum count (a file: `pread`), so large layers are never
/// held in memory whole. The reader may be called again from offset 0 when
/// an upload is retried.
package enum BlobSource: Sendable {
    case bytes([UInt8])
    case reader(@Sendable (_ offset: Int64, _ count: Int) throws -> [UInt8])

    func read(at offset: Int64, count: Int) throws -> [UInt8] {
        switch self {
        case .bytes(let bytes):
            let start = Int(min(offset, Int64(bytes.count)))
            return Array(bytes[start..<min(bytes.count, start + count)])
        case .reader(let read):
            return try read(offset, count)
        }
    }
}

extension RegistryClient {
    /// Whether the repository has the blob (HEAD).
    package func blobExists(_ endpoint: Endpoint, digest: Digest) async throws -> Bool {
        let target = Target(endpoint)
        let repository = endpoint.reference.repository
        return try await withRetries { _ in
            let answer = try await send(target, method: .HEAD, path: "/v2/\(repository)/blobs/\(digest)",
                                        scopes: RegistryClient.scope(repository, push: true), followRedirects: true)
            switch answer.status {
            case 200: return true
            case 404: return false
            default: throw await statusError(answer, .blob("\(endpoint.reference.name)@\(digest)"), registry: target.registry)
            }
        }
    }

    /// Asks the registry to link a blob from another repository it holds
    /// (POST ?mount=&from=). True when mounted (201); false when the
    /// registry cannot (202: it opened an upload instead, which is
    /// cancelled; the caller uploads).
    package func mountBlob(_ endpoint: Endpoint, digest: Digest, from repository: String) async throws -> Bool {
        let target = Target(endpoint)
        let path = "/v2/\(endpoint.reference.repository)/blobs/uploads/?mount=\(RegistryClient.percentEncode(digest.description))&from=\(RegistryClient.percentEncode(repository))"
        let scopes = RegistryClient.scope(endpoint.reference.repository, push: true) + RegistryClient.scope(repository)
        return try await withRetries { _ in
            let answer = try await send(target, method: .POST, path: path, body: .bytes(ByteBuffer()), scopes: scopes)
            switch answer.status {
            case 201:
                _ = try? await answer.response.body.collect(upTo: 64 * 1024)
                return true
            case 202:
                _ = try? await answer.response.body.collect(upTo: 64 * 1024)
                if let location = answer.header("Location") {
                    let url = URLParts.resolve(location, against: answer.url)
                    if let cancelled = try? await send(target, method: .DELETE, path: url, scopes: scopes) {
                        _ = try? await cancelled.response.body.collect(upTo: 64 * 1024)
                    }
                }
                return false
            default:
                throw await statusError(answer, .other(endpoint.reference.name), registry: target.registry)
            }
        }
    }

    /// Uploads a blob: monolithically (POST, then one PUT ?digest= with the
    /// whole body) or, with `chunkSize`, in PATCHes of that many bytes with
    /// Content-Range, then PUT ?digest=. A failed attempt (connection error,
    /// 429, 5xx) starts a new upload, up to `options.attempts` times.
    package func uploadBlob(_ endpoint: Endpoint, descriptor: Descriptor, source: BlobSource, chunkSize: Int? = nil,
                            progress: (@Sendable (BlobProgress) -> Void)? = nil) async throws {
        let target = Target(endpoint)
        let repository = endpoint.reference.repository
        let scopes = RegistryClient.scope(repository, push: true)
        let subject = "\(endpoint.reference.name)@\(descriptor.digest)"
        try await withRetries { _ in
            let start = try await send(target, method: .POST, path: "/v2/\(repository)/blobs/uploads/",
                                       body: .bytes(ByteBuffer()), scopes: scopes)
            guard start.status == 202, let firstLocation = start.header("Location") else {
                if start.status == 202 { throw RegistryError(.invalidResponse, "registry \(target.registry) started an upload without a location") }
                throw await statusError(start, .other(endpoint.reference.name), registry: target.registry)
            }
            _ = try? await start.response.body.collect(upTo: 64 * 1024)
            var location = URLParts.resolve(firstLocation, against: start.url)
            var finalBody: RequestBody = .bytes(ByteBuffer())
            if let chunkSize, chunkSize > 0 {
                var offset: Int64 = 0
                while offset < descriptor.size {
                    let count = Int(min(Int64(chunkSize), descriptor.size - offset))
                    let chunk = try source.read(at: offset, count: count)
                    guard chunk.count == count else {
                        throw RegistryError(.sizeMismatch, "size mismatch for \(descriptor.digest) (the source ended at \(offset + Int64(chunk.count)) of \(descriptor.size) bytes)")
                    }
                    var headers = HTTPHeaders()
                    headers.add(name: "Content-Type", value: "application/octet-stream")
                    headers.add(name: "Content-Range", value: "\(offset)-\(offset + Int64(count) - 1)")
                    let answer = try await send(target, method: .PATCH, path: location, headers: headers,
                                                body: .bytes(ByteBuffer(bytes: chunk)), scopes: scopes)
                    guard answer.status == 202 || answer.status == 204 else {
                        throw await statusError(answer, .other(subject), registry: target.registry)
                    }
                    _ = try? await answer.response.body.collect(upTo: 64 * 1024)
                    if let next = answer.header("Location") { location = URLParts.resolve(next, against: answer.url) }
                    offset += Int64(count)
                    progress?(BlobProgress(digest: descriptor.digest, completed: offset, total: descriptor.size))
                }
            } else {
                finalBody = RegistryClient.streamBody(source, descriptor: descriptor, progress: progress)
            }
            var headers = HTTPHeaders()
            headers.add(name: "Content-Type", value: "application/octet-stream")
            let url = location + (location.contains("?") ? "&" : "?") + "digest=" + RegistryClient.percentEncode(descriptor.digest.description)
            let done = try await send(target, method: .PUT, path: url, headers: headers, body: finalBody, scopes: scopes)
            guard done.status == 201 || done.status == 204 else {
                throw await statusError(done, .other(subject), registry: target.registry)
            }
            _ = try? await done.response.body.collect(upTo: 64 * 1024)
            if let echoed = done.header("Docker-Content-Digest").flatMap(Digest.init), echoed != descriptor.digest {
                throw RegistryError(.digestMismatch, "digest mismatch for \(descriptor.digest) (the registry stored \(echoed))")
            }
        }
    }

    /// The whole blob as a request body read in 1 MiB pieces on demand.
    static func streamBody(_ source: BlobSource, descriptor: Descriptor,
                           progress: (@Sendable (BlobProgress) -> Void)?) -> RequestBody {
        if case .bytes(let bytes) = source, bytes.count <= 1 << 20 {
            progress?(BlobProgress(digest: descriptor.digest, completed: Int64(bytes.count), total: descriptor.size))
            return .bytes(ByteBuffer(bytes: bytes))
        }
        let size = descriptor.size
        return .stream(length: size) {
            let offset = Offset()
            return AsyncThrowingStream<ByteBuffer, any Error> { () async throws -> ByteBuffer? in
                let start = offset.value.withLock { $0 }
                guard start < size else { return nil }
                let count = Int(min(Int64(1 << 20), size - start))
                let piece = try source.read(at: start, count: count)
                guard piece.count == count else {
                    throw RegistryError(.sizeMismatch, "size mismatch for \(descriptor.digest) (the source ended at \(start + Int64(piece.count)) of \(size) bytes)")
                }
                offset.value.withLock { $0 = start + Int64(count) }
                progress?(BlobProgress(digest: descriptor.digest, completed: start + Int64(count), total: size))
                return ByteBuffer(bytes: piece)
            }
        }
    }

    /// PUTs a manifest (or index) under the endpoint reference's tag (or
    /// digest); returns its digest.
    @discardableResult
    package func putManifest(_ endpoint: Endpoint, bytes: [UInt8], mediaType: String) async throws -> Digest {
        let target = Target(endpoint)
        let repository = endpoint.reference.repository
        let digest = try DigestHasher.digest(bytes)
        if let wanted = endpoint.reference.digest, wanted != digest {
            throw RegistryError(.digestMismatch, "digest mismatch for manifest \(endpoint.reference) (got \(digest))")
        }
        let ref = endpoint.reference.tag ?? digest.description
        let subject = "\(endpoint.reference.name):\(ref)"
        return try await withRetries { _ in
            var headers = HTTPHeaders()
            headers.add(name: "Content-Type", value: mediaType)
            let answer = try await send(target, method: .PUT, path: "/v2/\(repository)/manifests/\(ref)", headers: headers,
                                        body: .bytes(ByteBuffer(bytes: bytes)), scopes: RegistryClient.scope(repository, push: true))
            guard answer.status == 201 || answer.status == 200 || answer.status == 204 else {
                throw await statusError(answer, .manifest(subject), registry: target.registry)
            }
            _ = try? await answer.response.body.collect(upTo: 64 * 1024)
            if let echoed = answer.header("Docker-Content-Digest").flatMap(Digest.init), echoed.algorithm == digest.algorithm, echoed != digest {
                throw RegistryError(.digestMismatch, "digest mismatch for manifest \(subject) (the registry computed \(echoed))")
            }
            return digest
        }
    }
}

/// The read position of one streamed upload body.
private final class Offset: Sendable {
    let value = Mutex<Int64>(0)
}

import AsyncHTTPClient
import BerthOCI
import NIOCore
import NIOHTTP1

extension RegistryClient {
    /// Streams a blob to `consume`, chunk by chunk and in order, following
    /// redirects to blob storage. Every byte is handed over exactly once:
    /// after a dropped connection, 429 or 5xx (up to `options.attempts`
    /// tries, backing off) the download resumes with `Range: bytes=N-`, and
    /// when the server ignores the range and sends the whole blob again, the
    /// bytes already delivered are skipped, so the consumer never has to
    /// restart. Size and digest are checked as the bytes arrive and at the
    /// end: on a mismatch this throws (after `consume` saw the bad bytes, so
    /// the caller must discard what it wrote) and never returns normally.
    package func fetchBlob(_ endpoint: Endpoint, descriptor: Descriptor,
                           progress: (@Sendable (BlobProgress) -> Void)? = nil,
                           consume: (UnsafeRawBufferPointer) throws -> Void) async throws {
        let target = Target(endpoint)
        let repository = endpoint.reference.repository
        let digest = descriptor.digest
        let size = descriptor.size
        let subject = "\(endpoint.reference.name)@\(digest)"
        var hasher = try DigestHasher(algorithm: digest.algorithm)
        var delivered: Int64 = 0
        var attempt = 1
        var delay = options.retryDelay
        while true {
            do {
                try await fetchBlobAttempt(target, repository: repository, digest: digest, size: size, subject: subject,
                                           delivered: &delivered, hasher: &hasher, progress: progress, consume: consume)
                break
            } catch let error as RegistryError where error.isRetryable && attempt < options.attempts {
                try await Task.sleep(for: delay)
                delay *= 2
                attempt += 1
            }
        }
        guard delivered == size else {
            throw RegistryError(.sizeMismatch, "size mismatch for \(digest) (expected \(size) bytes, got \(delivered))")
        }
        let got = hasher.finalize()
        guard got == digest else {
            throw RegistryError(.digestMismatch, "digest mismatch for \(digest) (got \(got))")
        }
    }

    private func fetchBlobAttempt(_ target: Target, repository: String, digest: Digest, size: Int64, subject: String,
                                  delivered: inout Int64, hasher: inout DigestHasher,
                                  progress: (@Sendable (BlobProgress) -> Void)?,
                                  consume: (UnsafeRawBufferPointer) throws -> Void) async throws {
        var headers = HTTPHeaders()
        if delivered > 0 { headers.add(name: "Range", value: "bytes=\(delivered)-") }
        let answer = try await send(target, method: .GET, path: "/v2/\(repository)/blobs/\(digest)", headers: headers,
                                    scopes: RegistryClient.scope(repository), followRedirects: true)
        var skip: Int64 = 0
        switch answer.status {
        case 200:
            skip = delivered // the whole blob again: drop what the consumer already has
        case 206:
            guard let start = answer.header("Content-Range").flatMap(RegistryClient.rangeStart), start <= delivered else {
                _ = try? await answer.response.body.collect(upTo: 64 * 1024)
                throw RegistryError(.invalidResponse, "registry \(target.registry) sent a bad range for \(subject)")
            }
            skip = delivered - start
        case 416 where delivered > 0:
            _ = try? await answer.response.body.collect(upTo: 64 * 1024)
            throw RegistryError(.sizeMismatch, "size mismatch for \(digest) (expected \(size) bytes, got \(delivered))")
        default:
            throw await statusError(answer, .blob(subject), registry: target.registry)
        }
        var iterator = answer.response.body.makeAsyncIterator()
        while true {
            let next: ByteBuffer?
            do {
                next = try await iterator.next()
            } catch {
                throw transportError(error, host: URLParts(answer.url)?.authority ?? target.apiHost)
            }
            guard let buffer = next else { break }
            var view = buffer.readableBytesView[...]
            if skip > 0 {
                let dropped = min(Int64(view.count), skip)
                view = view.dropFirst(Int(dropped))
                skip -= dropped
            }
            guard !view.isEmpty else { continue }
            guard delivered + Int64(view.count) <= size else {
                throw RegistryError(.sizeMismatch, "size mismatch for \(digest) (expected \(size) bytes, got more)")
            }
            try view.withUnsafeBytes { bytes in
                hasher.update(bytes)
                try consume(bytes)
            }
            delivered += Int64(view.count)
            progress?(BlobProgress(digest: digest, completed: delivered, total: size))
        }
        if delivered < size {
            // The body ended cleanly (a dropped connection is an error from
            // the iterator): the registry's blob is shorter than the descriptor says.
            throw RegistryError(.sizeMismatch, "size mismatch for \(digest) (expected \(size) bytes, got \(delivered))")
        }
    }

    /// `bytes 100-199/200` → 100.
    static func rangeStart(_ header: String) -> Int64? {
        var text = Substring(header)
        if text.hasPrefix("bytes ") { text = text.dropFirst(6) }
        guard let dash = text.firstIndex(of: "-") else { return nil }
        return Int64(text[..<dash])
    }

    /// A small blob (an image config) in memory; refuses blobs larger than `limit`.
    package func fetchBlobData(_ endpoint: Endpoint, descriptor: Descriptor, limit: Int = 16 << 20) async throws -> [UInt8] {
        guard descriptor.size <= Int64(limit) else {
            throw RegistryError(.tooLarge, "blob \(descriptor.digest) is too large (\(descriptor.size) bytes, limit \(limit))")
        }
        var data: [UInt8] = []
        data.reserveCapacity(Int(max(0, descriptor.size)))
        try await fetchBlob(endpoint, descriptor: descriptor) { bytes in data.append(contentsOf: bytes) }
        return data
    }
}

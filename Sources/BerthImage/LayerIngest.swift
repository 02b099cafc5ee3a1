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
import CBerth
import Crypto
import Dispatch

/// Takes one layer blob into the store while it arrives: every chunk is
/// hashed, appended to a temporary blob file and written into a pipe that a
/// thread of its own unpacks (decompression overlaps with download). Nothing
/// is renamed into the store until the blob's digest and size and the
/// unpacked tar's diff ID are verified.
package struct LayerIngest: Sendable {
    package let store: ImageStore
    package let options: LayerUnpackOptions

    package init(store: ImageStore, rootless: Bool) {
        self.store = store
        self.options = LayerUnpackOptions.defaults(rootless: rootless)
    }

    package struct Result: Sendable {
        package var blob: Digest
        package var compressedSize: Int64
        package var diffID: Digest
        package var size: Int64
        package var entries: Int
    }

    /// Feeds the layer's bytes to `consume`, chunk by chunk, in order.
    package typealias Source = @Sendable (_ consume: @Sendable (UnsafeRawBufferPointer) throws -> Void) async throws -> Void

    /// Ingests a layer whose chain ID will be `chainID` (parent `parent`).
    /// `expected` is the blob's descriptor digest and size when known (pull,
    /// load); `diffID` the config's diff ID when known.
    package func ingest(chainID: Digest?, parent: Digest?, compression: LayerCompression, mediaType: String,
                        expected: (digest: Digest, size: Int64)?, diffID expectedDiffID: Digest?,
                        source: Source) async throws -> Result {
        let tempBlob = try store.temporaryPath("blob")
        let tempLayer = try store.temporaryPath("layer")
        var committed = false
        defer {
            if !committed {
                Files.removeTree(tempBlob)
                Files.removeTree(tempLayer)
            }
        }
        let (blobFD, diffFD, pipe) = try Self.open(tempBlob: tempBlob, tempLayer: tempLayer)
        defer { blobFD.close(); diffFD.close() }

        // The unpacker runs on a thread of its own, reading the pipe.
        let options = self.options
        let unpacked = Self.onThread { () throws -> LayerUnpackResult in
            defer { pipe.read.close() }
            return try LayerUnpacker.unpack(input: pipe.read, compression: compression, into: diffFD, options: options)
        }
        let hasher = HashingSink(blob: blobFD, pipe: pipe.write)
        var sourceError: (any Error)? = nil
        do {
            try await source { chunk in try hasher.write(chunk) }
        } catch {
            sourceError = error
        }
        pipe.write.close()
        let unpackResult = await unpacked.value
        // An unpack failure explains a broken pipe better than the pipe does.
        if case let .failure(error) = unpackResult, sourceError == nil || hasher.pipeBroken {
            throw error
        }
        if let sourceError { throw sourceError }
        let layer = try unpackResult.get()

        let (digest, size) = hasher.finish()
        if let expected {
            guard size == expected.size else {
                throw ImageError("layer \(expected.digest.short): size mismatch (expected \(expected.size) bytes, got \(size))")
            }
            guard digest == expected.digest else {
                throw ImageError("layer blob digest mismatch: expected \(expected.digest), got \(digest)")
            }
        }
        if let expectedDiffID, layer.diffID != expectedDiffID {
            throw ImageError("layer \(digest.short): uncompressed content is \(layer.diffID), but the image config says \(expectedDiffID)")
        }
        let chain = chainID ?? layer.diffID
        try store.withLock { () throws -> Void in
            if !store.hasBlob(digest) {
                try store.adoptBlob(temporary: tempBlob, digest: digest)
            }
            try store.commitLayer(temporary: tempLayer, record: LayerRecord(
                chainID: chain, diffID: layer.diffID, parent: parent, size: layer.uncompressedSize,
                blob: digest, mediaType: mediaType, entries: layer.entries))
        }
        committed = true
        return Result(blob: digest, compressedSize: size, diffID: layer.diffID, size: layer.uncompressedSize, entries: layer.entries)
    }

    /// Ingests from a blob already in the store (an earlier pull was killed
    /// after keeping the blob but before the layer).
    package func ingestStoredBlob(_ descriptor: Descriptor, chainID: Digest, parent: Digest?, compression: LayerCompression,
                                  diffID: Digest?) async throws -> Result {
        let path = store.blobPath(descriptor.digest)
        return try await ingest(chainID: chainID, parent: parent, compression: compression, mediaType: descriptor.mediaType,
                                expected: (descriptor.digest, descriptor.size), diffID: diffID,
                                source: LayerIngest.fileSource(path))
    }

    /// A source reading a local file (import, load, a stored blob).
    package static func fileSource(_ path: String) -> Source {
        { consume in
            let fd: FileDescriptor
            do { fd = try FileDescriptor.open(path, O_RDONLY | O_CLOEXEC) } catch {
                throw ImageError("cannot open \(path): \(error)")
            }
            defer { fd.close() }
            var buffer = [UInt8](repeating: 0, count: 1 << 20)
            while true {
                let n = try buffer.withUnsafeMutableBytes { (raw) throws -> Int in
                    do { return try fd.read(into: raw) } catch { throw ImageError("read \(path): \(error)") }
                }
                if n == 0 { return }
                try buffer.withUnsafeBytes { try consume(UnsafeRawBufferPointer(rebasing: $0[0..<n])) }
            }
        }
    }

    static func open(tempBlob: String, tempLayer: String) throws(ImageError) -> (FileDescriptor, FileDescriptor, (read: FileDescriptor, write: FileDescriptor)) {
        do {
            let blob = try FileDescriptor.open(tempBlob, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode: 0o644)
            do {
                try Files.makeDirectories(tempLayer + "/diff", mode: 0o755)
                let diff = try FileDescriptor.open(tempLayer + "/diff", O_RDONLY | O_DIRECTORY | O_CLOEXEC)
                let pipe = try makePipe()
                _ = fcntl(pipe.write.rawValue, 1031 /* F_SETPIPE_SZ */, Int32(1 << 20))
                return (blob, diff, pipe)
            } catch {
                blob.close()
                throw error
            }
        } catch {
            throw ImageError("cannot prepare a layer in \(tempLayer): \(error)")
        }
    }

    /// Runs `body` on a new thread (it blocks on a pipe, so not on the
    /// cooperative pool) and delivers its result as a task.
    static func onThread<T: Sendable>(_ body: @escaping @Sendable () throws -> T) -> Task<Swift.Result<T, any Error>, Never> {
        Task {
            await withCheckedContinuation { continuation in
                Thread.detach {
                    continuation.resume(returning: Swift.Result { try body() })
                }
            }
        }
    }
}

/// A detached pthread (no Foundation Thread in FoundationEssentials).
enum Thread {
    final class Box: @unchecked Sendable {
        let body: @Sendable () -> Void
        init(_ body: @escaping @Sendable () -> Void) { self.body = body }
    }

    static func detach(_ body: @escaping @Sendable () -> Void) {
        let box = Unmanaged.passRetained(Box(body)).toOpaque()
        var thread = pthread_t()
        let result = pthread_create(&thread, nil, { raw in
            let box = Unmanaged<Box>.fromOpaque(raw!).takeRetainedValue()
            box.body()
            return nil
        }, box)
        if result != 0 {
            Unmanaged<Box>.fromOpaque(box).takeRetainedValue().body()
        } else {
            pthread_detach(thread)
        }
    }
}

/// Hashes and counts the compressed bytes, keeps them in the blob file and
/// passes them on to the unpacker.
final class HashingSink: @unchecked Sendable {
    private var hasher = SHA256()
    private var count: Int64 = 0
    private let blob: FileDescriptor
    private let pipe: FileDescriptor
    private(set) var pipeBroken = false

    init(blob: FileDescriptor, pipe: FileDescriptor) {
        self.blob = blob
        self.pipe = pipe
    }

    func write(_ chunk: UnsafeRawBufferPointer) throws {
        hasher.update(bufferPointer: chunk)
        count += Int64(chunk.count)
        do { try blob.writeAll(chunk) } catch { throw ImageError("write layer blob: \(error)") }
        do { try pipe.writeAll(chunk) } catch {
            pipeBroken = true
            throw ImageError("layer unpacking stopped")
        }
    }

    func finish() -> (Digest, Int64) {
        (Digest(hex: ImageStore.hexString(hasher.finalize())), count)
    }
}

#if canImport(Glibc)
import Glibc
#endif
import BerthImage
import BerthOCI
import BerthOS
import BerthTestSupport
import Testing

/// `BERTH_UNPACK_BENCH=/path/layer.tgz swift test --filter UnpackBenchmark`:
/// unpacks a real layer and prints the time (skipped otherwise). The root is
/// made in BERTH_UNPACK_BENCH_DIR if set (a tmpfs takes the disk out).
@Suite struct UnpackBenchmark {
    static let layer = getenv("BERTH_UNPACK_BENCH").map { String(cString: $0) }

    @Test(.enabled(if: layer != nil)) func unpackRealLayer() throws {
        let path = try #require(Self.layer)
        let compression: LayerCompression = path.hasSuffix(".zst") ? .zstd : path.hasSuffix("gz") ? .gzip : .none
        let directory = TemporaryDirectory("bench")
        defer { directory.remove() }
        let rootPath = getenv("BERTH_UNPACK_BENCH_DIR").map { String(cString: $0) + "/berth-bench-root" } ?? directory.subpath("root")
        try Files.makeDirectories(rootPath)
        defer { Files.removeTree(rootPath) }
        let input = try FileDescriptor.open(path, O_RDONLY)
        defer { input.close() }
        let root = try FileDescriptor.open(rootPath, O_RDONLY | O_DIRECTORY)
        defer { root.close() }
        var start = timespec(), end = timespec()
        clock_gettime(CLOCK_MONOTONIC, &start)
        let result = try LayerUnpacker.unpack(input: input, compression: compression, into: root,
                                              options: .defaults(rootless: getuid() != 0))
        clock_gettime(CLOCK_MONOTONIC, &end)
        let seconds = Double(end.tv_sec - start.tv_sec) + Double(end.tv_nsec - start.tv_nsec) / 1e9
        print("unpacked \(result.entries) entries, \(result.uncompressedSize) bytes in \(seconds) s "
              + "(\(Int(Double(result.uncompressedSize) / seconds / 1e6)) MB/s), diffID \(result.diffID)")
    }
}

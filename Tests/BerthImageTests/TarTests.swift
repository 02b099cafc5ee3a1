#if canImport(Glibc)
import Glibc
#endif
@testable import BerthImage
import BerthOCI
import BerthOS
import BerthTestSupport
import Testing

@Suite struct TarTests {
    /// docker-archive's shape: a directory, files from bytes and from a descriptor.
    func writeArchive(_ path: String, payload: String) throws {
        let source = path + ".payload"
        try Files.write(source, payload)
        let input = try FileDescriptor.open(source, O_RDONLY)
        defer { input.close() }
        let output = try FileDescriptor.open(path, O_WRONLY | O_CREAT | O_TRUNC)
        defer { output.close() }
        var writer = try TarWriter(descriptor: output)
        try writer.addDirectory("blobs/sha256")
        try writer.addFile("manifest.json", bytes: Array("[{}]".utf8))
        try writer.addFile("blobs/sha256/abc", from: input, size: Int64(payload.utf8.count), mode: 0o600, modificationTime: 42)
        try writer.finish()
    }

    @Test(arguments: [false, true])
    func roundTrip(gzipped: Bool) throws {
        let directory = TemporaryDirectory("tar")
        defer { directory.remove() }
        let path = directory.subpath("archive.tar")
        let payload = String(repeating: "layer bytes ", count: 20_000)
        try writeArchive(path, payload: payload)
        if gzipped { try Files.writeAtomically(path, gzip(try Files.read(path))) }

        let input = try FileDescriptor.open(path, O_RDONLY)
        defer { input.close() }
        var reader = try TarReader(descriptor: input)
        let first = try #require(try reader.next())
        #expect(first.name == "blobs/sha256" && first.kind == .directory && first.mode == 0o755 && first.uid == 0)
        let manifest = try #require(try reader.next())
        #expect(manifest.name == "manifest.json" && manifest.size == 4)
        #expect(try reader.readContents(limit: 4) == Array("[{}]".utf8))
        let blob = try #require(try reader.next())
        #expect(blob.name == "blobs/sha256/abc" && blob.mode == 0o600 && blob.modificationTime == 42)
        let copy = try FileDescriptor.open(directory.subpath("copy"), O_WRONLY | O_CREAT | O_TRUNC)
        #expect(try reader.copyContents(to: copy) == Int64(payload.utf8.count))
        copy.close()
        #expect(try Files.readString(directory.subpath("copy")) == payload)
        #expect(try reader.next() == nil)
    }

    @Test func isDeterministic() throws {
        let directory = TemporaryDirectory("tar")
        defer { directory.remove() }
        try writeArchive(directory.subpath("one.tar"), payload: "same")
        try writeArchive(directory.subpath("two.tar"), payload: "same")
        let one = try Files.read(directory.subpath("one.tar"))
        #expect(one == (try Files.read(directory.subpath("two.tar"))))
        #expect(one.count % 512 == 0 && one.count < 10240)  // not padded to a 10 KiB record
    }

    @Test func readContentsRefusesMoreThanTheLimit() throws {
        let directory = TemporaryDirectory("tar")
        defer { directory.remove() }
        let path = directory.subpath("archive.tar")
        try Files.writeAtomically(path, try tarBytes([.file("big", String(repeating: "x", count: 5000))]))
        let input = try FileDescriptor.open(path, O_RDONLY)
        defer { input.close() }
        var reader = try TarReader(descriptor: input)
        _ = try reader.next()
        let error = #expect(throws: ImageError.self) { try reader.readContents(limit: 4096) }
        #expect(error?.message == "tar: big is 5000 bytes, over the 4096-byte limit")
    }

    @Test func shortSourceIsAnError() throws {
        let directory = TemporaryDirectory("tar")
        defer { directory.remove() }
        try Files.write(directory.subpath("short"), "abc")
        let input = try FileDescriptor.open(directory.subpath("short"), O_RDONLY)
        defer { input.close() }
        let output = try FileDescriptor.open(directory.subpath("out.tar"), O_WRONLY | O_CREAT | O_TRUNC)
        defer { output.close() }
        var writer = try TarWriter(descriptor: output)
        let error = #expect(throws: ImageError.self) { try writer.addFile("f", from: input, size: 10) }
        #expect(error?.message == "tar: f ended 7 bytes short of 10")
    }

    @Test func truncatedArchiveIsAnError() throws {
        let directory = TemporaryDirectory("tar")
        defer { directory.remove() }
        let path = directory.subpath("archive.tar")
        let tar = try tarBytes([.file("big", String(repeating: "x", count: 5000))])
        try Files.writeAtomically(path, Array(tar[..<2048]))
        let input = try FileDescriptor.open(path, O_RDONLY)
        defer { input.close() }
        var reader = try TarReader(descriptor: input)
        _ = try reader.next()
        let error = #expect(throws: ImageError.self) { try reader.readContents(limit: 1 << 20) }
        #expect(error?.message == "tar: big: truncated tar archive")
    }
}

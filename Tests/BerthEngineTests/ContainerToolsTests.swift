#if canImport(Glibc)
import Glibc
#endif
#if canImport(FoundationEssentials)
import FoundationEssentials
#endif
import Testing
import BerthEngine
import BerthImage
import BerthOCI
import BerthOS
import BerthTestSupport
import CBerth

/// Archives `directory` and reads the archive back with libarchive (the
/// reader image loading uses): entries by name, with contents of regular files.
private func archiveAndRead(_ directory: String, mode: TreeArchiver.Mode) throws -> [(TarEntry, [UInt8])] {
    let scratch = TemporaryDirectory("tar")
    defer { scratch.remove() }
    let tarPath = scratch.subpath("out.tar")
    let output = try FileDescriptor.open(tarPath, O_WRONLY | O_CREAT | O_EXCL, mode: 0o600)
    let source = try FileDescriptor.open(directory, O_RDONLY | O_DIRECTORY)
    let tar = try TarStream(output: output)
    var archiver = TreeArchiver(tar: tar, mode: mode)
    try archiver.archive(directory: source)
    try tar.finish()
    source.close()
    output.close()
    #expect(try Files.stat(tarPath).st_size % 512 == 0)
    let input = try FileDescriptor.open(tarPath, O_RDONLY)
    defer { input.close() }
    var reader = try TarReader(descriptor: input)
    var result: [(TarEntry, [UInt8])] = []
    while let entry = try reader.next() {
        let contents = entry.kind == .regularFile ? try reader.readContents(limit: 1 << 20) : []
        result.append((entry, contents))
    }
    return result
}

private func setAttribute(_ path: String, _ name: String, _ value: String) -> Bool {
    guard let fd = try? FileDescriptor.open(path, O_RDONLY | O_NONBLOCK) else { return false }
    defer { fd.close() }
    return berth_fsetxattr(fd.rawValue, name, value, value.utf8.count) == 0
}

@Suite("Container tools")
struct ContainerToolsTests {
    @Test("an upper directory becomes a layer: whiteouts as .wh. entries, opaque directories as .wh..wh..opq")
    func upperToLayer() throws {
        let dir = TemporaryDirectory("upper")
        defer { dir.remove() }
        let upper = dir.subpath("upper")
        try Files.makeDirectories(upper + "/etc")
        try Files.makeDirectories(upper + "/data/sub")
        try Files.write(upper + "/etc/motd", "changed\n")
        try Files.write(upper + "/data/sub/file", "x")
        // A deleted /etc/hostname: overlay's char device 0/0 (unprivileged since Linux 5.8).
        try #require(mknod(upper + "/etc/hostname", S_IFCHR | 0o000, 0) == 0, "mknod whiteout: \(Errno.current)")
        // The kernel's other whiteout: an empty file with overlay.whiteout.
        try Files.write(upper + "/etc/issue", "")
        let xattrs = setAttribute(upper + "/etc/issue", "user.overlay.whiteout", "")
            && setAttribute(upper + "/data", "user.overlay.opaque", "y")
            && setAttribute(upper + "/etc", "user.overlay.opaque", "x")
        try #require(symlink("motd", upper + "/etc/link") == 0)
        try #require(link(upper + "/etc/motd", upper + "/etc/hard") == 0)

        let entries = try archiveAndRead(upper, mode: .layer)
        let names = entries.map(\.0.name)
        #expect(names.contains("etc/.wh.hostname"))
        #expect(!names.contains("etc/hostname"))
        #expect(names.contains("etc/motd"))
        // Names go in byte order: "hard" carries the contents, "motd" is a hard link to it.
        #expect(entries.first { $0.0.name == "etc/hard" }?.1 == Array("changed\n".utf8))
        #expect(entries.first { $0.0.name == "etc/motd" }?.0.kind == .hardlink(target: "etc/hard"))
        #expect(entries.first { $0.0.name == "etc/link" }?.0.kind == .symlink(target: "motd"))
        if xattrs {
            #expect(names.contains("etc/.wh.issue"))
            #expect(!names.contains("etc/issue"))
            #expect(names.contains("data/.wh..wh..opq"), "an opaque directory is marked")
            #expect(!names.contains("etc/.wh..wh..opq"), "overlay.opaque=x only says the directory has whiteouts")
            // overlay's own attributes never reach the layer
            #expect(entries.allSatisfy { !$0.0.extendedAttributes.keys.contains { $0.hasPrefix("user.overlay.") } })
        }
        // The directory comes before what is in it, the opaque marker right after it.
        let data = try #require(names.firstIndex(of: "data"))
        #expect(names.firstIndex(of: "data/sub/file")! > data)
        if xattrs { #expect(names.firstIndex(of: "data/.wh..wh..opq") == data + 1) }

        // Plain mode (export) keeps the tree as it is.
        let plain = try archiveAndRead(upper, mode: .plain).map(\.0)
        #expect(plain.contains { $0.name == "etc/hostname" && $0.kind == .characterDevice(major: 0, minor: 0) })
        #expect(!plain.contains { $0.name.contains(".wh.") })
    }

    @Test("the layer a commit makes unpacks to the same changes")
    func layerRoundTrip() throws {
        let dir = TemporaryDirectory("roundtrip")
        defer { dir.remove() }
        let upper = dir.subpath("upper")
        try Files.makeDirectories(upper + "/app")
        try Files.write(upper + "/app/config", "v2")
        try #require(mknod(upper + "/gone", S_IFCHR, 0) == 0)
        let tarPath = dir.subpath("layer.tar")
        let output = try FileDescriptor.open(tarPath, O_WRONLY | O_CREAT | O_EXCL, mode: 0o600)
        let source = try FileDescriptor.open(upper, O_RDONLY | O_DIRECTORY)
        let tar = try TarStream(output: output)
        var archiver = TreeArchiver(tar: tar, mode: .layer)
        try archiver.archive(directory: source)
        try tar.finish()
        source.close()
        output.close()

        try Files.makeDirectories(dir.subpath("diff"))
        let diff = try FileDescriptor.open(dir.subpath("diff"), O_RDONLY | O_DIRECTORY)
        defer { diff.close() }
        let input = try FileDescriptor.open(tarPath, O_RDONLY)
        defer { input.close() }
        let result = try LayerUnpacker.unpack(input: input, compression: .none, into: diff,
                                              options: LayerUnpackOptions(whiteouts: .userOverlay, preserveOwnership: false,
                                                                          allowDeviceNodes: false))
        #expect(try Files.readString(dir.subpath("diff/app/config")) == "v2")
        let gone = try Files.lstat(dir.subpath("diff/gone"))
        let isWhiteout = (gone.st_mode & S_IFMT) == S_IFCHR && gone.st_rdev == 0 || (gone.st_mode & S_IFMT) == S_IFREG
        #expect(isWhiteout, "the deletion is a whiteout again")
        #expect(result.uncompressedSize == (try Files.stat(tarPath)).st_size)
    }

    @Test("long names, links and big ids go in pax records")
    func paxRecords() throws {
        let dir = TemporaryDirectory("pax")
        defer { dir.remove() }
        let tarPath = dir.subpath("pax.tar")
        let output = try FileDescriptor.open(tarPath, O_WRONLY | O_CREAT | O_EXCL, mode: 0o600)
        let tar = try TarStream(output: output)
        let long = String(repeating: "d", count: 90) + "/" + String(repeating: "f", count: 60)
        var header = TarStream.Header(name: Array(long.utf8), kind: .regular, mode: 0o640, uid: 100_000_000, gid: 7, size: 3,
                                      modificationTime: 1_700_000_000)
        header.extendedAttributes = [("user.note", Array("hi".utf8))]
        try tar.write(header)
        try tar.writeContents(Array("abc".utf8))
        try tar.write(TarStream.Header(name: Array("link".utf8), kind: .symlink, mode: 0o777, link: Array(long.utf8)))
        try tar.finish()
        output.close()
        let input = try FileDescriptor.open(tarPath, O_RDONLY)
        defer { input.close() }
        var reader = try TarReader(descriptor: input)
        let first = try #require(try reader.next())
        #expect(first.name == long)
        #expect(first.uid == 100_000_000 && first.gid == 7 && first.mode == 0o640 && first.modificationTime == 1_700_000_000)
        #expect(first.extendedAttributes["user.note"] == Array("hi".utf8))
        #expect(try reader.readContents(limit: 16) == Array("abc".utf8))
        let second = try #require(try reader.next())
        #expect(second.kind == .symlink(target: long))
        #expect(try reader.next() == nil)
    }

    @Test("cp paths: the parent and the last name", arguments: [
        ("/etc/passwd", false, "/etc", "passwd"),
        ("etc/passwd", false, "etc", "passwd"),
        ("passwd", false, "/", "passwd"),
        ("passwd", true, ".", "passwd"),
        ("/data/dir/", false, "/data", "dir"),
        ("/", false, "/", nil),
        ("/data/.", false, "/data/.", nil),
        ("..", true, "..", nil),
    ] as [(String, Bool, String, String?)])
    func splitPaths(path: String, host: Bool, parent: String, name: String?) {
        let split = CopyLocation.split(path, host: host)
        #expect(split.parent == parent && split.name == name)
    }

    @Test("cp into a root never follows its links out of it")
    func copyStaysInside() throws {
        let dir = TemporaryDirectory("cp")
        defer { dir.remove() }
        let root = dir.subpath("root"), outside = dir.subpath("outside"), source = dir.subpath("src")
        try Files.makeDirectories(root + "/d")
        try Files.makeDirectories(outside)
        try Files.makeDirectories(source + "/tree/sub")
        try Files.write(source + "/tree/sub/file", "payload")
        try Files.write(source + "/file", "payload")
        // Links in the "container" that point at the host's directory, absolute and climbing.
        try #require(symlink(outside, root + "/abs") == 0)
        try #require(symlink("../../../../../../../../" + outside, root + "/d/sub") == 0)
        try #require(symlink(outside + "/victim", root + "/d/victim") == 0)
        let secure = try SecureRoot(path: root)
        defer { secure.close() }
        func copy(_ from: String, _ to: String) throws {
            var copy = TreeCopy(source: CopyLocation(root: nil, path: from, label: "the host"),
                                destination: CopyLocation(root: secure, path: to, label: "container test"))
            try copy.run()
        }
        // Through an absolute link: resolved inside the root, where the target does not exist.
        #expect(throws: EngineError.self) { try copy(source + "/file", "/abs/x") }
        // A directory onto a link of the same name: the link is replaced, not followed.
        try copy(source + "/tree/.", "/d")
        #expect(try Files.readString(root + "/d/sub/file") == "payload")
        #expect((try Files.lstat(root + "/d/sub")).st_mode & S_IFMT == S_IFDIR)
        // A file onto a link: the link is replaced.
        try copy(source + "/file", "/d/victim")
        #expect((try Files.lstat(root + "/d/victim")).st_mode & S_IFMT == S_IFREG)
        #expect(Files.list(outside).isEmpty, "nothing was written outside the root")
    }

    @Test("cp: docker's rules for files and directories")
    func copyRules() throws {
        let dir = TemporaryDirectory("cprules")
        defer { dir.remove() }
        let root = dir.subpath("root"), host = dir.subpath("host")
        try Files.makeDirectories(root + "/etc/app")
        try Files.write(root + "/etc/app/a", "A")
        try Files.write(root + "/etc/file", "F")
        try #require(symlink("file", root + "/etc/link") == 0)
        try Files.makeDirectories(host + "/existing")
        let secure = try SecureRoot(path: root)
        defer { secure.close() }
        func out(_ from: String, _ to: String, follow: Bool = false) throws {
            var copy = TreeCopy(source: CopyLocation(root: secure, path: from, label: "container test"),
                                destination: CopyLocation(root: nil, path: to, label: "the host"), follow: follow)
            try copy.run()
        }
        try out("/etc/app", host + "/new")               // missing DEST: the directory becomes it
        #expect(try Files.readString(host + "/new/a") == "A")
        try out("/etc/app", host + "/existing")          // existing directory: copied into it
        #expect(try Files.readString(host + "/existing/app/a") == "A")
        try out("/etc/app/.", host + "/existing")        // SRC/.: what is in it
        #expect(try Files.readString(host + "/existing/a") == "A")
        try out("/etc/file", host + "/existing")         // a file into a directory keeps its name
        #expect(try Files.readString(host + "/existing/file") == "F")
        try out("/etc/link", host + "/l")                // a link stays a link
        #expect(Files.readLink(host + "/l") == "file")
        try out("/etc/link", host + "/followed", follow: true)
        #expect(try Files.readString(host + "/followed") == "F")
        #expect(throws: EngineError.self) { try out("/etc/app", host + "/followed") }   // a directory onto a file
        #expect(throws: EngineError.self) { try out("/etc/file", host + "/nodir/") }    // DEST/ must exist
        #expect(throws: EngineError.self) { try out("/nope", host + "/x") }
    }

    @Test("durations and numbers as podman prints them")
    func formatting() {
        #expect(Engine.goDuration(nanoseconds: 0) == "0s")
        #expect(Engine.goDuration(nanoseconds: 1_500_000) == "1.5ms")
        #expect(Engine.goDuration(nanoseconds: 4_102_656_838) == "4.102656838s")
        #expect(Engine.goDuration(nanoseconds: 62_000_000_000) == "1m2s")
        #expect(Engine.goDuration(nanoseconds: 3_723_000_000_000) == "1h2m3s")
        #expect(Engine.fixed(0, decimals: 3) == "0.000")
        #expect(Engine.fixed(12.3456, decimals: 2) == "12.35")
        #expect(Engine.ttyName(0) == "?")
        #expect(Engine.ttyName(136 << 8 | 3) == "pts/3")
    }

    @Test("a commit keeps the container's settings, not its HOSTNAME")
    func committedConfig() {
        var settings = ContainerConfig()
        settings.cmd = ["sh", "-c", "echo hi"]
        settings.env = ["PATH=/bin", "FOO=bar", "HOSTNAME=abc123"]
        settings.labels = ["a": "b"]
        var image = ImageConfiguration.Config()
        image.Cmd = ["sh"]
        image.Env = ["PATH=/bin"]
        image.Labels = ["x": "y"]
        let config = Engine.committedConfig(settings, image: image)
        #expect(config.Cmd == ["sh", "-c", "echo hi"])
        #expect(config.Env == ["PATH=/bin", "FOO=bar"])
        #expect(config.Labels == ["a": "b", "x": "y"])
        #expect(config.WorkingDir == nil && config.User == nil)
    }
}

#if canImport(Glibc)
import Glibc
#endif
@testable import BerthImage
import BerthOCI
import BerthOS
import BerthTestSupport
import CBerth
import Dispatch
import Testing

/// A layer with every kind of entry.
let everyKindLayer: [Fixture] = [
    .directory("./", mode: 0o755, mtime: 1_500_000_000),
    .directory("etc", mode: 0o755, mtime: 1_500_000_001),
    .directory("etc/app", mode: 0o750, uid: 1000, gid: 1000, mtime: 1_500_000_002),
    .file("etc/app/config", "hello config", mode: 0o4755, uid: 1000, gid: 1001, mtime: 1_500_000_003,
          xattrs: ["user.note": Array("hello".utf8), "security.selinux": Array("system_u:object_r:etc_t:s0".utf8),
                   "trusted.overlay.opaque": Array("y".utf8), "user.overlay.redirect": Array("/x".utf8)]),
    .hardlink("etc/app/config-link", to: "etc/app/config"),
    .symlink("etc/app/current", to: "config", uid: 1000, gid: 1000, mtime: 1_500_000_004),
    .node("run/fifo", .fifo, mode: 0o600),
    .node("dev/null", .characterDevice(major: 1, minor: 3), mode: 0o666),
    .node("dev/loop9", .blockDevice(major: 7, minor: 9), mode: 0o660),
    .directory("tmp", mode: 0o1777),
    .directory("ro", mode: 0o555, mtime: 1_500_000_005),
    .file("ro/file", "read only", mode: 0o444),
    .file("old", "soon gone"),
    .file(".wh.old"),
    .file("etc/.wh.removed"),
    .file("var/cache/.wh..wh..opq"),
    .file("var/cache/kept", "kept"),
    .file(".wh..wh.plnk/1234.5678", "aufs"),
    .file("usr/lib/libx.so", "elf", mode: 0o755),
    .file("usr/share/big", bytes: (0..<(3 << 20)).map { UInt8(truncatingIfNeeded: $0 &* 2_654_435_761 >> 13) }),
]

@Suite struct LayerUnpackerTests {
    @Test(arguments: [LayerCompression.none, .gzip, .zstd], [true, false])
    func unpacksEveryKindOfEntry(compression: LayerCompression, openat2: Bool) throws {
        let sandbox = LayerSandbox()
        defer { sandbox.remove() }
        let tar = try tarBytes(everyKindLayer)
        let before = sandbox.snapshotOutside()
        // As root: trusted.overlay and devices; in a user namespace, as rootless berth.
        let options = LayerUnpackOptions.testing(openat2: openat2)
        let result = try sandbox.unpack(compress(tar, compression), compression, options: options)

        #expect(result.diffID == sha256(tar))
        #expect(result.uncompressedSize == Int64(tar.count))
        #expect(result.entries == everyKindLayer.count)
        #expect(sandbox.snapshotOutside() == before)

        // Directories: modes and times applied last, parents made on the way.
        let root = try #require(sandbox.lstat(""))
        #expect(root.st_mode & 0o7777 == 0o755 && root.st_mtim.tv_sec == 1_500_000_000)
        let app = try #require(sandbox.lstat("etc/app"))
        #expect(app.st_mode & S_IFMT == S_IFDIR && app.st_mode & 0o7777 == 0o750)
        #expect(app.st_mtim.tv_sec == 1_500_000_002)
        #expect(sandbox.lstat("tmp").map { $0.st_mode & 0o7777 } == 0o1777)
        #expect(sandbox.lstat("ro").map { $0.st_mode & 0o7777 } == 0o555)
        #expect(sandbox.lstat("ro").map { $0.st_mtim.tv_sec } == 1_500_000_005)
        #expect(sandbox.lstat("usr/lib").map { $0.st_mode & 0o7777 } == 0o755)

        // Regular file: contents, setuid kept after chown, owner, mtime, xattrs.
        let config = try #require(sandbox.lstat("etc/app/config"))
        #expect(try Files.readString(sandbox.root + "/etc/app/config") == "hello config")
        #expect(config.st_mode & 0o7777 == 0o4755)
        #expect(config.st_mtim.tv_sec == 1_500_000_003)
        if canChown { #expect(config.st_uid == 1000 && config.st_gid == 1001) }
        #expect(sandbox.xattr("etc/app/config", "user.note") == "hello")
        #expect(sandbox.xattr("etc/app/config", "security.selinux") == nil)
        #expect(sandbox.xattr("etc/app/config", "trusted.overlay.opaque") == nil)
        #expect(sandbox.xattr("etc/app/config", "user.overlay.redirect") == nil)
        #expect(try Files.read(sandbox.root + "/usr/share/big") == everyKindLayer.last!.contents)

        // Hardlink: the same inode. Symlink: its target, owner, mtime.
        let link = try #require(sandbox.lstat("etc/app/config-link"))
        #expect(link.st_ino == config.st_ino && link.st_nlink == 2)
        let current = try #require(sandbox.lstat("etc/app/current"))
        #expect(current.st_mode & S_IFMT == S_IFLNK)
        #expect(Files.readLink(sandbox.root + "/etc/app/current") == "config")
        #expect(current.st_mtim.tv_sec == 1_500_000_004)
        if canChown { #expect(current.st_uid == 1000) }

        // Fifo always; devices as root only, skipped rootless.
        #expect(sandbox.lstat("run/fifo").map { $0.st_mode & S_IFMT } == S_IFIFO)
        #expect((sandbox.lstat("dev/null") != nil) == isHostRoot)
        if isHostRoot {
            #expect(sandbox.lstat("dev/null").map { $0.st_rdev } == UInt(berth_makedev(1, 3)))
            #expect(sandbox.lstat("dev/loop9").map { $0.st_mode & S_IFMT } == S_IFBLK)
        }

        // Whiteouts: char 0/0 (also replacing this layer's own "old"), opaque xattr, aufs skipped.
        for name in ["old", "etc/removed"] {
            let whiteout = try #require(sandbox.lstat(name), "\(name)")
            #expect(whiteout.st_mode & S_IFMT == S_IFCHR && whiteout.st_rdev == 0)
        }
        #expect(sandbox.lstat(".wh.old") == nil)
        #expect(sandbox.xattr("var/cache", isHostRoot ? "trusted.overlay.opaque" : "user.overlay.opaque") == "y")
        #expect(try Files.readString(sandbox.root + "/var/cache/kept") == "kept")
        #expect(sandbox.lstat("var/cache/.wh..wh..opq") == nil)
        #expect(sandbox.lstat(".wh..wh.plnk") == nil)
    }

    @Test func rootlessOptionsUseUserXattrsAndSkipDevices() throws {
        let sandbox = LayerSandbox()
        defer { sandbox.remove() }
        let options = LayerUnpackOptions.testing(openat2: true, rootless: true)
        _ = try sandbox.unpack(try tarBytes(everyKindLayer), .none, options: options)
        #expect(sandbox.xattr("var/cache", "user.overlay.opaque") == "y")
        #expect(sandbox.xattr("var/cache", "trusted.overlay.opaque") == nil)
        #expect(sandbox.lstat("dev/null") == nil)
        #expect(sandbox.lstat("dev/loop9") == nil)
        #expect(sandbox.lstat("run/fifo") != nil)
        #expect(sandbox.lstat("etc/removed").map { $0.st_mode & S_IFMT } == S_IFCHR)
    }

    @Test func replacesAndMergesEarlierEntries() throws {
        let sandbox = LayerSandbox()
        defer { sandbox.remove() }
        let layer: [Fixture] = [
            .directory("a", mode: 0o700),
            .file("a/inner", "x"),
            .directory("a", mode: 0o711),  // merges, last mode wins
            .directory("b"),
            .file("b/inner", "y"),
            .file("b", "b is a file now"),  // replaces the directory and its contents
            .symlink("c", to: "/etc"),
            .directory("c"),  // replaces the symlink, never follows it
            .file("d", "first"),
            .file("d", "second"),
            .hardlink("d", to: "d"),  // a link to itself changes nothing
        ]
        _ = try sandbox.unpack(try tarBytes(layer), .none, options: .testing(openat2: true))
        #expect(sandbox.lstat("a").map { $0.st_mode & 0o7777 } == 0o711)
        #expect(try Files.readString(sandbox.root + "/a/inner") == "x")
        #expect(try Files.readString(sandbox.root + "/b") == "b is a file now")
        #expect(sandbox.lstat("c").map { $0.st_mode & S_IFMT } == S_IFDIR)
        #expect(try Files.readString(sandbox.root + "/d") == "second")
    }

    @Test func readsFromAPipeWhileItIsWritten() throws {
        let sandbox = LayerSandbox()
        defer { sandbox.remove() }
        let tar = try tarBytes(everyKindLayer)
        let stream = gzip(tar) + Array("trailing garbage after the gzip member".utf8)
        let pipe = try makePipe()
        let writer = pipe.write
        let done = DispatchSemaphore(value: 0)
        DispatchQueue.global().async {
            var offset = 0
            while offset < stream.count {
                let end = min(offset + 7919, stream.count)
                try? writer.writeAll(stream[offset..<end])
                offset = end
            }
            writer.close()
            done.signal()
        }
        let root = try FileDescriptor.open(sandbox.root, BERTH_O_PATH | O_DIRECTORY)
        defer { root.close(); pipe.read.close() }
        let options = LayerUnpackOptions.testing(openat2: true)
        let result = try LayerUnpacker.unpack(input: pipe.read, compression: .gzip, into: root, options: options)
        done.wait()
        #expect(result.diffID == sha256(tar))
    }

    @Test func concatenatedGzipMembersAreOneStream() throws {
        let sandbox = LayerSandbox()
        defer { sandbox.remove() }
        let tar = try tarBytes([.file("a", "one"), .file("b", "two")])
        let half = tar.count / 2
        let stream = gzip(Array(tar[..<half])) + gzip(Array(tar[half...]))
        let result = try sandbox.unpack(stream, .gzip, options: .testing(openat2: true))
        #expect(result.diffID == sha256(tar))
        #expect(try Files.readString(sandbox.root + "/b") == "two")
    }

    @Test(.enabled(if: Files.exists("/usr/bin/tar")))
    func sparseFilesKeepTheirHoles() throws {
        let sandbox = LayerSandbox()
        defer { sandbox.remove() }
        let source = TemporaryDirectory("sparse")
        defer { source.remove() }
        let file = try FileDescriptor.open(source.subpath("sparse"), O_WRONLY | O_CREAT)
        try file.writeAll("head")
        _ = lseek(file.rawValue, (10 << 20) - 4, SEEK_SET)
        try file.writeAll("tail")
        file.close()
        let made = try Subprocess.run("/usr/bin/tar", arguments: ["tar", "--sparse", "--format=pax", "-C", source.path,
                                                                  "-cf", source.subpath("layer.tar"), "sparse"], environment: [])
        #expect(made.status == .exited(0))
        let tar = try Files.read(source.subpath("layer.tar"))
        let result = try sandbox.unpack(tar, .none, options: .testing(openat2: true))
        #expect(result.diffID == sha256(tar))
        let st = try #require(sandbox.lstat("sparse"))
        #expect(st.st_size == 10 << 20 && st.st_blocks < 1024)
        let contents = try Files.read(sandbox.root + "/sparse")
        #expect(contents.prefix(4).elementsEqual("head".utf8) && contents.suffix(4).elementsEqual("tail".utf8))
        #expect(contents[4..<(contents.count - 4)].allSatisfy { $0 == 0 })
    }

    @Test func nonUTF8NamesReachTheFileSystemUnchanged() throws {
        let sandbox = LayerSandbox()
        defer { sandbox.remove() }
        // ustar "caf\xe9" (Latin-1), then the end blocks.
        var header = ustarHeader(name: "caf_", typeflag: "0", size: "00000000000")
        header[3] = 0xe9
        let checksum = header.enumerated().reduce(0) { $0 + (148..<156 ~= $1.offset ? 0x20 : Int($1.element)) }
        let octal = Array(String(checksum, radix: 8).utf8)
        for (index, byte) in (Array(repeating: UInt8(ascii: "0"), count: 6 - octal.count) + octal).enumerated() { header[148 + index] = byte }
        let tar = header + [UInt8](repeating: 0, count: 1024)
        _ = try sandbox.unpack(tar, .none, options: .testing(openat2: true))
        let names = try #require(try? listBytes(sandbox.root))
        #expect(names == [[0x63, 0x61, 0x66, 0xe9]])
    }
}

/// Directory entry names as raw bytes.
func listBytes(_ path: String) throws -> [[UInt8]] {
    guard let directory = opendir(path) else { throw Errno.current }
    defer { closedir(directory) }
    var names: [[UInt8]] = []
    while let entry = readdir(directory) {
        let name = withUnsafeBytes(of: entry.pointee.d_name) { Array($0.prefix(while: { $0 != 0 })) }
        if name != [0x2e] && name != [0x2e, 0x2e] { names.append(name) }
    }
    return names
}

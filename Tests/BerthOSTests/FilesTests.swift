#if canImport(Glibc)
import Glibc
#endif
import Testing
import BerthOS

@Suite("Files")
struct FilesTests {
    @Test("absolute() normalises absolute paths lexically", arguments: [
        ("/", "/"), ("/a/b", "/a/b"), ("/a/b/", "/a/b"), ("//a//b//", "/a/b"), ("/a/./b/.", "/a/b"),
        ("/a/b/../c", "/a/c"), ("/a/b/../../..", "/"), ("/../..", "/"), ("/a/b/../../../c", "/c"),
        ("/run/berth/../berth/runtime", "/run/berth/runtime"), ("/a/..b/c", "/a/..b/c"), ("/a/b.../.", "/a/b..."),
    ])
    func absolutePaths(input: String, expected: String) {
        #expect(Files.absolute(input) == expected)
    }

    @Test("absolute() resolves relative paths against the current directory", arguments: [
        ("", ""), (".", ""), ("a", "/a"), ("a/b/..", "/a"), ("./a/./b", "/a/b"),
    ])
    func relativePaths(input: String, suffix: String) throws {
        var buffer = [CChar](repeating: 0, count: 4096)
        try #require(getcwd(&buffer, buffer.count) != nil)
        let cwd = buffer.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
        #expect(Files.currentDirectory == cwd)
        let expected = cwd == "/" ? (suffix.isEmpty ? "/" : suffix) : cwd + suffix
        #expect(Files.absolute(input) == expected)
    }

    @Test("absolute(\"..\") is the parent of the current directory")
    func parentOfCurrent() {
        let cwd = Files.currentDirectory
        let parent = cwd.split(separator: "/").dropLast().joined(separator: "/")
        #expect(Files.absolute("..") == "/" + parent)
    }

    @Test("writeAtomically replaces the file and leaves no temp file behind")
    func writeAtomically() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let path = dir.subpath("state.json")
        try Files.writeAtomically(path, Array("first".utf8))
        #expect(try Files.readString(path) == "first")
        let inode = try Files.stat(path).st_ino
        try Files.writeAtomically(path, Array("second, longer".utf8))
        #expect(try Files.readString(path) == "second, longer")
        #expect(try Files.stat(path).st_ino != inode, "renamed over, not rewritten in place")
        try Files.writeAtomically(path, [])
        #expect(try Files.read(path).isEmpty)
        #expect(Files.list(dir.path) == ["state.json"])
    }

    @Test("writeAtomically creates the file with the given mode")
    func writeAtomicallyMode() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let path = dir.subpath("secret")
        let old = umask(0o022)
        defer { umask(old) }
        try Files.writeAtomically(path, Array("x".utf8), mode: 0o600)
        #expect(try Files.stat(path).st_mode & 0o777 == 0o600)
    }

    @Test("a failed writeAtomically leaves the target and the directory as they were")
    func writeAtomicallyFailure() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        // A non-empty directory cannot be renamed over: the rename fails after the temp file was written.
        let target = dir.subpath("target")
        makeDirectory(target)
        writeFile(target + "/keep", "kept")
        #expect(throws: Errno.self) { try Files.writeAtomically(target, Array("data".utf8)) }
        #expect(Files.list(dir.path) == ["target"])
        #expect(try Files.readString(target + "/keep") == "kept")
        // A missing parent directory fails before anything is written.
        #expect(throws: Errno.noSuchFile) { try Files.writeAtomically(dir.subpath("missing/file"), [1]) }
        #expect(Files.list(dir.path) == ["target"])
    }

    @Test("read and write round-trip bytes, including large files")
    func readWrite() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let path = dir.subpath("big")
        let bytes = (0..<200_000).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        try Files.writeAtomically(path, bytes)
        #expect(try Files.read(path) == bytes)
        try Files.write(path, "short")
        #expect(try Files.readString(path) == "short", "write truncates by default")
        #expect(throws: Errno.noSuchFile) { try Files.read(dir.subpath("nope")) }
    }

    @Test("makeDirectories is mkdir -p, also for relative paths and existing trees")
    func makeDirectories() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        try Files.makeDirectories(dir.subpath("a/b/c"))
        #expect(Files.isDirectory(dir.subpath("a/b/c")))
        try Files.makeDirectories(dir.subpath("a/b/c"))
        try Files.makeDirectories(dir.subpath("a//b/./d/"))
        #expect(Files.isDirectory(dir.subpath("a/b/d")))
        writeFile(dir.subpath("file"), "x")
        #expect(throws: Errno.notDirectory) { try Files.makeDirectories(dir.subpath("file/sub")) }
    }

    @Test("removeTree deletes a tree but never follows symlinks out of it")
    func removeTreeDoesNotFollowSymlinks() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let keep = dir.subpath("keep")
        makeDirectory(keep)
        writeFile(keep + "/precious", "data")
        let doomed = dir.subpath("doomed")
        try Files.makeDirectories(doomed + "/x/y")
        writeFile(doomed + "/x/y/file", "bye")
        makeSymlink(doomed + "/link-to-dir", pointingTo: keep)
        makeSymlink(doomed + "/x/link-to-file", pointingTo: keep + "/precious")
        makeSymlink(doomed + "/dangling", pointingTo: "/nonexistent")

        Files.removeTree(doomed)
        #expect(!Files.exists(doomed) && (try? Files.lstat(doomed)) == nil)
        #expect(try Files.readString(keep + "/precious") == "data")
        #expect(Files.list(dir.path) == ["keep"])
    }

    @Test("removeTree on a symlink removes the link only")
    func removeTreeOnSymlink() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        makeDirectory(dir.subpath("target"))
        writeFile(dir.subpath("target/file"), "x")
        makeSymlink(dir.subpath("link"), pointingTo: dir.subpath("target"))
        Files.removeTree(dir.subpath("link"))
        Files.removeTree(dir.subpath("missing")) // no-op, no crash
        #expect(Files.list(dir.path) == ["target"])
        #expect(Files.exists(dir.subpath("target/file")))
    }

    @Test("list, readLink, realPath, isDirectory, exists")
    func queries() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        makeDirectory(dir.subpath("d"))
        writeFile(dir.subpath("f"), "")
        makeSymlink(dir.subpath("l"), pointingTo: "d")
        makeSymlink(dir.subpath("dangling"), pointingTo: "nowhere")
        #expect(Set(Files.list(dir.path)) == ["d", "f", "l", "dangling"])
        #expect(Files.list(dir.subpath("missing")).isEmpty)
        #expect(Files.readLink(dir.subpath("l")) == "d")
        #expect(Files.readLink(dir.subpath("f")) == nil)
        let real = try Files.realPath(dir.path)
        #expect(try Files.realPath(dir.subpath("l")) == real + "/d")
        #expect(throws: Errno.noSuchFile) { try Files.realPath(dir.subpath("dangling")) }
        #expect(Files.isDirectory(dir.subpath("l")))
        #expect(!Files.isDirectory(dir.subpath("f")))
        #expect(!Files.exists(dir.subpath("dangling")))
        #expect((try Files.lstat(dir.subpath("dangling")).st_mode & S_IFMT) == S_IFLNK)
    }
}

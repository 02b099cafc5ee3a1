#if canImport(Glibc)
import Glibc
#endif
import CBerth
import Testing
@testable import BerthOS

/// A root directory full of hostile symlinks, next to a sentinel directory
/// that nothing resolved inside the root may ever touch.
///
///     T/outside/            sentinel: secret, inside-marker (host copies)
///     T/root/               the SecureRoot
///       etc/passwd          "inside-passwd"
///       a/b/c/file          "inside-file"
///       outside/inside-marker          where "../outside" must land
///       <T>/outside/inside-marker      where absolute "<T>/outside" must land
///       abs -> /etc, absfile -> /etc/passwd, up -> ../../..,
///       a/b/c/up4 -> ../../../../etc, chain1 -> chain2 -> a/chain3 -> ../chain4 -> /etc/passwd,
///       loop1 <-> loop2, self -> self, escape -> <T>/outside, escaperel -> ../outside,
///       deeprel -> a/b/c/../../../../../../outside, linkdir -> a/b,
///       danglingrel -> ../outside/created-rel, danglingabs -> <T>/outside/created-abs
struct HostileRoot {
    let base: TemporaryDirectory
    let root: String
    let outside: String
    /// The sentinel's absolute path as seen from inside the root ("<T>/outside" without the leading slash).
    let mirror: String

    init() {
        base = TemporaryDirectory("secureroot")
        root = base.subpath("root")
        outside = base.subpath("outside")
        mirror = String(outside.dropFirst()) // "tmp/berth-test-secureroot-XXXXXX/outside"

        makeDirectory(outside)
        writeFile(outside + "/secret", "host-secret")
        writeFile(outside + "/inside-marker", "host-marker")

        makeDirectory(root)
        for dir in ["etc", "a", "a/b", "a/b/c", "outside"] { makeDirectory(root + "/" + dir) }
        var mirrorPath = root
        for component in mirror.split(separator: "/") {
            mirrorPath += "/" + component
            makeDirectory(mirrorPath)
        }
        writeFile(root + "/etc/passwd", "inside-passwd")
        writeFile(root + "/a/b/c/file", "inside-file")
        writeFile(root + "/outside/inside-marker", "inside-marker")
        writeFile(mirrorPath + "/inside-marker", "mirror-marker")

        let links: [(String, String)] = [
            ("abs", "/etc"), ("absfile", "/etc/passwd"), ("up", "../../.."),
            ("a/b/c/up4", "../../../../etc"),
            ("chain1", "chain2"), ("chain2", "a/chain3"), ("a/chain3", "../chain4"), ("chain4", "/etc/passwd"),
            ("loop1", "loop2"), ("loop2", "loop1"), ("self", "self"),
            ("escape", outside), ("escaperel", "../outside"),
            ("deeprel", "a/b/c/../../../../../../outside"), ("linkdir", "a/b"),
            ("danglingrel", "../outside/created-rel"), ("danglingabs", outside + "/created-abs"),
        ]
        for (name, target) in links { makeSymlink(root + "/" + name, pointingTo: target) }
    }

    func remove() { base.remove() }

    func inside(_ relative: String) -> String { relative.isEmpty ? root : root + "/" + relative }

    /// Everything observable about the sentinel: names, types, inodes, sizes, mtimes.
    func snapshotOutside() -> [String] {
        var lines: [String] = []
        func visit(_ path: String, _ name: String) {
            var st = stat()
            guard lstat(path, &st) == 0 else { return }
            lines.append("\(name) mode=\(st.st_mode) ino=\(st.st_ino) size=\(st.st_size) mtime=\(st.st_mtim.tv_sec).\(st.st_mtim.tv_nsec)")
            if (st.st_mode & S_IFMT) == S_IFDIR {
                for child in Files.list(path).sorted() { visit(path + "/" + child, name + "/" + child) }
            }
        }
        visit(outside, "outside")
        lines.append("base: " + Files.list(base.path).sorted().joined(separator: ","))
        return lines
    }
}

/// The two ways SecureRoot resolves a path: openat2(RESOLVE_IN_ROOT), and
/// the component-by-component walker used on kernels without it.
enum Resolver: String, CaseIterable, CustomTestStringConvertible {
    case openat2, walker

    var testDescription: String { rawValue }

    func open(_ secureRoot: SecureRoot, _ path: String, _ flags: Int32, mode: mode_t = 0o644) throws(Errno) -> FileDescriptor {
        switch self {
        case .openat2: try secureRoot.open(path, flags, mode: mode)
        case .walker: try secureRoot.walk(SecureRoot.relative(path), flags, mode: mode)
        }
    }
}

enum Resolution: Sendable, CustomStringConvertible {
    /// Opens this path relative to the root ("" is the root itself).
    case inside(String)
    /// Fails with exactly this error.
    case error(Errno)
    /// Fails somehow (the exact errno is not the point).
    case fails

    /// `mirror` placeholder for the sentinel's path as seen inside the root.
    static let mirrorToken = "<mirror>"

    var description: String {
        switch self {
        case .inside(let path): "inside(\(path))"
        case .error(let error): "error(\(error.rawValue))"
        case .fails: "fails"
        }
    }
}

struct OpenCase: Sendable, CustomTestStringConvertible {
    let path: String
    let expected: Resolution
    init(_ path: String, _ expected: Resolution) {
        self.path = path
        self.expected = expected
    }
    var testDescription: String { "\"\(path)\" → \(expected)" }
}

/// Checks an outcome against the expectation: an fd must be the very inode
/// inside the root, never a same-named file outside.
func expectResolution(_ result: Result<FileDescriptor, Errno>, _ expected: Resolution, in fixture: HostileRoot,
           sourceLocation: SourceLocation = #_sourceLocation) {
    switch (result, expected) {
    case (.success(let fd), .inside(let relative)):
        defer { fd.close() }
        let relative = relative.replacingMirror(with: fixture.mirror)
        let want = identity(ofPath: fixture.inside(relative))
        let got = identity(of: fd)
        #expect(want != nil, "fixture lacks \(relative)", sourceLocation: sourceLocation)
        #expect(got?.dev == want?.dev && got?.ino == want?.ino,
                "opened \(Files.readLink(fd.procPath) ?? "?"), expected \(fixture.inside(relative))",
                sourceLocation: sourceLocation)
    case (.success(let fd), _):
        Issue.record("expected \(expected), but opened \(Files.readLink(fd.procPath) ?? "?")", sourceLocation: sourceLocation)
        fd.close()
    case (.failure(let error), .error(let want)):
        #expect(error == want, "got \(error) (\(error.rawValue)), expected \(want) (\(want.rawValue))",
                sourceLocation: sourceLocation)
    case (.failure, .fails):
        break
    case (.failure(let error), .inside(let relative)):
        Issue.record("expected to open \(relative), got \(error) (\(error.rawValue))", sourceLocation: sourceLocation)
    }
}

extension String {
    func replacingMirror(with mirror: String) -> String {
        guard hasPrefix(Resolution.mirrorToken) else { return self }
        return mirror + dropFirst(Resolution.mirrorToken.count)
    }
}

let oPath = Int32(BERTH_O_PATH)

@Suite("SecureRoot resolves every path inside the root")
struct SecureRootTests {
    static let openCases: [OpenCase] = [
        OpenCase("etc/passwd", .inside("etc/passwd")),
        OpenCase("/etc/passwd", .inside("etc/passwd")),
        OpenCase("./etc/./passwd", .inside("etc/passwd")),
        OpenCase("abs/passwd", .inside("etc/passwd")),                       // abs -> /etc
        OpenCase("absfile", .inside("etc/passwd")),                          // -> /etc/passwd
        OpenCase("abs/../etc/passwd", .inside("etc/passwd")),
        OpenCase("up/etc/passwd", .inside("etc/passwd")),                    // up -> ../../..
        OpenCase("up/up/up/up/etc/passwd", .inside("etc/passwd")),
        OpenCase("a/b/c/up4/passwd", .inside("etc/passwd")),                 // -> ../../../../etc
        OpenCase("chain1", .inside("etc/passwd")),                           // 4-link chain ending absolute
        OpenCase("loop1", .error(.tooManyLinks)),
        OpenCase("loop1/x", .error(.tooManyLinks)),
        OpenCase("self", .error(.tooManyLinks)),
        OpenCase("escape/inside-marker", .inside("<mirror>/inside-marker")), // -> <T>/outside
        OpenCase("escape/secret", .error(.noSuchFile)),
        OpenCase("escaperel/inside-marker", .inside("outside/inside-marker")), // -> ../outside
        OpenCase("escaperel/secret", .error(.noSuchFile)),
        OpenCase("deeprel/inside-marker", .inside("outside/inside-marker")),
        OpenCase("deeprel/secret", .error(.noSuchFile)),
        OpenCase("../outside/inside-marker", .inside("outside/inside-marker")),
        OpenCase("../outside/secret", .error(.noSuchFile)),
        OpenCase("../../../../../../../../../../etc/passwd", .inside("etc/passwd")),
        OpenCase("a/../../../etc/passwd", .inside("etc/passwd")),
        OpenCase("linkdir/c/file", .inside("a/b/c/file")),                   // linkdir -> a/b
        OpenCase("linkdir/../b/c/file", .inside("a/b/c/file")),             // physical, not lexical, ".."
        OpenCase("linkdir/c/../../../../../../outside/inside-marker", .inside("outside/inside-marker")),
        OpenCase("", .inside("")),
        OpenCase("/", .inside("")),
        OpenCase(".", .inside("")),
        OpenCase("..", .inside("")),
        OpenCase("up", .inside("")),
        OpenCase("etc/passwd/x", .error(.notDirectory)),
        OpenCase("a/b/c/file/..", .error(.notDirectory)),
        OpenCase("missing", .error(.noSuchFile)),
        OpenCase("danglingrel", .error(.noSuchFile)),
        OpenCase("danglingabs", .error(.noSuchFile)),
    ]

    @Test("open resolves hostile paths to the file inside the root", arguments: Resolver.allCases, openCases)
    func openStaysInside(resolver: Resolver, testCase: OpenCase) throws {
        let fixture = HostileRoot()
        defer { fixture.remove() }
        let before = fixture.snapshotOutside()
        let secureRoot = try SecureRoot(path: fixture.root)
        defer { secureRoot.close() }

        let result = Result { () throws(Errno) in try resolver.open(secureRoot, testCase.path, oPath) }
        expectResolution(result, testCase.expected, in: fixture)
        #expect(fixture.snapshotOutside() == before)
    }

    @Test("reading through an absolute symlink to /etc reads the root's file, not the host's",
          arguments: Resolver.allCases, ["abs/passwd", "absfile", "chain1", "/up/abs/passwd"])
    func readsInsideContents(resolver: Resolver, path: String) throws {
        let fixture = HostileRoot()
        defer { fixture.remove() }
        let secureRoot = try SecureRoot(path: fixture.root)
        defer { secureRoot.close() }
        let fd = try resolver.open(secureRoot, path, O_RDONLY)
        let contents = try fd.closeAfter { (fd) throws(Errno) in try fd.readAll() }
        #expect(String(decoding: contents, as: UTF8.self) == "inside-passwd")
    }

    static let createCases: [OpenCase] = [
        OpenCase("danglingrel", .inside("outside/created-rel")),            // -> ../outside/created-rel
        OpenCase("danglingabs", .inside("<mirror>/created-abs")),           // -> <T>/outside/created-abs
        OpenCase("escape/newfile", .inside("<mirror>/newfile")),
        OpenCase("escaperel/newfile", .inside("outside/newfile")),
        OpenCase("../outside/newfile", .inside("outside/newfile")),
        OpenCase("up/up/outside/newfile", .inside("outside/newfile")),
        OpenCase("linkdir/c/newfile", .inside("a/b/c/newfile")),
        OpenCase("loop1", .error(.tooManyLinks)),
        OpenCase("missingdir/newfile", .error(.noSuchFile)),
    ]

    @Test("open with O_CREAT creates the file inside the root", arguments: Resolver.allCases, createCases)
    func createStaysInside(resolver: Resolver, testCase: OpenCase) throws {
        let fixture = HostileRoot()
        defer { fixture.remove() }
        let before = fixture.snapshotOutside()
        let secureRoot = try SecureRoot(path: fixture.root)
        defer { secureRoot.close() }

        let result = Result { () throws(Errno) in
            try resolver.open(secureRoot, testCase.path, O_WRONLY | O_CREAT, mode: 0o600)
        }
        expectResolution(result, testCase.expected, in: fixture)
        #expect(fixture.snapshotOutside() == before)
    }

    static let directoryCases: [OpenCase] = [
        OpenCase("new/a/b", .inside("new/a/b")),
        OpenCase("/new", .inside("new")),
        OpenCase("etc", .inside("etc")),
        OpenCase("", .inside("")),
        OpenCase("escape/made", .inside("<mirror>/made")),
        OpenCase("escape/made/deeper", .inside("<mirror>/made/deeper")),
        OpenCase("escaperel/made", .inside("outside/made")),
        OpenCase("up/up/outside/made", .inside("outside/made")),
        OpenCase("../../outside/made", .inside("outside/made")),
        OpenCase("a/b/c/up4/made", .inside("etc/made")),
        OpenCase("linkdir/../b/made", .inside("a/b/made")),
        OpenCase("deeprel/made", .inside("outside/made")),
        OpenCase((0..<40).map { "d\($0)" }.joined(separator: "/"), .inside((0..<40).map { "d\($0)" }.joined(separator: "/"))),
        OpenCase("deep/" + Array(repeating: "..", count: 40).joined(separator: "/") + "/outside/made",
                 .inside("outside/made")),
        OpenCase("loop1/x", .error(.tooManyLinks)),
        OpenCase("etc/passwd/x", .error(.notDirectory)),
        OpenCase("etc/passwd", .fails),
        OpenCase("danglingabs/x", .fails),
        OpenCase("danglingrel/x", .fails),
    ]

    @Test("makeDirectories creates directories only inside the root", arguments: directoryCases)
    func makeDirectoriesStaysInside(testCase: OpenCase) throws {
        let fixture = HostileRoot()
        defer { fixture.remove() }
        let before = fixture.snapshotOutside()
        let secureRoot = try SecureRoot(path: fixture.root)
        defer { secureRoot.close() }

        let result = Result { () throws(Errno) in try secureRoot.makeDirectories(testCase.path) }
        if case .success(let fd) = result, case .inside(let relative) = testCase.expected {
            #expect(Files.isDirectory(fixture.inside(relative.replacingMirror(with: fixture.mirror))))
            #expect((try fd.stat().st_mode & S_IFMT) == S_IFDIR)
        }
        expectResolution(result, testCase.expected, in: fixture)
        #expect(fixture.snapshotOutside() == before)
    }

    static let fileCases: [OpenCase] = [
        OpenCase("newfile", .inside("newfile")),
        OpenCase("x/y/z", .inside("x/y/z")),
        OpenCase("escape/f", .inside("<mirror>/f")),
        OpenCase("escape/newdir/f", .inside("<mirror>/newdir/f")),
        OpenCase("escaperel/f", .inside("outside/f")),
        OpenCase("../../outside/f", .inside("outside/f")),
        OpenCase("linkdir/c/f", .inside("a/b/c/f")),
        OpenCase("a/b/c/up4/f", .inside("etc/f")),
        OpenCase("etc/passwd", .inside("etc/passwd")),
        OpenCase("absfile", .inside("etc/passwd")),
        OpenCase("loop1/f", .error(.tooManyLinks)),
        OpenCase("etc/passwd/f", .error(.notDirectory)),
        OpenCase("danglingabs", .fails),
    ]

    @Test("makeFile creates files (and parents) only inside the root", arguments: fileCases)
    func makeFileStaysInside(testCase: OpenCase) throws {
        let fixture = HostileRoot()
        defer { fixture.remove() }
        let before = fixture.snapshotOutside()
        let secureRoot = try SecureRoot(path: fixture.root)
        defer { secureRoot.close() }

        let result = Result { () throws(Errno) in try secureRoot.makeFile(testCase.path) }
        if case .success(let fd) = result {
            #expect((try fd.stat().st_mode & S_IFMT) == S_IFREG)
        }
        expectResolution(result, testCase.expected, in: fixture)
        #expect(fixture.snapshotOutside() == before)
        // An existing file is reused, never truncated.
        #expect(try Files.readString(fixture.inside("etc/passwd")) == "inside-passwd")
    }

    @Test("makeDirectories and makeFile through an absolute /etc symlink never touch the host's /etc")
    func creationThroughEtcSymlinkStaysInside() throws {
        let fixture = HostileRoot()
        defer { fixture.remove() }
        let secureRoot = try SecureRoot(path: fixture.root)
        defer { secureRoot.close() }
        let name = "berth-secureroot-test-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        defer {
            // Only ever present if SecureRoot escaped; clean up after the failure.
            _ = rmdir("/etc/\(name)-dir")
            _ = unlink("/etc/\(name)-file")
        }

        let dir = try secureRoot.makeDirectories("abs/\(name)-dir")
        dir.close()
        let file = try secureRoot.makeFile("abs/\(name)-file")
        file.close()

        #expect(Files.isDirectory(fixture.inside("etc/\(name)-dir")))
        #expect(Files.exists(fixture.inside("etc/\(name)-file")))
        #expect(!Files.exists("/etc/\(name)-dir"))
        #expect(!Files.exists("/etc/\(name)-file"))
    }

    @Test("a symlink swapped in for a directory after makeDirectories does not redirect later opens")
    func reopenAfterSwapStaysInside() throws {
        let fixture = HostileRoot()
        defer { fixture.remove() }
        let before = fixture.snapshotOutside()
        let secureRoot = try SecureRoot(path: fixture.root)
        defer { secureRoot.close() }

        try secureRoot.makeDirectories("swap").close()
        #expect(rmdir(fixture.inside("swap")) == 0)
        makeSymlink(fixture.inside("swap"), pointingTo: fixture.outside)
        let fd = try secureRoot.makeFile("swap/planted")
        fd.close()
        #expect(Files.exists(fixture.inside("\(fixture.mirror)/planted")))
        #expect(fixture.snapshotOutside() == before)
    }

    @Test("the walker gives up on a chain of more than 40 symlinks")
    func walkerLinkLimit() throws {
        let fixture = HostileRoot()
        defer { fixture.remove() }
        // l0 -> l1 -> ... -> l41 -> etc/passwd: 42 links.
        for i in 0...41 {
            makeSymlink(fixture.inside("l\(i)"), pointingTo: i == 41 ? "etc/passwd" : "l\(i + 1)")
        }
        // l30 -> ... -> l41 -> etc/passwd: 12 links, well inside the limit.
        let secureRoot = try SecureRoot(path: fixture.root)
        defer { secureRoot.close() }
        #expect(throws: Errno.tooManyLinks) { try secureRoot.walk("l0", O_RDONLY, mode: 0) }
        let fd = try secureRoot.walk("l30", O_RDONLY, mode: 0)
        defer { fd.close() }
        #expect(identity(of: fd)?.ino == identity(ofPath: fixture.inside("etc/passwd"))?.ino)
    }

    @Test("SecureRoot(path:) refuses a missing root or a file")
    func initRejectsNonDirectories() {
        let fixture = HostileRoot()
        defer { fixture.remove() }
        #expect(throws: Errno.noSuchFile) { try SecureRoot(path: fixture.inside("missing")) }
        #expect(throws: Errno.notDirectory) { try SecureRoot(path: fixture.inside("etc/passwd")) }
    }

    @Test("relative() strips leading slashes and '.' but keeps '..'", arguments: [
        ("/a/./b/", "a/b"), ("a//b", "a/b"), (".", ""), ("/", ""), ("", ""), ("./..", ".."),
        ("a/../b", "a/../b"), ("///etc/passwd", "etc/passwd"),
    ])
    func relative(input: String, expected: String) {
        #expect(SecureRoot.relative(input) == expected)
    }
}

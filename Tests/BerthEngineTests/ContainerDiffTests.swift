#if canImport(Glibc)
import Glibc
#endif
#if canImport(FoundationEssentials)
import FoundationEssentials
#endif
import Testing
import BerthEngine
import BerthOS
import BerthTestSupport
import CBerth

private func setAttribute(_ path: String, _ name: String, _ value: String) -> Bool {
    guard let fd = try? FileDescriptor.open(path, O_RDONLY | O_NONBLOCK) else { return false }
    defer { fd.close() }
    return berth_fsetxattr(fd.rawValue, name, value, value.utf8.count) == 0
}

/// overlay's xattr namespace for this process: trusted.* as root, user.* (userxattr) otherwise.
private let overlayPrefix = geteuid() == 0 ? "trusted.overlay." : "user.overlay."

private func lines(_ changes: [FileChange]) -> [String] { changes.map(\.description) }

@Suite("Container diff")
struct ContainerDiffTests {
    @Test("an upper directory over image layers: A added, C changed (and the directories holding a change), in path order")
    func addedAndChanged() throws {
        let dir = TemporaryDirectory("diff")
        defer { dir.remove() }
        let bottom = dir.subpath("bottom"), top = dir.subpath("top"), upper = dir.subpath("upper")
        try Files.makeDirectories(bottom + "/etc")
        try Files.makeDirectories(bottom + "/home/user")
        try Files.makeDirectories(bottom + "/opt/old")
        try Files.write(bottom + "/etc/passwd", "root:x:0:0::/root:/bin/sh\n")
        try Files.write(bottom + "/home/user/.profile", "PS1='$ '\n")
        try Files.write(bottom + "/opt/old/file", "old\n")
        try Files.makeDirectories(top + "/etc")
        try Files.write(top + "/etc/extra", "from the top layer\n")
        // The top layer made /opt a file: the bottom layer's /opt/old is not in the image.
        try Files.write(top + "/opt", "a file now\n")

        try Files.makeDirectories(upper + "/etc")
        try Files.makeDirectories(upper + "/a/b")
        try Files.makeDirectories(upper + "/home/user")
        try Files.makeDirectories(upper + "/opt")
        try Files.write(upper + "/newfile", "x\n")
        try Files.write(upper + "/etc/passwd", "root:x:0:0::/root:/bin/sh\nuser:x:1000:1000::/home/user:/bin/sh\n")
        try Files.write(upper + "/etc/extra", "changed\n")
        try Files.write(upper + "/a/b/file", "z\n")
        try Files.write(upper + "/home/user/.profile", "PS1='# '\n")
        try Files.write(upper + "/opt/new", "n\n")
        // Links are entries of their own, never followed.
        try #require(symlink("/etc/passwd", upper + "/a/link") == 0)

        let changes = try ContainerDiff.changes(upper: upper, layers: [top, bottom])
        #expect(lines(changes) == [
            "A /a", "A /a/b", "A /a/b/file", "A /a/link",
            "C /etc", "C /etc/extra", "C /etc/passwd",
            "C /home", "C /home/user", "C /home/user/.profile",
            "A /newfile",
            "C /opt", "A /opt/new",
        ])
        // Nothing changed: nothing to show.
        let empty = dir.subpath("empty")
        try Files.makeDirectories(empty)
        #expect(try ContainerDiff.changes(upper: empty, layers: [top, bottom]).isEmpty)
    }

    @Test("whiteouts are D for what the image has; an opaque directory is C and what the image had in it is D")
    func deletedAndOpaque() throws {
        let dir = TemporaryDirectory("diff")
        defer { dir.remove() }
        let bottom = dir.subpath("bottom"), top = dir.subpath("top"), upper = dir.subpath("upper")
        try Files.makeDirectories(bottom + "/etc")
        try Files.makeDirectories(bottom + "/usr/bin")
        try Files.makeDirectories(bottom + "/usr/lib")
        try Files.makeDirectories(bottom + "/var/log")
        try Files.write(bottom + "/etc/group", "root:x:0:\n")
        try Files.write(bottom + "/etc/passwd", "root:x:0:0::/root:/bin/sh\n")
        try Files.write(bottom + "/usr/bin/tool", "#!/bin/sh\n")
        try Files.write(bottom + "/usr/lib/libx.so", "elf\n")
        try Files.write(bottom + "/var/log/gone", "old log\n")
        try Files.makeDirectories(top + "/var/log")
        try Files.makeDirectories(upper + "/etc")
        try Files.makeDirectories(upper + "/usr/bin")
        try Files.makeDirectories(upper + "/var/log")
        try Files.write(upper + "/usr/bin/x", "new\n")

        // Whiteouts: overlay's char device 0/0 (root, or unprivileged since Linux 5.8).
        let whiteouts = mknod(upper + "/etc/group", S_IFCHR, 0) == 0
            && mknod(upper + "/etc/ghost", S_IFCHR, 0) == 0        // the image has no /etc/ghost: nothing to say
            && mknod(top + "/var/log/gone", S_IFCHR, 0) == 0       // the top layer deleted it
            && mknod(upper + "/var/log/gone", S_IFCHR, 0) == 0
        if !whiteouts { print("ContainerDiffTests: whiteouts not checked: mknod of a 0/0 char device failed (\(Errno.current))") }
        // A directory removed and made again: /usr is opaque.
        let opaque = setAttribute(upper + "/usr", overlayPrefix + "opaque", "y")
        if !opaque { print("ContainerDiffTests: opaque directories not checked: cannot set \(overlayPrefix)opaque (\(Errno.current))") }

        let changes = lines(try ContainerDiff.changes(upper: upper, layers: [top, bottom]))
        var expected = ["C /etc"]
        if whiteouts { expected.append("D /etc/group") }
        expected += ["C /usr", "C /usr/bin"]
        if opaque { expected.append("D /usr/bin/tool") }
        expected.append("A /usr/bin/x")
        if opaque { expected.append("D /usr/lib") }
        expected += ["C /var", "C /var/log"]
        #expect(changes == expected)

        // The kernel's other whiteout: an empty file with overlay.whiteout.
        try Files.write(upper + "/etc/passwd", "")
        if setAttribute(upper + "/etc/passwd", overlayPrefix + "whiteout", "") {
            #expect(try lines(ContainerDiff.changes(upper: upper, layers: [top, bottom])).contains("D /etc/passwd"))
        } else {
            print("ContainerDiffTests: xattr whiteouts not checked: cannot set \(overlayPrefix)whiteout (\(Errno.current))")
        }
    }

    @Test("the copy driver's whole root: A, C by what a copy keeps, D for what is gone, directories above a change C")
    func wholeRoot() throws {
        let dir = TemporaryDirectory("diff")
        defer { dir.remove() }
        let layer = dir.subpath("layer"), root = dir.subpath("root")
        try Files.makeDirectories(layer + "/etc")
        try Files.makeDirectories(layer + "/usr/share/doc")
        try Files.makeDirectories(layer + "/srv")
        try Files.write(layer + "/etc/passwd", "root:x:0:0::/root:/bin/sh\n")
        try Files.write(layer + "/etc/group", "root:x:0:\n")
        try Files.write(layer + "/etc/motd", "hello\n")
        try Files.write(layer + "/usr/share/doc/readme", "read me\n")
        try Files.write(layer + "/srv/data", "data\n")
        try #require(symlink("passwd", layer + "/etc/link") == 0)
        try Files.makeDirectories(root)
        var copy = TreeCopy(source: CopyLocation(root: nil, path: layer + "/.", label: "the layer"),
                            destination: CopyLocation(root: nil, path: root, label: "the root"))
        try copy.run()
        #expect(try ContainerDiff.changes(upper: root, layers: [layer], wholeRoot: true).isEmpty, "a fresh copy has no changes")

        let file = try FileDescriptor.open(root + "/etc/passwd", O_WRONLY | O_APPEND)
        try file.writeAll("user:x:1000:1000::/home/user:/bin/sh\n")
        file.close()
        #expect(unlink(root + "/etc/group") == 0)
        #expect(chmod(root + "/usr/share/doc/readme", 0o600) == 0)
        try Files.write(root + "/newfile", "x\n")
        Files.removeTree(root + "/srv")
        let changes = lines(try ContainerDiff.changes(upper: root, layers: [layer], wholeRoot: true))
        #expect(changes == [
            "C /etc", "D /etc/group", "C /etc/passwd",
            "A /newfile",
            "D /srv",
            "C /usr", "C /usr/share", "C /usr/share/doc", "C /usr/share/doc/readme",
        ])
    }
}

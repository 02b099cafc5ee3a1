#if canImport(Glibc)
import Glibc
#endif
@testable import BerthImage
import BerthOCI
import BerthOS
import Testing

/// A layer built to escape its root. "$SENTINEL" stands for the absolute
/// path of a directory next to the root that must never change.
struct HostileLayer: Sendable, CustomTestStringConvertible {
    enum Outcome: Sendable {
        /// Refused, with this in the message.
        case fails(String)
        /// Unpacked, with these paths created inside the root.
        case contained([String])
    }

    var label: String
    var layer: [Fixture]
    var outcome: Outcome
    var testDescription: String { label }

    init(_ label: String, _ layer: [Fixture], _ outcome: Outcome) {
        self.label = label
        self.layer = layer
        self.outcome = outcome
    }
}

let hostileLayers: [HostileLayer] = [
    HostileLayer("traversal ../../x", [.file("../../x", "pwned")], .fails("path escapes the layer root")),
    HostileLayer("traversal into the sentinel", [.file("../sentinel/keep", "pwned")], .fails("path escapes the layer root")),
    HostileLayer("folded traversal", [.file("a/../../sentinel/keep", "pwned")], .fails("path escapes the layer root")),
    HostileLayer("dot-dot as a name", [.file("..", "pwned")], .fails("path escapes the layer root")),
    HostileLayer("a file as the root", [.file(".", "pwned")], .fails("only a directory can be the layer root")),
    HostileLayer("absolute name", [.file("/etc/x", "x")], .contained(["etc/x"])),
    HostileLayer("absolute path of the sentinel", [.file("$SENTINEL/keep", "pwned")], .contained(["$SENTINEL/keep"])),
    HostileLayer("file through a symlink to outside", [.symlink("link", to: "$SENTINEL"), .file("link/pwned", "x")],
                 .fails("parent directory: no such file or directory")),
    HostileLayer("directory through a symlink to outside", [.symlink("link", to: "$SENTINEL"), .directory("link/pwned")],
                 .fails("parent directory")),
    HostileLayer("file over a symlink to an outside file", [.symlink("link", to: "$SENTINEL/keep"), .file("link", "x")],
                 .contained(["link"])),
    HostileLayer("entry beneath a relative symlink out", [.symlink("d", to: "../sentinel/dir"), .file("d/pwned", "x")],
                 .fails("parent directory")),
    HostileLayer("symlink to .. stays in the root", [.symlink("up", to: ".."), .file("up/sentinel/pwned", "x")],
                 .contained(["sentinel/pwned"])),
    HostileLayer("chain of .. symlinks", [.symlink("a", to: "../../.."), .symlink("b", to: "a/../a/.."), .file("b/sentinel/keep", "x")],
                 .contained(["sentinel/keep"])),
    HostileLayer("symlink to / then a file", [.symlink("slash", to: "/"), .file("slash/pwned", "x")], .contained(["pwned"])),
    HostileLayer("directory swapped for a symlink", [.directory("d"), .symlink("d", to: "$SENTINEL"), .file("d/pwned", "x")],
                 .fails("parent directory")),
    HostileLayer("hardlink to /etc/passwd", [.hardlink("passwd", to: "/etc/passwd")], .fails("is not in this layer")),
    HostileLayer("hardlink to ../../x", [.hardlink("x", to: "../../x")], .fails("escapes the layer root")),
    HostileLayer("hardlink to the sentinel", [.hardlink("x", to: "$SENTINEL/keep")], .fails("is not in this layer")),
    HostileLayer("hardlink through a symlink out", [.symlink("link", to: "$SENTINEL"), .hardlink("x", to: "link/keep")],
                 .fails("is not in this layer")),
    HostileLayer("hardlink to a directory", [.directory("d"), .hardlink("x", to: "d")], .fails("is a directory")),
    HostileLayer("whiteout through a symlink out", [.symlink("link", to: "$SENTINEL"), .file("link/.wh.keep")],
                 .fails("parent directory")),
    HostileLayer("opaque marker through a symlink out", [.symlink("link", to: "$SENTINEL"), .file("link/.wh..wh..opq")],
                 .fails("no such file or directory")),
    HostileLayer("whiteout of the sentinel by traversal", [.file("../sentinel/.wh.keep")], .fails("path escapes the layer root")),
    HostileLayer("whiteout .wh..", [.file(".wh..")], .fails("invalid whiteout of \".\"")),
    HostileLayer("whiteout .wh...", [.file("dir/.wh...")], .fails("invalid whiteout of \"..\"")),
    HostileLayer("empty whiteout", [.file("dir/.wh.")], .fails("invalid whiteout of \"\"")),
    HostileLayer("name over PATH_MAX", [.file(String(repeating: "a/", count: 2100) + "x", "x")], .fails("over the 4096-byte limit")),
    HostileLayer("component over NAME_MAX", [.file(String(repeating: "n", count: 300), "x")], .fails("file name too long")),
]

@Suite struct HostileLayerTests {
    @Test(arguments: hostileLayers, [true, false])
    func staysInsideTheRoot(_ hostile: HostileLayer, openat2: Bool) throws {
        let sandbox = LayerSandbox()
        defer { sandbox.remove() }
        let tar = try tarBytes(hostile.layer.map { $0.resolving(sentinel: sandbox.sentinel) })
        let before = sandbox.snapshotOutside()
        let options = LayerUnpackOptions.testing(openat2: openat2)
        switch hostile.outcome {
        case .fails(let message):
            let error = #expect(throws: ImageError.self) { try sandbox.unpack(tar, .none, options: options) }
            #expect(error?.message.contains(message) == true, "\(error?.message ?? "no error")")
            #expect(error?.message.contains("\n") == false)
            #expect(error?.message.hasPrefix("layer entry ") == true)
        case .contained(let paths):
            _ = try sandbox.unpack(tar, .none, options: options)
            for path in paths {
                let resolved = path.replacing("$SENTINEL", with: sandbox.sentinel)
                #expect(sandbox.lstat(resolved) != nil, "\(resolved) inside the root")
            }
        }
        #expect(sandbox.snapshotOutside() == before)
    }
}

/// A stream that is not a whole, well-formed layer.
struct BrokenStream: Sendable, CustomTestStringConvertible {
    var label: String
    var compression: LayerCompression
    var bytes: @Sendable () throws -> [UInt8]
    var message: String
    var testDescription: String { label }
}

let bigFileTar: @Sendable () throws -> [UInt8] = {
    try tarBytes([.file("big", bytes: (0..<200_000).map { UInt8(truncatingIfNeeded: $0 &* 7919 >> 5) }), .file("after", "x")])
}

let brokenStreams: [BrokenStream] = [
    BrokenStream(label: "truncated tar", compression: .none, bytes: { Array(try bigFileTar()[..<10_240]) }, message: "truncated tar archive"),
    BrokenStream(label: "truncated gzip", compression: .gzip, bytes: { let z = gzip(try bigFileTar()); return Array(z[..<(z.count / 2)]) },
                 message: "truncated gzip stream"),
    BrokenStream(label: "gzip without its trailer", compression: .gzip, bytes: { let z = gzip(try bigFileTar()); return Array(z.dropLast(4)) },
                 message: "truncated gzip stream"),
    BrokenStream(label: "corrupt gzip", compression: .gzip, bytes: {
        var z = gzip(try bigFileTar())
        for index in stride(from: z.count / 3, to: z.count / 3 + 64, by: 1) { z[index] ^= 0x5a }
        return z
    }, message: "corrupt gzip stream"),
    BrokenStream(label: "not gzip at all", compression: .gzip, bytes: { Array("plain text, not gzip".utf8) }, message: "corrupt gzip stream"),
    BrokenStream(label: "empty gzip", compression: .gzip, bytes: { [] }, message: "truncated gzip stream"),
    BrokenStream(label: "truncated zstd", compression: .zstd, bytes: { let z = zstd(try bigFileTar()); return Array(z[..<(z.count / 2)]) },
                 message: "truncated zstd stream"),
    BrokenStream(label: "corrupt zstd", compression: .zstd, bytes: {
        var z = zstd(try bigFileTar())
        for index in stride(from: z.count / 3, to: z.count / 3 + 64, by: 1) { z[index] ^= 0x5a }
        return z
    }, message: "corrupt zstd stream"),
    BrokenStream(label: "8 GB pax header", compression: .none, bytes: {
        ustarHeader(name: "PaxHeader/x", typeflag: "x", size: "77777777777") + [UInt8](repeating: 0, count: 4096)
    }, message: "invalid layer: "),
    BrokenStream(label: "8 GB gnu long name", compression: .none, bytes: {
        ustarHeader(name: "././@LongLink", typeflag: "L", size: "77777777777") + [UInt8](repeating: 0, count: 4096)
    }, message: "invalid layer: "),
    BrokenStream(label: "pax size beyond the stream", compression: .none, bytes: {
        let record = Array("26 size=99999999999999999\n".utf8)
        let pax = ustarHeader(name: "PaxHeader/f", typeflag: "x", size: String(repeating: "0", count: 9) + String(record.count, radix: 8))
            + record + [UInt8](repeating: 0, count: 512 - record.count)
        return pax + ustarHeader(name: "f", typeflag: "0", size: "00000000000") + [UInt8](repeating: 0, count: 1024)
    }, message: "truncated tar archive"),
    BrokenStream(label: "damaged header checksum", compression: .none, bytes: {
        var tar = try tarBytes([.file("a", "x"), .file("b", "y")])
        tar[1024 + 1] ^= 0xff  // the second header (after a's header and data block)
        return tar
    }, message: "after entry \"a\""),
    BrokenStream(label: "not a tar", compression: .none, bytes: { [UInt8](repeating: 0x41, count: 4096) }, message: "invalid layer: "),
]

@Suite struct BrokenStreamTests {
    @Test(arguments: brokenStreams)
    func failsCleanly(_ broken: BrokenStream) throws {
        let sandbox = LayerSandbox()
        defer { sandbox.remove() }
        let bytes = try broken.bytes()
        let before = sandbox.snapshotOutside()
        let error = #expect(throws: ImageError.self) {
            try sandbox.unpack(bytes, broken.compression, options: .testing(openat2: true))
        }
        #expect(error?.message.contains(broken.message) == true, "\(error?.message ?? "no error")")
        #expect(error?.message.contains("\n") == false)
        #expect(sandbox.snapshotOutside() == before)
    }
}

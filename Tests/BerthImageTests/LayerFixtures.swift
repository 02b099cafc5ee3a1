#if canImport(Glibc)
import Glibc
#endif
@testable import BerthImage
import BerthOCI
import BerthOS
import BerthTestSupport
import CBerth
import CCompress
import Crypto

/// One tar entry and its contents, for building layers in tests.
struct Fixture: Sendable {
    var entry: TarEntry
    var contents: [UInt8] = []

    static func file(_ name: String, _ text: String = "", mode: mode_t = 0o644, uid: Int64 = 0, gid: Int64 = 0,
                     mtime: Int64 = 0, xattrs: [String: [UInt8]] = [:]) -> Fixture {
        let bytes = Array(text.utf8)
        return Fixture(entry: TarEntry(name: name, kind: .regularFile, mode: mode, size: Int64(bytes.count), uid: uid, gid: gid,
                                       modificationTime: mtime, extendedAttributes: xattrs), contents: bytes)
    }

    static func file(_ name: String, bytes: [UInt8], mode: mode_t = 0o644) -> Fixture {
        Fixture(entry: TarEntry(name: name, kind: .regularFile, mode: mode, size: Int64(bytes.count)), contents: bytes)
    }

    static func directory(_ name: String, mode: mode_t = 0o755, uid: Int64 = 0, gid: Int64 = 0, mtime: Int64 = 0,
                          xattrs: [String: [UInt8]] = [:]) -> Fixture {
        Fixture(entry: TarEntry(name: name, kind: .directory, mode: mode, uid: uid, gid: gid, modificationTime: mtime,
                                extendedAttributes: xattrs))
    }

    static func symlink(_ name: String, to target: String, uid: Int64 = 0, gid: Int64 = 0, mtime: Int64 = 0) -> Fixture {
        Fixture(entry: TarEntry(name: name, kind: .symlink(target: target), mode: 0o777, uid: uid, gid: gid, modificationTime: mtime))
    }

    static func hardlink(_ name: String, to target: String) -> Fixture {
        Fixture(entry: TarEntry(name: name, kind: .hardlink(target: target)))
    }

    static func node(_ name: String, _ kind: TarEntry.Kind, mode: mode_t = 0o644) -> Fixture {
        Fixture(entry: TarEntry(name: name, kind: kind, mode: mode))
    }

    /// The same fixture with "$SENTINEL" in its name or link target replaced.
    func resolving(sentinel: String) -> Fixture {
        var copy = self
        copy.entry.name = entry.name.replacing("$SENTINEL", with: sentinel)
        switch entry.kind {
        case .symlink(let target): copy.entry.kind = .symlink(target: target.replacing("$SENTINEL", with: sentinel))
        case .hardlink(let target): copy.entry.kind = .hardlink(target: target.replacing("$SENTINEL", with: sentinel))
        default: break
        }
        return copy
    }
}

/// A tar of `fixtures`, written by TarWriter.
func tarBytes(_ fixtures: [Fixture]) throws -> [UInt8] {
    let directory = TemporaryDirectory("tar")
    defer { directory.remove() }
    let path = directory.subpath("layer.tar")
    let fd = try FileDescriptor.open(path, O_WRONLY | O_CREAT | O_TRUNC)
    do {
        var writer = try TarWriter(descriptor: fd)
        for fixture in fixtures { try writer.add(fixture.entry, contents: fixture.contents) }
        try writer.finish()
    } catch {
        fd.close()
        throw error
    }
    fd.close()
    return try Files.read(path)
}

func gzip(_ bytes: [UInt8], level: Int32 = 6) -> [UInt8] {
    var stream = z_stream()
    precondition(deflateInit2_(&stream, level, Z_DEFLATED, 31, 8, Z_DEFAULT_STRATEGY, zlibVersion(), Int32(MemoryLayout<z_stream>.size)) == Z_OK)
    defer { deflateEnd(&stream) }
    var input = bytes
    var output = [UInt8](repeating: 0, count: Int(deflateBound(&stream, UInt(bytes.count))) + 64)
    let produced = input.withUnsafeMutableBufferPointer { inBuffer in
        output.withUnsafeMutableBufferPointer { outBuffer in
            stream.next_in = inBuffer.baseAddress
            stream.avail_in = UInt32(inBuffer.count)
            stream.next_out = outBuffer.baseAddress
            stream.avail_out = UInt32(outBuffer.count)
            precondition(deflate(&stream, Z_FINISH) == Z_STREAM_END)
            return outBuffer.count - Int(stream.avail_out)
        }
    }
    return Array(output[..<produced])
}

/// zstd with a content checksum, as zstd(1) and Go's encoder write it.
func zstd(_ bytes: [UInt8]) -> [UInt8] {
    let context = ZSTD_createCCtx()
    defer { ZSTD_freeCCtx(context) }
    ZSTD_CCtx_setParameter(context, ZSTD_c_checksumFlag, 1)
    var output = [UInt8](repeating: 0, count: ZSTD_compressBound(bytes.count))
    let count = output.withUnsafeMutableBytes { out in
        bytes.withUnsafeBytes { input in ZSTD_compress2(context, out.baseAddress, out.count, input.baseAddress, input.count) }
    }
    precondition(ZSTD_isError(count) == 0)
    return Array(output[..<count])
}

func compress(_ bytes: [UInt8], _ compression: LayerCompression) -> [UInt8] {
    switch compression {
    case .none: bytes
    case .gzip: gzip(bytes)
    case .zstd: zstd(bytes)
    }
}

func sha256(_ bytes: [UInt8]) -> BerthOCI.Digest {
    BerthOCI.Digest(bytes: SHA256.hash(data: bytes))
}

/// A raw ustar header block (for what TarWriter refuses to write).
func ustarHeader(name: String, typeflag: Character, size: String, mode: String = "0000644") -> [UInt8] {
    var block = [UInt8](repeating: 0, count: 512)
    func put(_ text: String, at offset: Int) {
        for (index, byte) in text.utf8.enumerated() { block[offset + index] = byte }
    }
    put(name, at: 0)
    put(mode, at: 100)
    put("0000000", at: 108)
    put("0000000", at: 116)
    put(size, at: 124)
    put("00000000000", at: 136)
    block[156] = UInt8(ascii: typeflag.unicodeScalars.first!)
    put("ustar", at: 257)
    put("00", at: 263)
    for index in 148..<156 { block[index] = 0x20 }
    let sum = block.reduce(0) { $0 + Int($1) }
    let octal = String(sum, radix: 8)
    put(String(repeating: "0", count: 6 - octal.count) + octal, at: 148)
    block[154] = 0
    block[155] = 0x20
    return block
}

/// A layer root with a sentinel directory next to it: whatever a layer
/// does, nothing outside `root` may change.
struct LayerSandbox {
    let directory: TemporaryDirectory
    var root: String { directory.subpath("root") }
    var sentinel: String { directory.subpath("sentinel") }

    init() {
        directory = TemporaryDirectory("layer")
        precondition(mkdir(directory.subpath("root"), 0o755) == 0)
        precondition(mkdir(directory.subpath("sentinel"), 0o755) == 0)
        precondition(mkdir(directory.subpath("sentinel/dir"), 0o755) == 0)
        try! Files.write(directory.subpath("sentinel/keep"), "keep")
        try! Files.write(directory.subpath("sentinel/target"), "target")
    }

    /// Removes everything, read-only directories and non-UTF-8 names included.
    func remove() {
        guard let parent = try? FileDescriptor.open("/tmp", BERTH_O_PATH | O_DIRECTORY) else { return }
        defer { parent.close() }
        forceRemove(parent, Array(directory.path.dropFirst("/tmp/".count).utf8))
    }

    /// Unpacks `stream` (already compressed as `compression`) into the root,
    /// reading it from a file next to the root.
    func unpack(_ stream: [UInt8], _ compression: LayerCompression, options: LayerUnpackOptions) throws -> LayerUnpackResult {
        let blob = directory.subpath("blob")
        try Files.writeAtomically(blob, stream)
        let input = try FileDescriptor.open(blob, O_RDONLY)
        defer { input.close() }
        let root = try FileDescriptor.open(self.root, BERTH_O_PATH | O_DIRECTORY)
        defer { root.close() }
        return try LayerUnpacker.unpack(input: input, compression: compression, into: root, options: options)
    }

    /// Everything under the sandbox but the root and the blob: path → type,
    /// mode, owner, size, mtime, contents or link target.
    func snapshotOutside() -> [String: String] {
        var result: [String: String] = [:]
        func visit(_ path: String, _ relative: String) {
            guard let st = try? Files.lstat(path) else { return }
            var line = "\(st.st_mode) \(st.st_uid):\(st.st_gid) \(st.st_size) \(st.st_mtim.tv_sec).\(st.st_mtim.tv_nsec) \(st.st_nlink)"
            switch st.st_mode & S_IFMT {
            case S_IFREG: line += " " + ((try? Files.readString(path)) ?? "?")
            case S_IFLNK: line += " -> " + (Files.readLink(path) ?? "?")
            case S_IFDIR:
                for name in Files.list(path) {
                    let child = relative.isEmpty ? name : relative + "/" + name
                    if child == "root" || child == "blob" { continue }
                    visit(path + "/" + name, child)
                }
            default: break
            }
            var value = [UInt8](repeating: 0, count: 256)
            for attribute in ["trusted.overlay.opaque", "user.overlay.opaque", "user.note"] {
                let count = berth_getxattr(path, attribute, &value, value.count)
                if count >= 0 { line += " \(attribute)=\(String(decoding: value[..<count], as: UTF8.self))" }
            }
            if !relative.isEmpty { result[relative] = line }  // the blob is written in "" after the snapshot
        }
        visit(directory.path, "")
        return result
    }

    func lstat(_ relative: String) -> stat? { try? Files.lstat(root + "/" + relative) }

    func xattr(_ relative: String, _ name: String) -> String? {
        var value = [UInt8](repeating: 0, count: 256)
        let count = berth_getxattr(root + "/" + relative, name, &value, value.count)
        return count < 0 ? nil : String(decoding: value[..<count], as: UTF8.self)
    }
}

extension LayerUnpackOptions {
    /// As berth would unpack here: root's options as root, rootless ones in a
    /// user namespace (or as an ordinary user, without ownership).
    static func testing(openat2: Bool, rootless: Bool = !isHostRoot) -> LayerUnpackOptions {
        var options = LayerUnpackOptions.defaults(rootless: rootless)
        options.useOpenat2 = openat2
        options.preserveOwnership = canChown
        return options
    }
}

/// Root of the initial user namespace: device nodes and trusted.* xattrs work.
let isHostRoot: Bool = {
    guard getuid() == 0, let map = try? Files.readString("/proc/self/uid_map") else { return false }
    return map.split(whereSeparator: { $0 == " " || $0 == "\n" }) == ["0", "0", "4294967295"]
}()

/// Whether files can be given other owners (root, or uid 0 of a user
/// namespace with subordinate ids mapped, as rootless berth runs).
let canChown: Bool = {
    let directory = TemporaryDirectory("chown")
    defer { directory.remove() }
    let path = directory.subpath("probe")
    guard (try? Files.write(path, "")) != nil else { return false }
    return chown(path, 1000, 1001) == 0
}()

/// rm -rf of `name` in `parent` by raw bytes, making directories writable first.
func forceRemove(_ parent: FileDescriptor, _ name: [UInt8]) {
    let path = cString(name)
    var st = stat()
    guard fstatat(parent.rawValue, path, &st, AT_SYMLINK_NOFOLLOW) == 0 else { return }
    if st.st_mode & S_IFMT == S_IFDIR {
        _ = fchmodat(parent.rawValue, path, 0o700, 0)
        if let directory = try? openAt(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW), let stream = fdopendir(directory.rawValue) {
            var children: [[UInt8]] = []
            while let entry = readdir(stream) {
                let child = withUnsafeBytes(of: entry.pointee.d_name) { Array($0.prefix(while: { $0 != 0 })) }
                if child != [0x2e] && child != [0x2e, 0x2e] { children.append(child) }
            }
            for child in children { forceRemove(directory, child) }
            closedir(stream)
        }
        _ = unlinkat(parent.rawValue, path, AT_REMOVEDIR)
    } else {
        _ = unlinkat(parent.rawValue, path, 0)
    }
}

#if canImport(Glibc)
import Glibc
#endif
import BerthOS
import CBerth

/// A path inside a layer, as raw bytes: tar names need not be UTF-8, and a
/// name must reach the file system exactly as the archive spells it.
struct LayerPath: Equatable, Sendable {
    var components: [[UInt8]]

    /// Cleans a tar name lexically: a leading "/" and "." components are
    /// dropped (an absolute name means "inside the root", as for every tar
    /// tool), "a/../b" folds to "b". Nil when ".." climbs above the root:
    /// such an entry is refused, never clamped (docker and containers/storage
    /// refuse it too, as a "breakout").
    static func clean(_ bytes: some Collection<UInt8>) -> LayerPath? {
        var components: [[UInt8]] = []
        for part in bytes.split(separator: UInt8(ascii: "/"), omittingEmptySubsequences: true) {
            if part.elementsEqual([UInt8(ascii: ".")]) { continue }
            if part.elementsEqual([UInt8(ascii: "."), UInt8(ascii: ".")]) {
                if components.popLast() == nil { return nil }
                continue
            }
            components.append(Array(part))
        }
        return LayerPath(components: components)
    }

    var isRoot: Bool { components.isEmpty }
    var parent: ArraySlice<[UInt8]> { components.dropLast() }
    var name: [UInt8] { components.last ?? [] }

    /// For messages: "./" for the root, invalid UTF-8 repaired.
    var display: String {
        if components.isEmpty { return "./" }
        return components.map { String(decoding: $0, as: UTF8.self) }.joined(separator: "/")
    }
}

/// The layer's directory, the only place the unpacker writes: every parent
/// directory is resolved with openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS),
/// so `..` and symlinks (absolute or relative, however chained) resolve as if
/// the layer directory were `/`; where openat2 is missing or filtered, one
/// component at a time with O_NOFOLLOW, splicing symlinks in by hand under the
/// same rule. The final component is always worked on relative to that parent
/// with *at() calls that do not follow it.
struct LayerRoot {
    let descriptor: FileDescriptor
    let useOpenat2: Bool

    init(descriptor: FileDescriptor, useOpenat2: Bool = SecureRoot.hasOpenat2) {
        self.descriptor = descriptor
        self.useOpenat2 = useOpenat2
    }

    /// An O_PATH descriptor of the directory at `components`, resolved inside
    /// the root.
    func openDirectory(_ components: ArraySlice<[UInt8]>) throws(Errno) -> FileDescriptor {
        if components.isEmpty {
            return FileDescriptor(rawValue: try retryOnInterrupt { berth_openat(descriptor.rawValue, ".", BERTH_O_PATH | O_DIRECTORY | O_CLOEXEC, 0) })
        }
        if useOpenat2 {
            var joined: [UInt8] = []
            for component in components {
                if !joined.isEmpty { joined.append(UInt8(ascii: "/")) }
                joined.append(contentsOf: component)
            }
            let path = cString(joined)
            while true {
                let fd = berth_openat2(descriptor.rawValue, path, UInt64(BERTH_O_PATH | O_DIRECTORY | O_CLOEXEC), 0,
                                       UInt64(BERTH_RESOLVE_IN_ROOT | BERTH_RESOLVE_NO_MAGICLINKS))
                if fd >= 0 { return FileDescriptor(rawValue: fd) }
                let error = Errno.current
                // EAGAIN: a rename raced the lookup; retry as the man page says.
                if error == .interrupted || error == .wouldBlock { continue }
                if error != .notSupported && error != .notPermitted { throw error }
                break
            }
        }
        return try walk(Array(components))
    }

    /// Like `openDirectory`, creating missing directories (mode 0755, owned
    /// by the caller) as `mkdir -p` would, each in its resolved parent.
    func makeDirectories(_ components: ArraySlice<[UInt8]>) throws(Errno) -> FileDescriptor {
        do throws(Errno) { return try openDirectory(components) } catch where error != .noSuchFile { throw error } catch {}
        var current = try openDirectory([])
        for index in components.indices {
            let prefix = components[components.startIndex...index]
            if let next = try? openDirectory(prefix) {
                current.close()
                current = next
                continue
            }
            let name = cString(components[index])
            if mkdirat(current.rawValue, name, 0o755) == 0 {
                _ = fchmodat(current.rawValue, name, 0o755, 0)  // whatever the umask
            } else if Errno.current != .exists {
                let error = Errno.current
                current.close()
                throw error
            }
            let next: FileDescriptor
            do { next = try openDirectory(prefix) } catch { current.close(); throw error }
            current.close()
            current = next
        }
        return current
    }

    /// The fallback resolver: openat(O_NOFOLLOW) per component; a symlink's
    /// target is spliced in, from the root if absolute; `..` stops at the root.
    func walk(_ components: [[UInt8]]) throws(Errno) -> FileDescriptor {
        var pending = Array(components.reversed())
        var stack = [FileDescriptor(rawValue: try retryOnInterrupt {
            berth_openat(descriptor.rawValue, ".", BERTH_O_PATH | O_DIRECTORY | O_CLOEXEC, 0)
        })]
        defer { for fd in stack { fd.close() } }
        var links = 0
        while let component = pending.popLast() {
            if component.isEmpty || component == [UInt8(ascii: ".")] { continue }
            if component == [UInt8(ascii: "."), UInt8(ascii: ".")] {
                if stack.count > 1 { stack.removeLast().close() }
                continue
            }
            let parent = stack[stack.count - 1]
            let name = cString(component)
            var st = Glibc.stat()
            if fstatat(parent.rawValue, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && (st.st_mode & S_IFMT) == S_IFLNK {
                links += 1
                if links > 40 { throw Errno.tooManyLinks }
                let target = try readLink(parent, component)
                if target.first == UInt8(ascii: "/") {
                    while stack.count > 1 { stack.removeLast().close() }
                }
                pending.append(contentsOf: target.split(separator: UInt8(ascii: "/")).map(Array.init).reversed())
                continue
            }
            stack.append(FileDescriptor(rawValue: try retryOnInterrupt {
                berth_openat(parent.rawValue, name, BERTH_O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC, 0)
            }))
        }
        return stack.removeLast()
    }
}

/// readlinkat(2) of `name` in `directory`, as raw bytes.
func readLink(_ directory: FileDescriptor, _ name: [UInt8]) throws(Errno) -> [UInt8] {
    var buffer = [UInt8](repeating: 0, count: 4097)
    let path = cString(name)
    let count = buffer.withUnsafeMutableBytes { raw in
        readlinkat(directory.rawValue, path, raw.baseAddress!.assumingMemoryBound(to: CChar.self), raw.count)
    }
    if count < 0 { throw Errno.current }
    return Array(buffer[0..<count])
}

#if canImport(Glibc)
import Glibc
#endif
import CBerth

/// A directory that paths are resolved inside of, never outside: `..`,
/// absolute symlinks and symlinks pointing up all stay beneath the root.
/// Uses openat2(RESOLVE_IN_ROOT) and falls back to walking one component at a
/// time with O_NOFOLLOW, resolving symlinks itself, scoped to the root.
public struct SecureRoot: Sendable {
    public let descriptor: FileDescriptor
    public let path: String

    public init(path: String) throws(Errno) {
        self.path = path
        self.descriptor = try FileDescriptor.open(path, BERTH_O_PATH | O_DIRECTORY)
    }

    public func close() { descriptor.close() }

    /// Opens `path` (relative or absolute: both mean "inside the root").
    public func open(_ path: String, _ flags: Int32, mode: mode_t = 0o644) throws(Errno) -> FileDescriptor {
        let relative = Self.relative(path)
        if relative.isEmpty {
            return try descriptor.openAt(".", flags, mode: mode)
        }
        if SecureRoot.hasOpenat2 {
            // openat2 rejects a mode without O_CREAT.
            let effectiveMode = flags & O_CREAT != 0 ? UInt64(mode) : 0
            let result = berth_openat2(descriptor.rawValue, relative, UInt64(flags | O_CLOEXEC), effectiveMode,
                                       UInt64(BERTH_RESOLVE_IN_ROOT | BERTH_RESOLVE_NO_MAGICLINKS))
            if result >= 0 { return FileDescriptor(rawValue: result) }
            let error = Errno.current
            if error == .interrupted || error == .wouldBlock { return try open(path, flags, mode: mode) }
            // ENOSYS, or EPERM from a seccomp profile that does not know openat2.
            if error != .notSupported && error != .notPermitted { throw error }
        }
        return try walk(relative, flags, mode: mode)
    }

    /// mkdir -p inside the root. Returns an BERTH_O_PATH descriptor of the directory.
    @discardableResult
    public func makeDirectories(_ path: String, mode: mode_t = 0o755) throws(Errno) -> FileDescriptor {
        let components = Self.relative(path).split(separator: "/").map(String.init)
        var prefix = ""
        var current = try descriptor.openAt(".", BERTH_O_PATH | O_DIRECTORY)
        for component in components {
            prefix += (prefix.isEmpty ? "" : "/") + component
            if let next = try? open(prefix, BERTH_O_PATH | O_DIRECTORY) {
                current.close()
                current = next
                continue
            }
            // `current` is the resolved parent: create the component there, never following it.
            if Glibc.mkdirat(current.rawValue, component, mode) != 0 && Errno.current != .exists {
                let error = Errno.current
                current.close()
                throw error
            }
            let next: FileDescriptor
            do { next = try open(prefix, BERTH_O_PATH | O_DIRECTORY) } catch { current.close(); throw error }
            current.close()
            current = next
        }
        return current
    }

    /// Creates an empty regular file if nothing exists at `path` (for bind
    /// mounts of files), making parents as needed. Returns an BERTH_O_PATH fd.
    public func makeFile(_ path: String, mode: mode_t = 0o644) throws(Errno) -> FileDescriptor {
        if let existing = try? open(path, BERTH_O_PATH) { return existing }
        let relative = Self.relative(path)
        var parts = relative.split(separator: "/").map(String.init)
        guard let name = parts.popLast() else { throw Errno.invalidArgument }
        let parent = try makeDirectories(parts.joined(separator: "/"))
        defer { parent.close() }
        let fd = try parent.openAt(name, O_WRONLY | O_CREAT | O_NOFOLLOW, mode: mode)
        fd.close()
        return try open(path, BERTH_O_PATH)
    }

    /// The path with leading slashes and `.` components removed.
    public static func relative(_ path: String) -> String {
        path.split(separator: "/").filter { $0 != "." }.joined(separator: "/")
    }

    /// Whether the running kernel has openat2 (Linux 5.6+); probed once.
    public static let hasOpenat2: Bool = {
        let fd = berth_openat2(AT_FDCWD, "/", UInt64(BERTH_O_PATH | O_CLOEXEC), 0, 0)
        if fd >= 0 { Glibc.close(fd); return true }
        return Errno.current != .notSupported && Errno.current != .notPermitted
    }()

    /// Component-by-component resolution: each step is openat(O_NOFOLLOW);
    /// a symlink is read and its target spliced in, relative to the root if
    /// absolute; `..` never climbs above the root.
    func walk(_ relative: String, _ flags: Int32, mode: mode_t) throws(Errno) -> FileDescriptor {
        var pending = relative.split(separator: "/").map(String.init).reversed() as [String]
        var stack: [FileDescriptor] = [try descriptor.openAt(".", BERTH_O_PATH | O_DIRECTORY)]
        defer { for fd in stack { fd.close() } }
        var links = 0
        while let component = pending.popLast() {
            if component == "." || component.isEmpty { continue }
            if component == ".." {
                if stack.count > 1 { stack.removeLast().close() }
                continue
            }
            let isLast = pending.isEmpty
            let parent = stack[stack.count - 1]
            var st = Glibc.stat()
            let statResult = fstatat(parent.rawValue, component, &st, AT_SYMLINK_NOFOLLOW)
            if statResult == 0 && (st.st_mode & S_IFMT) == S_IFLNK {
                links += 1
                if links > 40 { throw Errno.tooManyLinks }
                var buffer = [CChar](repeating: 0, count: 4096)
                let n = readlinkat(parent.rawValue, component, &buffer, buffer.count - 1)
                if n < 0 { throw Errno.current }
                let target = String(decoding: buffer[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
                if target.hasPrefix("/") {
                    while stack.count > 1 { stack.removeLast().close() }
                }
                pending.append(contentsOf: target.split(separator: "/").map(String.init).reversed())
                continue
            }
            if isLast {
                return try parent.openAt(component, flags | O_NOFOLLOW, mode: mode)
            }
            stack.append(try parent.openAt(component, BERTH_O_PATH | O_DIRECTORY | O_NOFOLLOW))
        }
        return try stack[stack.count - 1].openAt(".", flags & ~(O_CREAT | O_EXCL), mode: mode)
    }
}

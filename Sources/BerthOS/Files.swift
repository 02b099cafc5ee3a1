#if canImport(Glibc)
import Glibc
#endif
import CBerth

/// Whole-file helpers for small files (/proc, config.json, state.json).
public enum Files {
    public static func read(_ path: String) throws(Errno) -> [UInt8] {
        let fd = try FileDescriptor.open(path, O_RDONLY)
        return try fd.closeAfter { (fd) throws(Errno) in try fd.readAll() }
    }

    public static func readString(_ path: String) throws(Errno) -> String {
        String(decoding: try read(path), as: UTF8.self)
    }

    /// Writes a file in place (for /proc and /sys files, which cannot be renamed over).
    public static func write(_ path: String, _ contents: String, flags: Int32 = O_WRONLY | O_CREAT | O_TRUNC, mode: mode_t = 0o644) throws(Errno) {
        let fd = try FileDescriptor.open(path, flags, mode: mode)
        try fd.closeAfter { (fd) throws(Errno) in try fd.writeAll(contents) }
    }

    /// Writes a temp file beside `path`, then renames it over `path`: readers
    /// see the old or the new contents, never a half-written file.
    public static func writeAtomically(_ path: String, _ contents: [UInt8], mode: mode_t = 0o644) throws(Errno) {
        let temp = "\(path).tmp-\(getpid())"
        let fd = try FileDescriptor.open(temp, O_WRONLY | O_CREAT | O_TRUNC, mode: mode)
        do {
            try fd.closeAfter { (fd) throws(Errno) in try fd.writeAll(contents) }
            _ = try check(Glibc.rename(temp, path))
        } catch {
            _ = Glibc.unlink(temp)
            throw error
        }
    }

    public static func exists(_ path: String) -> Bool { Glibc.access(path, F_OK) == 0 }

    public static func lstat(_ path: String) throws(Errno) -> Glibc.stat {
        var st = Glibc.stat()
        _ = try check(Glibc.lstat(path, &st))
        return st
    }

    public static func stat(_ path: String) throws(Errno) -> Glibc.stat {
        var st = Glibc.stat()
        _ = try check(fstatat(AT_FDCWD, path, &st, 0))
        return st
    }

    public static func isDirectory(_ path: String) -> Bool {
        guard let st = try? stat(path) else { return false }
        return (st.st_mode & S_IFMT) == S_IFDIR
    }

    /// mkdir -p with `mode` for the directories it creates.
    public static func makeDirectories(_ path: String, mode: mode_t = 0o755) throws(Errno) {
        if isDirectory(path) { return }
        var current = path.hasPrefix("/") ? "" : "."
        for component in path.split(separator: "/") {
            current += "/" + component
            if Glibc.mkdir(current, mode) != 0 {
                let error = Errno.current
                if error != .exists { throw error }
            }
        }
    }

    /// rm -rf that never follows symlinks and stays on one file system.
    public static func removeTree(_ path: String) {
        guard let st = try? lstat(path) else { return }
        if (st.st_mode & S_IFMT) == S_IFDIR {
            if let dir = opendir(path) {
                var names: [String] = []
                while let entry = readdir(dir) {
                    let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                        String(cString: raw.bindMemory(to: CChar.self).baseAddress!)
                    }
                    if name != "." && name != ".." { names.append(name) }
                }
                closedir(dir)
                for name in names { removeTree(path + "/" + name) }
            }
            _ = Glibc.rmdir(path)
        } else {
            _ = Glibc.unlink(path)
        }
    }

    /// Directory entry names (without . and ..), unsorted.
    public static func list(_ path: String) -> [String] {
        guard let dir = opendir(path) else { return [] }
        defer { closedir(dir) }
        var names: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(cString: raw.bindMemory(to: CChar.self).baseAddress!)
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names
    }

    public static func readLink(_ path: String) -> String? {
        var buffer = [CChar](repeating: 0, count: 4096)
        let n = Glibc.readlink(path, &buffer, buffer.count - 1)
        guard n >= 0 else { return nil }
        return String(decoding: buffer[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// realpath(3).
    public static func realPath(_ path: String) throws(Errno) -> String {
        guard let p = Glibc.realpath(path, nil) else { throw Errno.current }
        defer { free(p) }
        return String(cString: p)
    }

    public static var currentDirectory: String {
        var buffer = [CChar](repeating: 0, count: 4096)
        guard getcwd(&buffer, buffer.count) != nil else { return "/" }
        return buffer.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
    }

    /// Makes `path` absolute against the current directory (lexically).
    public static func absolute(_ path: String) -> String {
        let joined = path.hasPrefix("/") ? path : currentDirectory + "/" + path
        var parts: [Substring] = []
        for part in joined.split(separator: "/") {
            if part == "." { continue }
            if part == ".." { _ = parts.popLast(); continue }
            parts.append(part)
        }
        return "/" + parts.joined(separator: "/")
    }
}

#if canImport(Glibc)
import Glibc
#endif
import CBerth

/// A NUL-terminated copy of raw bytes for a system call (file names in
/// layers need not be UTF-8).
@inline(__always)
public func cString(_ bytes: some Collection<UInt8>) -> [CChar] {
    var result = [CChar]()
    result.reserveCapacity(bytes.count + 1)
    for byte in bytes { result.append(CChar(bitPattern: byte)) }
    result.append(0)
    return result
}

/// The names in the directory open at `directory` (without "." and ".."),
/// as raw bytes. The descriptor stays open and usable.
public func directoryEntries(_ directory: FileDescriptor) throws(Errno) -> [[UInt8]] {
    let copy = dup(directory.rawValue)
    guard copy >= 0 else { throw Errno.current }
    guard let stream = fdopendir(copy) else {
        let error = Errno.current
        _ = close(copy)
        throw error
    }
    defer { closedir(stream) }
    rewinddir(stream)
    var names: [[UInt8]] = []
    while let entry = readdir(stream) {
        let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in Array(raw.prefix(while: { $0 != 0 })) }
        if name != [46] && name != [46, 46] { names.append(name) }
    }
    return names
}

/// Removes `name` in `parent` whatever it is, a directory with everything
/// in it; never follows a symlink. Absent is fine.
public func removeEntry(_ parent: FileDescriptor, _ name: [UInt8]) throws(Errno) {
    let path = cString(name)
    var st = Glibc.stat()
    if fstatat(parent.rawValue, path, &st, AT_SYMLINK_NOFOLLOW) != 0 {
        if Errno.current == .noSuchFile { return }
        throw Errno.current
    }
    if (st.st_mode & S_IFMT) == S_IFDIR {
        let directory = FileDescriptor(rawValue: try retryOnInterrupt {
            berth_openat(parent.rawValue, path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC, 0)
        })
        defer { directory.close() }
        for child in try directoryEntries(directory) { try removeEntry(directory, child) }
        _ = try check(unlinkat(parent.rawValue, path, AT_REMOVEDIR))
    } else if unlinkat(parent.rawValue, path, 0) != 0 && Errno.current != .noSuchFile {
        throw Errno.current
    }
}

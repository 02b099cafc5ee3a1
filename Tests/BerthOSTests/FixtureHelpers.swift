#if canImport(Glibc)
import Glibc
#endif
import BerthOS
@_exported import BerthTestSupport

/// Creates a directory, failing the test loudly if it cannot.
func makeDirectory(_ path: String) {
    precondition(mkdir(path, 0o755) == 0 || errno == EEXIST, "mkdir \(path): \(Errno.current)")
}

func makeSymlink(_ path: String, pointingTo target: String) {
    precondition(symlink(target, path) == 0, "symlink \(path) -> \(target): \(Errno.current)")
}

func writeFile(_ path: String, _ contents: String) {
    do { try Files.write(path, contents) } catch { preconditionFailure("write \(path): \(error)") }
}

/// (device, inode) of a path, not following a final symlink.
func identity(ofPath path: String) -> (dev: UInt64, ino: UInt64)? {
    var st = stat()
    guard lstat(path, &st) == 0 else { return nil }
    return (UInt64(st.st_dev), UInt64(st.st_ino))
}

func identity(of fd: FileDescriptor) -> (dev: UInt64, ino: UInt64)? {
    guard let st = try? fd.stat() else { return nil }
    return (UInt64(st.st_dev), UInt64(st.st_ino))
}

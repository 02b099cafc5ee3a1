#if canImport(Glibc)
import Glibc
#endif
import BerthOS
import CBerth

/// Writes to /proc during setup (sysctls, oom_score_adj, LSM attributes)
/// through a handle verified to be procfs, resolving the rest beneath it
/// with no symlink, magic link or mount crossing: a file bind-mounted over
/// a /proc entry, or a /proc that is not procfs, is refused instead of
/// written (the CVE-2019-16884 and CVE-2025-52881 class).
enum ProcFS {
    static let superMagic = 0x9fa0
    static let rootInode: UInt = 1

    static func write(_ relative: String, _ value: String) throws(RuntimeError) {
        let fd = try open(relative, O_WRONLY | O_TRUNC)
        defer { fd.close() }
        try step("write /proc/\(relative)") { () throws(Errno) in try fd.writeAll(value) }
    }

    static func open(_ relative: String, _ flags: Int32) throws(RuntimeError) -> FileDescriptor {
        let root = try step("open /proc") { () throws(Errno) in try FileDescriptor.open("/proc", BERTH_O_PATH | O_DIRECTORY | O_NOFOLLOW) }
        defer { root.close() }
        let rootStat = try step("stat /proc") { () throws(Errno) in try root.stat() }
        guard berth_fstatfs_type(root.rawValue) == superMagic, UInt(rootStat.st_ino) == rootInode else {
            throw RuntimeError(.permissionDenied, "refusing to write /proc/\(relative): /proc in the container is not procfs")
        }
        let fd: FileDescriptor
        if SecureRoot.hasOpenat2 {
            let resolve = BERTH_RESOLVE_BENEATH | BERTH_RESOLVE_NO_XDEV | BERTH_RESOLVE_NO_SYMLINKS | BERTH_RESOLVE_NO_MAGICLINKS
            let result = berth_openat2(root.rawValue, relative, UInt64(flags | O_CLOEXEC | O_NOFOLLOW), 0, UInt64(resolve))
            if result < 0 {
                let error = Errno.current
                if error == .crossDevice || error == .tooManyLinks {
                    throw RuntimeError(.permissionDenied, "refusing to write /proc/\(relative): something is mounted over it or it is a link")
                }
                throw RuntimeError.system("open /proc/\(relative)", error)
            }
            fd = FileDescriptor(rawValue: result)
        } else {
            fd = try step("open /proc/\(relative)") { () throws(Errno) in try root.openAt(relative, flags | O_NOFOLLOW) }
            let st = try? fd.stat()
            guard berth_fstatfs_type(fd.rawValue) == superMagic, st?.st_dev == rootStat.st_dev else {
                fd.close()
                throw RuntimeError(.permissionDenied, "refusing to write /proc/\(relative): something is mounted over it")
            }
        }
        return fd
    }
}

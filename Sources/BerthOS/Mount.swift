#if canImport(Glibc)
import Glibc
#endif
import CBerth

/// mount(2).
public func mount(source: String?, target: String, type: String?, flags: UInt, data: String? = nil) throws(Errno) {
    let result = Glibc.mount(source, target, type, flags, data)
    if result != 0 { throw Errno.current }
}

/// umount2(2).
public func unmount(_ target: String, flags: Int32 = 0) throws(Errno) {
    if Glibc.umount2(target, flags) != 0 { throw Errno.current }
}

/// statvfs(2) mount flags of the file system holding `path`: the flags a
/// bind remount inside a user namespace must keep (the kernel locks them).
public func lockedMountFlags(of path: String) -> UInt {
    var st = statvfs()
    guard statvfs(path, &st) == 0 else { return 0 }
    var flags: UInt = 0
    let f = st.f_flag
    if f & UInt(BERTH_ST_NOSUID) != 0 { flags |= UInt(MS_NOSUID) }
    if f & UInt(BERTH_ST_NODEV) != 0 { flags |= UInt(MS_NODEV) }
    if f & UInt(BERTH_ST_NOEXEC) != 0 { flags |= UInt(MS_NOEXEC) }
    if f & UInt(BERTH_ST_RDONLY) != 0 { flags |= UInt(MS_RDONLY) }
    if f & UInt(BERTH_ST_NOATIME) != 0 { flags |= UInt(MS_NOATIME) }
    if f & UInt(BERTH_ST_NODIRATIME) != 0 { flags |= UInt(MS_NODIRATIME) }
    if f & UInt(BERTH_ST_RELATIME) != 0 { flags |= UInt(MS_RELATIME) }
    return flags
}

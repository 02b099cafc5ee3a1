#if canImport(Glibc)
import Glibc
#endif
import BerthOCI
import BerthOS
import CBerth

/// Builds the container's root file system inside its new mount namespace:
/// every target is opened beneath the rootfs by the secure walker and
/// mounted through /proc/self/fd, so a symlink in the image can never
/// redirect a mount onto the host.
struct RootFilesystem {
    let bundle: LoadedBundle
    /// The container has a user namespace of its own (devices cannot be
    /// created, only bind-mounted; some file systems fall back to binds).
    let inUserNamespace: Bool
    /// The container's cgroup directory on the host (see `Cgroups.ownV2Directory`).
    let cgroupDirectory: String?
    let warn: (String) -> Void

    var spec: Spec { bundle.spec }

    static let propagation: [String: UInt] = [
        "private": UInt(MS_PRIVATE), "rprivate": UInt(MS_PRIVATE | MS_REC), "slave": UInt(MS_SLAVE),
        "rslave": UInt(MS_SLAVE | MS_REC), "shared": UInt(MS_SHARED), "rshared": UInt(MS_SHARED | MS_REC),
        "unbindable": UInt(MS_UNBINDABLE), "runbindable": UInt(MS_UNBINDABLE | MS_REC),
    ]

    /// Everything before pivot_root: propagation, the rootfs bind, the Spec's mounts, devices.
    func prepare() throws(RuntimeError) {
        let propagation = spec.linux?.rootfsPropagation.flatMap { Self.propagation[$0] } ?? UInt(MS_SLAVE | MS_REC)
        if let name = spec.linux?.rootfsPropagation, Self.propagation[name] == nil {
            throw RuntimeError(.invalidArgument, "unknown rootfsPropagation \"\(name)\"")
        }
        try step("make / \(spec.linux?.rootfsPropagation ?? "rslave")") { () throws(Errno) in
            try mount(source: nil, target: "/", type: nil, flags: propagation | UInt(MS_REC))
        }
        if let overlay = bundle.overlay {
            try overlay.mount(on: bundle.rootfs)
        } else {
            try step("bind mount rootfs \(bundle.rootfs)") { () throws(Errno) in
                try mount(source: bundle.rootfs, target: bundle.rootfs, type: nil, flags: UInt(MS_BIND | MS_REC))
            }
        }
        let root = try step("open rootfs \(bundle.rootfs)") { () throws(Errno) in try SecureRoot(path: bundle.rootfs) }
        defer { root.close() }
        try bundle.overlay?.copyUpVolumes(root: root)
        var devIsHostBind = false
        for entry in spec.mounts ?? [] {
            try mountEntry(entry, root: root)
            if entry.destination == "/dev" && MountOptions(entry.options ?? []).isBind { devIsHostBind = true }
        }
        if !devIsHostBind {
            try createDevices(root: root)
        }
        if let cwd = spec.process?.cwd, cwd != "/" {
            // runc creates a missing working directory; do it beneath the root.
            if let fd = try? root.makeDirectories(cwd, mode: 0o755) { fd.close() }
        }
    }

    func mountEntry(_ entry: BerthOCI.Mount, root: SecureRoot) throws(RuntimeError) {
        let options = MountOptions(entry.options ?? [])
        let type = entry.type ?? ""
        let destination = entry.destination
        if options.isBind || type == "bind" {
            let source = bundle.resolveSource(entry.source ?? "")
            try bindMount(source: source, destination: destination, options: options, root: root)
            return
        }
        let fsType = type == "cgroup" ? "cgroup2" : type
        if fsType == "cgroup2", let cgroupDirectory {
            // The container sees its own cgroup, as runc shows it on cgroup
            // v2: a rbind of that directory. With a cgroup namespace (rooted
            // at that cgroup) this is what a new cgroup2 mount would show,
            // at a fraction of the cost (a cgroup2 superblock mount took
            // 6-15 ms here); without one it hides the host's other groups.
            var bind = options
            bind.isBind = true
            bind.isRecursive = true
            try bindMount(source: cgroupDirectory, destination: destination, options: bind, root: root)
            return
        }
        let target = try step("create mount point \(destination)") { () throws(Errno) in try root.makeDirectories(destination) }
        defer { target.close() }
        do {
            try mount(source: entry.source ?? fsType, target: target.procPath, type: fsType, flags: options.flags, data: options.dataString)
        } catch let error where (error == .notPermitted || error == .permissionDenied || error == .invalidArgument) && (fsType == "sysfs" || fsType == "cgroup2") {
            // Without a network (sysfs) or cgroup (cgroup2) namespace of its
            // own, an unprivileged container cannot mount these: bind the
            // host's read-only instead, as runc does.
            let hostPath = fsType == "sysfs" ? "/sys" : (Cgroups.v2Mount ?? "/sys/fs/cgroup")
            var fallback = MountOptions(["rbind", "ro", "nosuid", "nodev", "noexec"])
            fallback.propagation = options.propagation
            try bindMount(source: hostPath, destination: destination, options: fallback, root: root)
            return
        } catch {
            throw RuntimeError.system("mount \(fsType) on \(destination)", error)
        }
        guard !options.propagation.isEmpty else { return }
        // Reopen: the old descriptor names the directory beneath the new mount.
        let mounted = try step("open \(destination)") { () throws(Errno) in try root.open(destination, BERTH_O_PATH) }
        defer { mounted.close() }
        for change in options.propagation {
            try step("set propagation of \(destination)") { () throws(Errno) in
                try mount(source: nil, target: mounted.procPath, type: nil, flags: change)
            }
        }
    }

    func bindMount(source: String, destination: String, options: MountOptions, root: SecureRoot) throws(RuntimeError) {
        let target = try step("create mount point \(destination)") { () throws(Errno) in
            Files.isDirectory(source) ? try root.makeDirectories(destination) : try root.makeFile(destination)
        }
        try step("bind mount \(source) on \(destination)") { () throws(Errno) in
            defer { target.close() }
            try mount(source: source, target: target.procPath, type: nil,
                      flags: UInt(MS_BIND) | (options.isRecursive ? UInt(MS_REC) : 0))
        }
        // Reopen: the old descriptor names the directory beneath the new mount.
        let mounted = try step("open \(destination)") { () throws(Errno) in try root.open(destination, BERTH_O_PATH) }
        defer { mounted.close() }
        let remount = options.bindRemountFlags
        if remount != 0 {
            let locked = lockedMountFlags(of: mounted.procPath) & ~UInt(MS_RDONLY)
            try step("remount \(destination) with \(describe(remount))") { () throws(Errno) in
                try mount(source: nil, target: mounted.procPath, type: nil,
                          flags: UInt(MS_BIND | MS_REMOUNT) | remount | locked)
            }
        }
        for change in options.propagation {
            try step("set propagation of \(destination)") { () throws(Errno) in
                try mount(source: nil, target: mounted.procPath, type: nil, flags: change)
            }
        }
    }

    func describe(_ flags: UInt) -> String {
        var names: [String] = []
        if flags & UInt(MS_RDONLY) != 0 { names.append("ro") }
        if flags & UInt(MS_NOSUID) != 0 { names.append("nosuid") }
        if flags & UInt(MS_NODEV) != 0 { names.append("nodev") }
        if flags & UInt(MS_NOEXEC) != 0 { names.append("noexec") }
        return names.isEmpty ? "flags" : names.joined(separator: ",")
    }

    static let defaultDevices: [LinuxDevice] = [
        LinuxDevice(path: "/dev/null", type: "c", major: 1, minor: 3, fileMode: 0o666),
        LinuxDevice(path: "/dev/zero", type: "c", major: 1, minor: 5, fileMode: 0o666),
        LinuxDevice(path: "/dev/full", type: "c", major: 1, minor: 7, fileMode: 0o666),
        LinuxDevice(path: "/dev/random", type: "c", major: 1, minor: 8, fileMode: 0o666),
        LinuxDevice(path: "/dev/urandom", type: "c", major: 1, minor: 9, fileMode: 0o666),
        LinuxDevice(path: "/dev/tty", type: "c", major: 5, minor: 0, fileMode: 0o666),
    ]

    /// The default devices and linux.devices; in a user namespace each is a
    /// bind mount of the host's node (mknod is not allowed there).
    func createDevices(root: SecureRoot) throws(RuntimeError) {
        var devices = Self.defaultDevices
        for device in spec.linux?.devices ?? [] {
            devices.removeAll { $0.path == device.path }
            devices.append(device)
        }
        for device in devices {
            guard device.path.hasPrefix("/dev/") else {
                throw RuntimeError(.invalidArgument, "device path \"\(device.path)\" must be under /dev")
            }
            if inUserNamespace {
                guard Files.exists(device.path) else {
                    warn("device \(device.path) does not exist on the host: skipped")
                    continue
                }
                try bindMount(source: device.path, destination: device.path, options: MountOptions(["bind"]), root: root)
                continue
            }
            var components = SecureRoot.relative(device.path).split(separator: "/").map(String.init)
            let name = components.removeLast()
            let parent = try step("create \(device.path)") { () throws(Errno) in try root.makeDirectories(components.joined(separator: "/")) }
            defer { parent.close() }
            let dirfd = try step("open \(device.path)") { () throws(Errno) in try parent.openAt(".", O_RDONLY | O_DIRECTORY) }
            defer { dirfd.close() }
            let kind: mode_t = switch device.type {
            case "b": S_IFBLK
            case "p": S_IFIFO
            default: S_IFCHR
            }
            let mode = kind | mode_t(device.fileMode ?? 0o666) & 0o7777
            let dev = berth_makedev(UInt32(device.major ?? 0), UInt32(device.minor ?? 0))
            _ = unlinkat(dirfd.rawValue, name, 0)
            if mknodat(dirfd.rawValue, name, mode, dev) != 0 {
                throw RuntimeError.system("mknod \(device.path)", Errno.current)
            }
            // mknod applies the umask; set the mode the Spec asked for.
            _ = fchmodat(dirfd.rawValue, name, mode & 0o7777, 0)
            _ = fchownat(dirfd.rawValue, name, device.uid ?? 0, device.gid ?? 0, AT_SYMLINK_NOFOLLOW)
        }
        if let dev = try? root.open("/dev", O_RDONLY | O_DIRECTORY) {
            defer { dev.close() }
            let links = [("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"), ("stdout", "/proc/self/fd/1"),
                         ("stderr", "/proc/self/fd/2"), ("core", "/proc/kcore")]
            for (name, target) in links { _ = symlinkat(target, dev.rawValue, name) }
            var st = Glibc.stat()
            if fstatat(dev.rawValue, "pts/ptmx", &st, 0) == 0 {
                _ = unlinkat(dev.rawValue, "ptmx", 0)
                _ = symlinkat("pts/ptmx", dev.rawValue, "ptmx")
            }
        }
    }

    /// A masked or read-only path, opened without following a final symlink
    /// (nil when it does not exist: nothing to protect). Mounting through
    /// the descriptor means a path swapped for a link after this check
    /// cannot redirect the mount.
    func openMaskTarget(_ path: String) throws(RuntimeError) -> (fd: FileDescriptor, isDirectory: Bool)? {
        let fd: FileDescriptor
        do {
            fd = try FileDescriptor.open(path, BERTH_O_PATH | O_NOFOLLOW)
        } catch .noSuchFile {
            return nil
        } catch {
            throw RuntimeError.system("open \(path)", error)
        }
        guard let st = try? fd.stat(), (st.st_mode & S_IFMT) != S_IFLNK else {
            fd.close()
            throw RuntimeError(.permissionDenied, "refusing to mask \(path): it is a symbolic link")
        }
        return (fd, (st.st_mode & S_IFMT) == S_IFDIR)
    }

    /// The container's /dev/null, checked to be the null device (1:3) before
    /// it is bind-mounted over masked files: a /dev/null replaced by a link
    /// or another file would otherwise expose or mask the wrong thing (the
    /// CVE-2025-31133 class).
    func verifiedNullDevice() throws(RuntimeError) -> FileDescriptor {
        let fd = try step("open /dev/null in the container") { () throws(Errno) in try FileDescriptor.open("/dev/null", BERTH_O_PATH | O_NOFOLLOW) }
        guard let st = try? fd.stat(), (st.st_mode & S_IFMT) == S_IFCHR, st.st_rdev == berth_makedev(1, 3) else {
            fd.close()
            throw RuntimeError(.permissionDenied, "refusing to mask paths with /dev/null: in the container it is not the null device (1:3)")
        }
        return fd
    }

    /// pivot_root into the rootfs and detach the old root; or, with
    /// --no-pivot, move the rootfs over / and chroot (for ramfs roots).
    func enter(noPivot: Bool) throws(RuntimeError) {
        try step("chdir to rootfs \(bundle.rootfs)") { () throws(Errno) in _ = try check(chdir(bundle.rootfs)) }
        if noPivot {
            try step("move rootfs to /") { () throws(Errno) in try mount(source: bundle.rootfs, target: "/", type: nil, flags: UInt(MS_MOVE)) }
            try step("chroot") { () throws(Errno) in _ = try check(chroot(".")) }
        } else {
            try step("pivot_root") { () throws(Errno) in _ = try check(berth_pivot_root(".", ".")) }
            // The old root is stacked on "."; make it a slave so the detach
            // below never propagates to the host, then drop it.
            try step("make old root rslave") { () throws(Errno) in try mount(source: nil, target: ".", type: nil, flags: UInt(MS_SLAVE | MS_REC)) }
            try step("detach old root") { () throws(Errno) in try unmount(".", flags: Int32(MNT_DETACH)) }
        }
        try step("chdir /") { () throws(Errno) in _ = try check(chdir("/")) }
    }

    /// After pivot_root: sysctls, read-only and masked paths, read-only root.
    func finish() throws(RuntimeError) {
        // Before readonlyPaths, which usually include /proc/sys.
        for (key, value) in (spec.linux?.sysctl ?? [:]).sorted(by: { $0.key < $1.key }) {
            guard !key.isEmpty, !key.contains(".."), !key.hasPrefix("/") else {
                throw RuntimeError(.invalidArgument, "invalid sysctl name \"\(key)\"")
            }
            // "net.ipv4.ip_forward", or the slash form for names with dots in them.
            let path = "sys/" + (key.contains("/") ? key : key.split(separator: ".").joined(separator: "/"))
            try ProcFS.write(path, value)
        }
        for path in spec.linux?.readonlyPaths ?? [] {
            guard let target = try openMaskTarget(path) else { continue }
            defer { target.fd.close() }
            try step("make \(path) read-only") { () throws(Errno) in
                try mount(source: target.fd.procPath, target: target.fd.procPath, type: nil, flags: UInt(MS_BIND | MS_REC))
                // Reopen: the descriptor names the directory beneath the new mount.
                let mounted = try FileDescriptor.open(path, BERTH_O_PATH | O_NOFOLLOW)
                defer { mounted.close() }
                let locked = lockedMountFlags(of: mounted.procPath)
                try mount(source: nil, target: mounted.procPath, type: nil, flags: UInt(MS_BIND | MS_REMOUNT | MS_RDONLY | MS_REC) | locked)
            }
        }
        let masked = spec.linux?.maskedPaths ?? []
        if !masked.isEmpty {
            let devNull = try verifiedNullDevice()
            defer { devNull.close() }
            for path in masked {
                guard let target = try openMaskTarget(path) else { continue }
                defer { target.fd.close() }
                try step("mask \(path)") { () throws(Errno) in
                    if target.isDirectory {
                        try mount(source: "tmpfs", target: target.fd.procPath, type: "tmpfs", flags: UInt(MS_RDONLY), data: "size=0k")
                    } else {
                        try mount(source: devNull.procPath, target: target.fd.procPath, type: nil, flags: UInt(MS_BIND))
                    }
                }
            }
        }
        if spec.root?.readonly == true {
            try step("remount / read-only") { () throws(Errno) in
                let locked = lockedMountFlags(of: "/")
                try mount(source: nil, target: "/", type: nil, flags: UInt(MS_BIND | MS_REMOUNT | MS_RDONLY) | locked)
            }
        }
    }
}

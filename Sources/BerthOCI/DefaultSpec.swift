/// The config.json `berth spec` writes: the runc layout (busybox-friendly
/// `sh` on a terminal, read-only root), with podman's default capability
/// set. `rootless(uid:gid:)` adapts it for an unprivileged caller.
extension Spec {
    /// The 14 capabilities Docker and podman grant by default.
    public static let defaultCapabilities = [
        "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW",
        "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE",
        "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
    ]

    public static let defaultMaskedPaths = [
        "/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
        "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware",
        "/proc/scsi", "/sys/devices/virtual/powercap",
    ]

    public static let defaultReadonlyPaths = [
        "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger",
    ]

    public static func `default`() -> Spec {
        let caps = defaultCapabilities
        var linux = Linux()
        linux.namespaces = ["pid", "network", "ipc", "uts", "mount", "cgroup"].map { LinuxNamespace(type: $0) }
        linux.maskedPaths = defaultMaskedPaths
        linux.readonlyPaths = defaultReadonlyPaths
        linux.seccomp = LinuxSeccomp.defaultProfile
        return Spec(
            process: Process(
                terminal: true,
                args: ["sh"],
                env: ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"],
                cwd: "/",
                capabilities: LinuxCapabilities(bounding: caps, effective: caps, permitted: caps),
                rlimits: [POSIXRlimit(type: "RLIMIT_NOFILE", hard: 1024, soft: 1024)],
                noNewPrivileges: true
            ),
            root: Root(path: "rootfs", readonly: true),
            hostname: "berth",
            mounts: [
                Mount(destination: "/proc", type: "proc", source: "proc"),
                Mount(destination: "/dev", type: "tmpfs", source: "tmpfs",
                      options: ["nosuid", "strictatime", "mode=755", "size=65536k"]),
                Mount(destination: "/dev/pts", type: "devpts", source: "devpts",
                      options: ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]),
                Mount(destination: "/dev/shm", type: "tmpfs", source: "shm",
                      options: ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]),
                Mount(destination: "/dev/mqueue", type: "mqueue", source: "mqueue",
                      options: ["nosuid", "noexec", "nodev"]),
                Mount(destination: "/sys", type: "sysfs", source: "sysfs",
                      options: ["nosuid", "noexec", "nodev", "ro"]),
                Mount(destination: "/sys/fs/cgroup", type: "cgroup2", source: "cgroup",
                      options: ["nosuid", "noexec", "nodev", "relatime", "ro"]),
            ],
            linux: linux
        )
    }

    /// The rootless variant, as `runc spec --rootless` makes it: a user
    /// namespace mapping the caller to root, no network or cgroup namespace,
    /// /sys bind-mounted (sysfs cannot be mounted without a network namespace
    /// of one's own), no devpts gid (group 5 is not mapped).
    public static func rootless(uid: UInt32, gid: UInt32) -> Spec {
        var spec = Spec.default()
        spec.linux?.namespaces = ["pid", "ipc", "uts", "mount", "user"].map { LinuxNamespace(type: $0) }
        spec.linux?.uidMappings = [LinuxIDMapping(containerID: 0, hostID: uid, size: 1)]
        spec.linux?.gidMappings = [LinuxIDMapping(containerID: 0, hostID: gid, size: 1)]
        spec.mounts = spec.mounts?.compactMap { mount in
            var mount = mount
            switch mount.destination {
            case "/sys":
                return Mount(destination: "/sys", type: "none", source: "/sys",
                             options: ["rbind", "nosuid", "noexec", "nodev", "ro"])
            case "/sys/fs/cgroup":
                return nil
            case "/dev/pts":
                mount.options = mount.options?.filter { $0 != "gid=5" }
                return mount
            default:
                return mount
            }
        }
        return spec
    }
}

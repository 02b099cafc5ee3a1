import Foundation
import Testing
import BerthOCI

@Suite("berth spec: the default and rootless configs")
struct DefaultSpecTests {
    static let expectedCapabilities: Set<String> = [
        "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW",
        "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE",
        "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
    ]

    @Test("the default spec is runc's layout with podman's 14 capabilities")
    func defaultSpec() throws {
        let spec = Spec.default()
        #expect(spec.ociVersion == "1.2.0")
        #expect(spec.root == Root(path: "rootfs", readonly: true))
        #expect(spec.hostname == "berth")
        let process = try #require(spec.process)
        #expect(process.args == ["sh"])
        #expect(process.terminal == true)
        #expect(process.cwd == "/")
        #expect(process.user == User(uid: 0, gid: 0))
        #expect(process.env?.contains { $0.hasPrefix("PATH=/usr/local/sbin:") } == true)
        #expect(process.noNewPrivileges == true)
        #expect(process.rlimits == [POSIXRlimit(type: "RLIMIT_NOFILE", hard: 1024, soft: 1024)])
        let caps = try #require(process.capabilities)
        #expect(Spec.defaultCapabilities.count == 14)
        #expect(Set(Spec.defaultCapabilities) == Self.expectedCapabilities)
        #expect(caps.bounding.map(Set.init) == Self.expectedCapabilities)
        #expect(caps.effective.map(Set.init) == Self.expectedCapabilities)
        #expect(caps.permitted.map(Set.init) == Self.expectedCapabilities)
        #expect(caps.inheritable == nil && caps.ambient == nil)
        #expect(!Spec.defaultCapabilities.contains("CAP_SYS_ADMIN"))

        let linux = try #require(spec.linux)
        #expect(Set(linux.namespaces?.map(\.type) ?? []) == ["pid", "network", "ipc", "uts", "mount", "cgroup"])
        #expect(linux.namespaces?.allSatisfy { $0.path == nil } == true)
        #expect(linux.uidMappings == nil && linux.gidMappings == nil)
        #expect(linux.maskedPaths?.contains("/proc/kcore") == true)
        #expect(linux.readonlyPaths?.contains("/proc/sys") == true)
        #expect(linux.resources == nil)

        let mounts = try #require(spec.mounts)
        #expect(mounts.map(\.destination) == ["/proc", "/dev", "/dev/pts", "/dev/shm", "/dev/mqueue", "/sys", "/sys/fs/cgroup"])
        let devpts = try #require(mounts.first { $0.destination == "/dev/pts" })
        #expect(devpts.options?.contains("gid=5") == true)
        #expect(devpts.options?.contains("newinstance") == true)
        let sys = try #require(mounts.first { $0.destination == "/sys" })
        #expect(sys.type == "sysfs" && sys.options?.contains("ro") == true)
        #expect(mounts.first { $0.destination == "/sys/fs/cgroup" }?.type == "cgroup2")
    }

    @Test("rootless maps the caller to root in a new user namespace", arguments: [
        (UInt32(1000), UInt32(1000)), (1001, 100), (0, 0), (4_000_000, 5),
    ])
    func rootless(uid: UInt32, gid: UInt32) throws {
        let spec = Spec.rootless(uid: uid, gid: gid)
        let linux = try #require(spec.linux)
        #expect(Set(linux.namespaces?.map(\.type) ?? []) == ["pid", "ipc", "uts", "mount", "user"])
        #expect(linux.uidMappings == [LinuxIDMapping(containerID: 0, hostID: uid, size: 1)])
        #expect(linux.gidMappings == [LinuxIDMapping(containerID: 0, hostID: gid, size: 1)])
    }

    @Test("rootless bind-mounts /sys, drops the cgroup mount and devpts gid=5, keeps the rest")
    func rootlessMounts() throws {
        let base = Spec.default()
        let spec = Spec.rootless(uid: 1000, gid: 1000)
        let mounts = try #require(spec.mounts)
        #expect(mounts.map(\.destination) == ["/proc", "/dev", "/dev/pts", "/dev/shm", "/dev/mqueue", "/sys"])
        #expect(!mounts.contains { $0.type == "cgroup2" || $0.type == "cgroup" })

        let sys = try #require(mounts.first { $0.destination == "/sys" })
        #expect(sys.type == "none" && sys.source == "/sys")
        #expect(sys.options?.contains("rbind") == true)
        #expect(sys.options?.contains("ro") == true)

        let devpts = try #require(mounts.first { $0.destination == "/dev/pts" })
        let baseDevpts = try #require(base.mounts?.first { $0.destination == "/dev/pts" })
        #expect(devpts.options == baseDevpts.options?.filter { $0 != "gid=5" })
        #expect(devpts.options?.contains("gid=5") == false)
        #expect(devpts.options?.contains("ptmxmode=0666") == true)

        for destination in ["/proc", "/dev", "/dev/shm", "/dev/mqueue"] {
            #expect(mounts.first { $0.destination == destination } == base.mounts?.first { $0.destination == destination })
        }
        #expect(spec.process == base.process, "same process, 14 capabilities")
        #expect(spec.root == base.root && spec.hostname == base.hostname)
    }

    @Test("the default spec survives a JSON round trip")
    func roundTrip() throws {
        for spec in [Spec.default(), Spec.rootless(uid: 1000, gid: 1000)] {
            let data = try JSONEncoder().encode(spec)
            #expect(try JSONDecoder().decode(Spec.self, from: data) == spec)
        }
    }
}

import Foundation
import Testing
import BerthOCI

/// A config.json as runc, podman and containerd write them, using every
/// part of the spec berth models.
let runcConfig = #"""
{
  "ociVersion": "1.0.2-dev",
  "process": {
    "terminal": false,
    "consoleSize": {"height": 24, "width": 80},
    "user": {"uid": 1000, "gid": 100, "umask": 18, "additionalGids": [10, 20], "username": "app"},
    "args": ["/bin/sh", "-c", "echo hello"],
    "env": ["PATH=/usr/bin:/bin", "TERM=xterm", "EMPTY="],
    "cwd": "/home/app",
    "capabilities": {
      "bounding": ["CAP_CHOWN", "CAP_KILL"],
      "effective": ["CAP_KILL"],
      "inheritable": [],
      "permitted": ["CAP_CHOWN", "CAP_KILL"],
      "ambient": ["CAP_KILL"]
    },
    "rlimits": [
      {"type": "RLIMIT_NOFILE", "hard": 4096, "soft": 1024},
      {"type": "RLIMIT_CORE", "hard": 18446744073709551615, "soft": 0}
    ],
    "noNewPrivileges": true,
    "apparmorProfile": "unconfined",
    "oomScoreAdj": -500,
    "selinuxLabel": "system_u:system_r:container_t:s0"
  },
  "root": {"path": "rootfs", "readonly": true},
  "hostname": "web-1",
  "domainname": "example.com",
  "mounts": [
    {"destination": "/proc", "type": "proc", "source": "proc"},
    {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
    {"destination": "/data", "type": "bind", "source": "/srv/data", "options": ["rbind", "ro", "rprivate"],
     "uidMappings": [{"containerID": 0, "hostID": 100000, "size": 65536}],
     "gidMappings": [{"containerID": 0, "hostID": 100000, "size": 65536}]}
  ],
  "hooks": {
    "prestart": [{"path": "/usr/bin/netns-setup", "args": ["netns-setup", "--up"], "env": ["A=1"], "timeout": 5}],
    "createRuntime": [{"path": "/usr/bin/hook-a"}],
    "createContainer": [{"path": "/usr/bin/hook-b", "args": ["hook-b"]}],
    "startContainer": [{"path": "/bin/true"}],
    "poststart": [{"path": "/usr/bin/notify", "timeout": 1}],
    "poststop": [{"path": "/usr/bin/cleanup"}, {"path": "/usr/bin/cleanup2"}]
  },
  "annotations": {"io.kubernetes.pod.name": "web", "org.opencontainers.image.ref.name": "latest"},
  "linux": {
    "uidMappings": [{"containerID": 0, "hostID": 1000, "size": 1}, {"containerID": 1, "hostID": 100000, "size": 65536}],
    "gidMappings": [{"containerID": 0, "hostID": 1000, "size": 1}],
    "sysctl": {"net.ipv4.ip_forward": "1", "kernel.shmmax": "4294967296"},
    "resources": {
      "devices": [{"allow": false, "access": "rwm"}, {"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rwm"}],
      "pids": {"limit": 100},
      "memory": {"limit": 536870912, "swap": -1},
      "cpu": {"shares": 1024, "quota": 50000, "period": 100000, "cpus": "0-1"}
    },
    "cgroupsPath": "/berth/web-1",
    "namespaces": [
      {"type": "pid"}, {"type": "network", "path": "/var/run/netns/web"}, {"type": "ipc"},
      {"type": "uts"}, {"type": "mount"}, {"type": "user"}, {"type": "cgroup"}
    ],
    "devices": [{"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229, "fileMode": 438, "uid": 0, "gid": 0}],
    "seccomp": {"defaultAction": "SCMP_ACT_ERRNO", "architectures": ["SCMP_ARCH_X86_64"],
                "syscalls": [{"names": ["read", "write"], "action": "SCMP_ACT_ALLOW"}]},
    "rootfsPropagation": "rslave",
    "maskedPaths": ["/proc/kcore", "/sys/firmware"],
    "readonlyPaths": ["/proc/sys"],
    "mountLabel": "system_u:object_r:container_file_t:s0",
    "intelRdt": {"closID": "guaranteed"},
    "personality": {"domain": "LINUX32"},
    "timeOffsets": {"monotonic": {"secs": 10, "nanosecs": 0}}
  }
}
"""#

func decodeSpec(_ json: String) throws -> Spec {
    try JSONDecoder().decode(Spec.self, from: Data(json.utf8))
}

@Suite("Decoding a runc-style config.json")
struct SpecDecodingTests {
    @Test("every field lands where the runtime reads it")
    func fullConfig() throws {
        let spec = try decodeSpec(runcConfig)
        #expect(spec.ociVersion == "1.0.2-dev")
        #expect(spec.hostname == "web-1")
        #expect(spec.domainname == "example.com")
        #expect(spec.root == Root(path: "rootfs", readonly: true))
        #expect(spec.annotations?["io.kubernetes.pod.name"] == "web")

        let process = try #require(spec.process)
        #expect(process.terminal == false)
        #expect(process.consoleSize?.height == 24 && process.consoleSize?.width == 80)
        #expect(process.user.uid == 1000 && process.user.gid == 100)
        #expect(process.user.umask == 0o22)
        #expect(process.user.additionalGids == [10, 20])
        #expect(process.user.username == "app")
        #expect(process.args == ["/bin/sh", "-c", "echo hello"])
        #expect(process.env?.last == "EMPTY=")
        #expect(process.cwd == "/home/app")
        #expect(process.capabilities?.bounding == ["CAP_CHOWN", "CAP_KILL"])
        #expect(process.capabilities?.inheritable == [])
        #expect(process.capabilities?.ambient == ["CAP_KILL"])
        #expect(process.rlimits == [POSIXRlimit(type: "RLIMIT_NOFILE", hard: 4096, soft: 1024),
                                    POSIXRlimit(type: "RLIMIT_CORE", hard: UInt64.max, soft: 0)])
        #expect(process.noNewPrivileges == true)
        #expect(process.apparmorProfile == "unconfined")
        #expect(process.oomScoreAdj == -500)
        #expect(process.selinuxLabel == "system_u:system_r:container_t:s0")

        let mounts = try #require(spec.mounts)
        #expect(mounts.map(\.destination) == ["/proc", "/dev", "/data"])
        #expect(mounts[0].options == nil)
        #expect(mounts[1].options == ["nosuid", "strictatime", "mode=755", "size=65536k"])
        #expect(mounts[2].type == "bind" && mounts[2].source == "/srv/data")
        #expect(mounts[2].uidMappings == [LinuxIDMapping(containerID: 0, hostID: 100000, size: 65536)])

        let hooks = try #require(spec.hooks)
        #expect(hooks.prestart == [Hook(path: "/usr/bin/netns-setup", args: ["netns-setup", "--up"], env: ["A=1"], timeout: 5)])
        #expect(hooks.createRuntime?.map(\.path) == ["/usr/bin/hook-a"])
        #expect(hooks.createContainer?.first?.args == ["hook-b"])
        #expect(hooks.startContainer?.count == 1)
        #expect(hooks.poststart?.first?.timeout == 1)
        #expect(hooks.poststop?.map(\.path) == ["/usr/bin/cleanup", "/usr/bin/cleanup2"])

        let linux = try #require(spec.linux)
        #expect(linux.uidMappings == [LinuxIDMapping(containerID: 0, hostID: 1000, size: 1),
                                      LinuxIDMapping(containerID: 1, hostID: 100000, size: 65536)])
        #expect(linux.gidMappings?.count == 1)
        #expect(linux.sysctl?["net.ipv4.ip_forward"] == "1")
        #expect(linux.cgroupsPath == "/berth/web-1")
        #expect(linux.namespaces?.map(\.type) == ["pid", "network", "ipc", "uts", "mount", "user", "cgroup"])
        #expect(linux.namespaces?[1].path == "/var/run/netns/web")
        #expect(linux.namespaces?[0].path == nil)
        #expect(linux.devices == [LinuxDevice(path: "/dev/fuse", type: "c", major: 10, minor: 229, fileMode: 0o666)].map {
            var device = $0; device.uid = 0; device.gid = 0; return device
        })
        #expect(linux.rootfsPropagation == "rslave")
        #expect(linux.maskedPaths == ["/proc/kcore", "/sys/firmware"])
        #expect(linux.readonlyPaths == ["/proc/sys"])
        #expect(linux.mountLabel == "system_u:object_r:container_file_t:s0")

        let resources = try #require(linux.resources)
        #expect(resources["pids"]?["limit"] == .number(100))
        #expect(resources["memory"]?["swap"] == .number(-1))
        #expect(resources["cpu"]?["cpus"] == .string("0-1"))
        #expect(resources["devices"] == .array([
            .object(["allow": .bool(false), "access": .string("rwm")]),
            .object(["allow": .bool(true), "type": .string("c"), "major": .number(1), "minor": .number(3), "access": .string("rwm")]),
        ]))
        #expect(linux.seccomp?.defaultAction == "SCMP_ACT_ERRNO")
        #expect(linux.seccomp?.architectures == ["SCMP_ARCH_X86_64"])
        #expect(linux.intelRdt?["closID"] == .string("guaranteed"))
        #expect(linux.personality?["domain"] == .string("LINUX32"))
        #expect(linux.timeOffsets?["monotonic"]?["secs"] == .number(10))
    }

    @Test("encoding and decoding again gives the same Spec")
    func roundTrip() throws {
        let spec = try decodeSpec(runcConfig)
        let encoded = try JSONEncoder().encode(spec)
        let again = try JSONDecoder().decode(Spec.self, from: encoded)
        #expect(again == spec)
    }

    @Test("re-encoding drops nothing the client wrote")
    func reencodingKeepsEverything() throws {
        let spec = try decodeSpec(runcConfig)
        let original = try JSONDecoder().decode(JSONValue.self, from: Data(runcConfig.utf8))
        let reencoded = try JSONDecoder().decode(JSONValue.self, from: try JSONEncoder().encode(spec))
        #expect(reencoded == original)
    }

    @Test("integers stay integers when re-encoded (no 100.0, no 1e+18)")
    func integersStayIntegers() throws {
        let spec = try decodeSpec(runcConfig)
        let text = String(decoding: try JSONEncoder().encode(spec), as: UTF8.self)
        #expect(text.contains(#""limit":100"#))
        #expect(text.contains(#""limit":536870912"#))
        #expect(text.contains(#""swap":-1"#))
        #expect(text.contains("18446744073709551615"))
        #expect(!text.contains("100.0"))
    }
}

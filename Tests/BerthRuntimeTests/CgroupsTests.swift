import Foundation
import Testing
import BerthOCI
@testable import BerthRuntime

private func resources(_ json: String) throws -> JSONValue {
    try JSONDecoder().decode(JSONValue.self, from: Data(json.utf8))
}

private func files(_ json: String) throws -> [String: String] {
    var result: [String: String] = [:]
    for write in try CgroupResources.writes(resources(json)) { result[write.file] = write.value }
    return result
}

@Suite("CgroupResources: linux.resources to cgroup v2 files")
struct CgroupResourcesTests {
    @Test("what podman and containerd send when nothing is limited writes nothing", arguments: [
        #"{"devices": [{"allow": false, "access": "rwm"}, {"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rwm"}]}"#,
        "{}", "null", #"{"pids": {"limit": 0}}"#,
        #"{"memory": {"limit": 0, "swap": 0}, "cpu": {"shares": 0, "cpus": "", "quota": 0, "period": 0}}"#,
        #"{"blockIO": {"weight": 0}, "hugepageLimits": [], "network": {}}"#,
    ])
    func nothing(json: String) throws {
        #expect(try CgroupResources.writes(resources(json)).isEmpty)
    }

    @Test("memory: limit, reservation and swap (memory+swap on v1, swap alone on v2)")
    func memory() throws {
        #expect(try files(#"{"memory": {"limit": 67108864, "reservation": 33554432, "swap": 100663296}}"#) ==
                ["memory.max": "67108864", "memory.low": "33554432", "memory.swap.max": "33554432"])
        #expect(try files(#"{"memory": {"limit": -1}}"#) == ["memory.max": "max", "memory.swap.max": "max"])
        #expect(try files(#"{"memory": {"limit": 1048576, "swap": -1}}"#) == ["memory.max": "1048576", "memory.swap.max": "max"])
        #expect(try files(#"{"memory": {"limit": 1048576, "swap": 1048576}}"#) == ["memory.max": "1048576", "memory.swap.max": "0"])
    }

    @Test("swap below the memory limit, or without one, is refused")
    func swapErrors() throws {
        #expect(throws: RuntimeError.self) { try CgroupResources.writes(resources(#"{"memory": {"swap": 1048576}}"#)) }
        #expect(throws: RuntimeError.self) { try CgroupResources.writes(resources(#"{"memory": {"limit": 2097152, "swap": 1048576}}"#)) }
        // update --memory-swap alone: the group's current limit counts.
        let writes = try CgroupResources.writes(resources(#"{"memory": {"swap": 3145728}}"#), currentMemoryLimit: 1048576)
        #expect(writes.map(\.value) == ["2097152"])
    }

    @Test("cpu: shares to weight with runc's formula, quota/period to cpu.max, cpuset, idle, burst")
    func cpu() throws {
        #expect(CgroupResources.cpuWeight(shares: 2) == 1)
        #expect(CgroupResources.cpuWeight(shares: 1024) == 39)
        #expect(CgroupResources.cpuWeight(shares: 262_144) == 10_000)
        #expect(try files(#"{"cpu": {"shares": 512, "quota": 50000, "period": 100000, "cpus": "0-1", "mems": "0", "idle": 1, "burst": 1000}}"#) ==
                ["cpu.weight": "20", "cpu.max": "50000 100000", "cpuset.cpus": "0-1", "cpuset.mems": "0", "cpu.idle": "1", "cpu.max.burst": "1000"])
        #expect(try files(#"{"cpu": {"quota": -1, "period": 50000}}"#) == ["cpu.max": "max 50000"])
        #expect(try files(#"{"cpu": {"quota": 20000}}"#) == ["cpu.max": "20000"])
    }

    @Test("containerd's cpu.shares 1024 is a default, dropped where the cpu controller is missing; other shares are limits")
    func defaultShares() throws {
        #expect(try CgroupResources.writes(resources(#"{"cpu": {"shares": 1024}}"#)).map(\.onlyDefault) == [true])
        #expect(try CgroupResources.writes(resources(#"{"cpu": {"shares": 512}}"#)).map(\.onlyDefault) == [false])
    }

    @Test("pids, io and hugetlb")
    func others() throws {
        #expect(try files(#"{"pids": {"limit": 32}}"#) == ["pids.max": "32"])
        #expect(try files(#"{"pids": {"limit": -1}}"#) == ["pids.max": "max"])
        let io = try CgroupResources.writes(resources(#"{"blockIO": {"weight": 500, "throttleWriteBpsDevice": [{"major": 7, "minor": 0, "rate": 1048576}], "throttleReadIOPSDevice": [{"major": 7, "minor": 0, "rate": 0}]}}"#))
        #expect(io.map(\.value) == ["500", "7:0 wbps=1048576", "7:0 riops=max"])
        #expect(io[0].alternatives.map(\.file) == ["io.bfq.weight", "io.weight"])
        #expect(io[0].alternatives[1].value == String(CgroupResources.ioWeight(blkio: 500)))
        #expect(CgroupResources.ioWeight(blkio: 10) == 1 && CgroupResources.ioWeight(blkio: 1000) == 10_000)
        #expect(try files(#"{"hugepageLimits": [{"pageSize": "2MB", "limit": 4194304}]}"#) == ["hugetlb.2MB.max": "4194304"])
    }

    @Test("the unified map is written verbatim, last")
    func unified() throws {
        let writes = try CgroupResources.writes(resources(#"{"unified": {"memory.high": "1G", "pids.max": "7"}, "pids": {"limit": 9}}"#))
        #expect(writes.map(\.file) == ["pids.max", "memory.high", "pids.max"])
        #expect(writes.last?.value == "7")
    }

    @Test("settings cgroup v2 cannot express are refused, naming the field", arguments: [
        ("memory.disableOOMKiller", #"{"memory": {"disableOOMKiller": true}}"#),
        ("memory.kernel", #"{"memory": {"kernel": 1048576}}"#),
        ("memory.swappiness", #"{"memory": {"swappiness": 60}}"#),
        ("cpu.realtimeRuntime", #"{"cpu": {"realtimeRuntime": 950000}}"#),
        ("blockIO.leafWeight", #"{"blockIO": {"leafWeight": 500}}"#),
        ("network", #"{"network": {"classID": 1048577}}"#),
        ("unified.cgroup.procs", #"{"unified": {"cgroup.procs": "1"}}"#),
        ("unified.../x", #"{"unified": {"../x": "1"}}"#),
        ("pids.limit", #"{"pids": {"limit": "many"}}"#),
        ("bogus", #"{"bogus": {}}"#),
    ])
    func refused(field: String, json: String) throws {
        let value = try resources(json)
        do {
            _ = try CgroupResources.writes(value)
            Issue.record("\(json) was accepted")
        } catch {
            #expect(error.message.contains("linux.resources.\(field)"), "\(error.message)")
        }
    }

    @Test("controllers come from the file names, in order, without core files")
    func controllers() throws {
        let writes = try CgroupResources.writes(resources(#"{"memory": {"limit": 1048576}, "cpu": {"cpus": "0"}, "unified": {"cgroup.max.depth": "2"}}"#))
        #expect(CgroupResources.controllers(writes) == ["cpuset", "memory"])
    }
}

@Suite("Cgroups: where a container's group goes")
struct CgroupPathTests {
    @Test("systemd slice:prefix:name, as runc expands it")
    func systemd() throws {
        #expect(try Cgroups.systemdPath(slice: "machine.slice", prefix: "libpod", name: "abc", rootless: false) == "/machine.slice/libpod-abc.scope")
        #expect(try Cgroups.systemdPath(slice: "a-b-c.slice", prefix: "docker", name: "x", rootless: false) == "/a.slice/a-b.slice/a-b-c.slice/docker-x.scope")
        #expect(try Cgroups.systemdPath(slice: "", prefix: "", name: "x", rootless: false) == "/system.slice/x")
        #expect(try Cgroups.systemdPath(slice: "", prefix: "p", name: "x", rootless: true) == "/user.slice/p-x.scope")
        #expect(try Cgroups.systemdPath(slice: "-.slice", prefix: "p", name: "x", rootless: false) == "/p-x.scope")
        #expect(throws: RuntimeError.self) { try Cgroups.systemdPath(slice: "a--b.slice", prefix: "p", name: "x", rootless: false) }
        #expect(throws: RuntimeError.self) { try Cgroups.systemdPath(slice: "nota", prefix: "p", name: "x", rootless: false) }
    }

    @Test("cgroupsPath: absolute from the root, relative under the base, default <base>/berth/<id>")
    func paths() throws {
        #expect(try Cgroups.containerPath(id: "c1", cgroupsPath: nil, base: "/", systemd: false, rootless: false) == "/berth/c1")
        #expect(try Cgroups.containerPath(id: "c1", cgroupsPath: nil, base: "/user.slice/u", systemd: false, rootless: true) == "/user.slice/u/berth/c1")
        #expect(try Cgroups.containerPath(id: "c1", cgroupsPath: "/k8s/pod/c1", base: "/user.slice/u", systemd: false, rootless: true) == "/k8s/pod/c1")
        #expect(try Cgroups.containerPath(id: "c1", cgroupsPath: "mine/c1", base: "/d", systemd: false, rootless: true) == "/d/mine/c1")
        #expect(try Cgroups.containerPath(id: "c1", cgroupsPath: "machine.slice:libpod:c1", base: "/", systemd: true, rootless: false) == "/machine.slice/libpod-c1.scope")
        // Without --systemd-cgroup, a relative three-part path is still systemd's form (podman sends it so).
        #expect(try Cgroups.containerPath(id: "c1", cgroupsPath: "machine.slice:libpod:c1", base: "/", systemd: false, rootless: false) == "/machine.slice/libpod-c1.scope")
        for bad in ["/a/../b", "/", "a//b", "/a/./b"] {
            #expect(throws: RuntimeError.self, "\(bad)") { try Cgroups.containerPath(id: "c1", cgroupsPath: bad, base: "/", systemd: false, rootless: false) }
        }
    }
}

@Suite("ResourceFlags: berth update's flags")
struct ResourceFlagsTests {
    @Test("sizes with binary suffixes, as runc and docker read them", arguments: [
        ("1024", 1024), ("64m", 64 << 20), ("64M", 64 << 20), ("2g", 2 << 30), ("1.5g", 3 << 29), ("512kb", 512 << 10), ("-1", -1), ("10b", 10),
    ] as [(String, Int64)])
    func sizes(text: String, bytes: Int64) {
        #expect(ResourceFlags.parseBytes(text) == bytes)
    }

    @Test("bad sizes are nil", arguments: ["", "m", "12q", "-5", "1e99g"])
    func badSizes(text: String) {
        #expect(ResourceFlags.parseBytes(text) == nil)
    }

    @Test("flags override a resources file; --cpus is a quota per 100 ms")
    func merge() throws {
        var flags = ResourceFlags()
        flags.memory = "32m"
        flags.cpus = "1.5"
        flags.pidsLimit = "10"
        let merged = try flags.merged(into: resources(#"{"memory": {"limit": 1, "reservation": 7}, "blockIO": {"weight": 100}}"#))
        #expect(merged["memory"]?["limit"] == .integer(32 << 20))
        #expect(merged["memory"]?["reservation"] == .integer(7))
        #expect(merged["cpu"]?["quota"] == .integer(150_000) && merged["cpu"]?["period"] == .integer(100_000))
        #expect(merged["pids"]?["limit"] == .integer(10))
        #expect(merged["blockIO"]?["weight"] == .integer(100))
    }

    @Test("a bad flag value names the flag")
    func badFlag() {
        var flags = ResourceFlags()
        flags.memory = "lots"
        do {
            _ = try flags.merged(into: .null)
            Issue.record("accepted")
        } catch {
            #expect(error.message.contains("--memory"))
        }
    }
}

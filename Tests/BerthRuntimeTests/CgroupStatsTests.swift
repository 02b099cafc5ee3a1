import Foundation
import Testing
import BerthOS
@testable import BerthRuntime

/// `berth events` stats must parse wherever runc 1.1's `runc events` output
/// parses: runc's field names, nesting, omitempty and units.
@Suite("CgroupStats")
struct CgroupStatsTests {
    /// File contents in the formats of the kernel's cgroup-v2.rst (a 6.x
    /// kernel with memory.peak, hugetlb rsvd files and cpu burst counters).
    static let container: [String: String] = [
        "cgroup.controllers": "cpuset cpu io memory hugetlb pids rdma misc\n",
        "cgroup.procs": "4242\n4250\n4251\n",
        "cpu.stat": """
            usage_usec 1500
            user_usec 1000
            system_usec 500
            core_sched.force_idle_usec 0
            nr_periods 20
            nr_throttled 3
            throttled_usec 250
            nr_bursts 0
            burst_usec 0

            """,
        "memory.current": "8388608\n",
        "memory.max": "536870912\n",
        "memory.peak": "10485760\n",
        "memory.swap.current": "4096\n",
        "memory.swap.max": "1073741824\n",
        "memory.swap.peak": "8192\n",
        "memory.stat": """
            anon 5242880
            file 2097152
            kernel 786432
            kernel_stack 65536
            pagetables 131072
            sec_pagetables 0
            percpu 0
            sock 0
            vmalloc 0
            shmem 0
            file_mapped 1048576
            file_dirty 0
            file_writeback 0
            swapcached 0
            anon_thp 0
            inactive_anon 5177344
            active_anon 65536
            inactive_file 1572864
            active_file 524288
            unevictable 0
            slab_reclaimable 262144
            slab_unreclaimable 327680
            slab 589824
            workingset_refault_anon 0
            pgfault 4829
            pgmajfault 12

            """,
        "memory.events": "low 0\nhigh 0\nmax 12\noom 2\noom_kill 1\noom_group_kill 0\n",
        "pids.current": "3\n",
        "pids.max": "100\n",
        "io.stat": """
            8:16 rbytes=1459200 wbytes=314773504 rios=192 wios=353 dbytes=0 dios=0
            8:0 rbytes=90430464 wbytes=299008000 rios=8950 wios=1252 dbytes=50331648 dios=3021

            """,
        "hugetlb.2MB.current": "4194304\n",
        "hugetlb.2MB.max": "max\n",
        "hugetlb.2MB.events": "max 2\n",
        "hugetlb.2MB.events.local": "max 2\n",
        "hugetlb.2MB.rsvd.current": "6291456\n",
        "hugetlb.2MB.rsvd.max": "max\n",
        "hugetlb.1GB.current": "0\n",
        "hugetlb.1GB.max": "max\n",
        "hugetlb.1GB.events": "max 0\n",
        "hugetlb.1GB.events.local": "max 0\n",
        "hugetlb.1GB.rsvd.current": "0\n",
        "hugetlb.1GB.rsvd.max": "max\n",
    ]

    /// What runc prints for a cgroup with no controller files at all
    /// (keys sorted): every struct present, zero numbers omitted except the
    /// fields without omitempty, "hugetlb" an empty map, no interfaces.
    static let emptyShape = #"{"blkio":{},"cpu":{"throttling":{},"usage":{"kernel":0,"user":0}},"#
        + #""cpuset":{"cpu_exclusive":0,"mem_exclusive":0,"mem_hardwall":0,"memory_migrate":0,"memory_pressure":0,"#
        + #""memory_spread_page":0,"memory_spread_slab":0,"sched_load_balance":0,"sched_relax_domain_level":0},"#
        + #""hugetlb":{},"intel_rdt":{},"memory":{"kernel":{"failcnt":0,"limit":0},"kernelTCP":{"failcnt":0,"limit":0},"#
        + #""swap":{"failcnt":0,"limit":0},"usage":{"failcnt":0,"limit":0}},"network_interfaces":null,"pids":{}}"#

    static func makeDirectory(_ files: [String: String], label: String) throws -> TemporaryDirectory {
        let directory = TemporaryDirectory(label)
        for (name, contents) in files { try Files.write(directory.subpath(name), contents) }
        return directory
    }

    static func sortedJSON(_ value: some Encodable) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return String(decoding: try encoder.encode(value), as: UTF8.self)
    }

    /// The stats as a parsed JSON object, the way a consumer of runc sees it.
    static func parsed(_ stats: CgroupStats) throws -> [String: Any] {
        let object = try JSONSerialization.jsonObject(with: JSONEncoder().encode(stats))
        return try #require(object as? [String: Any])
    }

    static func number(_ object: [String: Any], _ path: String) -> UInt64? {
        var current: Any? = object
        for key in path.split(separator: ".") { current = (current as? [String: Any])?[String(key)] }
        return (current as? NSNumber)?.uint64Value
    }

    static func section(_ object: [String: Any], _ path: String) -> [String: Any]? {
        var current: Any? = object
        for key in path.split(separator: ".") { current = (current as? [String: Any])?[String(key)] }
        return current as? [String: Any]
    }

    @Test("a real container's files land in runc's fields, in runc's units")
    func fullDirectory() throws {
        let directory = try Self.makeDirectory(Self.container, label: "stats-full")
        defer { directory.remove() }
        let json = try Self.parsed(CgroupStatsReader.read(directory: directory.path))

        // cpu.stat microseconds become nanoseconds; counts stay counts.
        #expect(Self.number(json, "cpu.usage.total") == 1_500_000)
        #expect(Self.number(json, "cpu.usage.user") == 1_000_000)
        #expect(Self.number(json, "cpu.usage.kernel") == 500_000)
        #expect(Self.number(json, "cpu.throttling.periods") == 20)
        #expect(Self.number(json, "cpu.throttling.throttledPeriods") == 3)
        #expect(Self.number(json, "cpu.throttling.throttledTime") == 250_000)
        let usage = try #require(Self.section(json, "cpu.usage"))
        #expect(usage["percpu"] == nil && usage["percpu_kernel"] == nil && usage["percpu_user"] == nil)

        // memory: usage/limit/peak, swap reported as memory+swap with no peak.
        #expect(Self.number(json, "memory.cache") == 2_097_152)
        #expect(Self.number(json, "memory.usage.usage") == 8_388_608)
        #expect(Self.number(json, "memory.usage.limit") == 536_870_912)
        #expect(Self.number(json, "memory.usage.max") == 10_485_760)
        #expect(Self.number(json, "memory.usage.failcnt") == 0)
        #expect(Self.number(json, "memory.swap.usage") == 8_388_608 + 4096)
        #expect(Self.number(json, "memory.swap.limit") == 536_870_912 + 1_073_741_824)
        #expect(Self.section(json, "memory.swap")?["max"] == nil)
        #expect(Self.section(json, "memory.kernel")?.count == 2)
        let raw = try #require(Self.section(json, "memory.raw"))
        #expect(raw.count == 26)
        #expect(Self.number(json, "memory.raw.anon") == 5_242_880)
        #expect(Self.number(json, "memory.raw.pgmajfault") == 12)

        #expect(Self.number(json, "pids.current") == 3)
        #expect(Self.number(json, "pids.limit") == 100)

        // hugetlb: keyed by the kernel's size names; usage from rsvd.current,
        // failcnt from events "max"; zero usage omitted, failcnt always there.
        #expect(Self.number(json, "hugetlb.2MB.usage") == 6_291_456)
        #expect(Self.number(json, "hugetlb.2MB.failcnt") == 2)
        #expect(Self.section(json, "hugetlb.2MB")?["max"] == nil)
        #expect(Self.section(json, "hugetlb.1GB")?.keys.sorted() == ["failcnt"])
        #expect(Self.section(json, "hugetlb")?.count == 2)

        #expect(Self.section(json, "intel_rdt")?.isEmpty == true)
        #expect(json["network_interfaces"] is NSNull)
    }

    @Test("a directory with no controller files gives runc's empty shape")
    func emptyDirectory() throws {
        let directory = TemporaryDirectory("stats-empty")
        defer { directory.remove() }
        let stats = CgroupStatsReader.read(directory: directory.path)
        #expect(try Self.sortedJSON(stats) == Self.emptyShape)
        #expect(CgroupStatsReader.oomKills(directory: directory.path) == 0)
    }

    @Test("a cgroup that has vanished reads as the empty shape, not a crash")
    func missingDirectory() throws {
        let stats = CgroupStatsReader.read(directory: "/nonexistent/berth-cgroup-stats")
        #expect(try Self.sortedJSON(stats) == Self.emptyShape)
    }

    @Test("\"max\" limits: memory is UInt64.max, pids is 0 (omitted), swap stays max")
    func maxLimits() throws {
        var files = Self.container
        files["memory.max"] = "max\n"
        files["memory.swap.max"] = "max\n"
        files["pids.max"] = "max\n"
        let directory = try Self.makeDirectory(files, label: "stats-max")
        defer { directory.remove() }
        let stats = CgroupStatsReader.read(directory: directory.path)
        let text = try Self.sortedJSON(stats)
        #expect(text.contains(#""usage":{"failcnt":0,"limit":18446744073709551615,"max":10485760,"usage":8388608}"#))
        #expect(text.contains(#""swap":{"failcnt":0,"limit":18446744073709551615,"usage":8392704}"#))
        #expect(text.contains(#""pids":{"current":3}"#))
        let json = try Self.parsed(stats)
        #expect(Self.number(json, "memory.usage.limit") == UInt64.max)
        #expect(Self.section(json, "pids")?["limit"] == nil)
    }

    @Test("swap limit with unlimited memory saturates at max instead of wrapping")
    func swapWithUnlimitedMemory() throws {
        var files = Self.container
        files["memory.max"] = "max\n"
        files["memory.swap.max"] = "0\n"
        let directory = try Self.makeDirectory(files, label: "stats-swap")
        defer { directory.remove() }
        let stats = CgroupStatsReader.read(directory: directory.path)
        #expect(stats.memory.swap.limit == .max)
    }

    @Test("without swap accounting, swap reports memory alone, as runc does")
    func noSwapAccounting() throws {
        var files = Self.container
        files["memory.swap.current"] = nil
        files["memory.swap.max"] = nil
        files["memory.swap.peak"] = nil
        let directory = try Self.makeDirectory(files, label: "stats-noswap")
        defer { directory.remove() }
        let stats = CgroupStatsReader.read(directory: directory.path)
        #expect(stats.memory.swap.usage == 8_388_608)
        #expect(stats.memory.swap.limit == 536_870_912)
        #expect(stats.memory.swap.max == 0)
    }

    @Test("io.stat with two devices fills both blkio tables in file order, dropping discards")
    func ioTwoDevices() throws {
        let directory = try Self.makeDirectory(["io.stat": Self.container["io.stat"] ?? ""], label: "stats-io")
        defer { directory.remove() }
        let stats = CgroupStatsReader.read(directory: directory.path)
        typealias Entry = CgroupStats.Blkio.Entry
        #expect(stats.blkio.ioServiceBytesRecursive == [
            Entry(major: 8, minor: 16, op: "Read", value: 1_459_200),
            Entry(major: 8, minor: 16, op: "Write", value: 314_773_504),
            Entry(major: 8, minor: 0, op: "Read", value: 90_430_464),
            Entry(major: 8, minor: 0, op: "Write", value: 299_008_000),
        ])
        #expect(stats.blkio.ioServicedRecursive == [
            Entry(major: 8, minor: 16, op: "Read", value: 192),
            Entry(major: 8, minor: 16, op: "Write", value: 353),
            Entry(major: 8, minor: 0, op: "Read", value: 8950),
            Entry(major: 8, minor: 0, op: "Write", value: 1252),
        ])
        let blkio = try Self.sortedJSON(stats.blkio)
        // minor 0 is omitempty in runc, so device 8:0 prints without "minor".
        #expect(blkio == #"{"ioServiceBytesRecursive":[{"major":8,"minor":16,"op":"Read","value":1459200},"#
            + #"{"major":8,"minor":16,"op":"Write","value":314773504},{"major":8,"op":"Read","value":90430464},"#
            + #"{"major":8,"op":"Write","value":299008000}],"ioServicedRecursive":[{"major":8,"minor":16,"op":"Read","value":192},"#
            + #"{"major":8,"minor":16,"op":"Write","value":353},{"major":8,"op":"Read","value":8950},"#
            + #"{"major":8,"op":"Write","value":1252}]}"#)
    }

    @Test("cpu.stat without the cpu controller: usage only, throttling empty")
    func cpuWithoutController() throws {
        let directory = try Self.makeDirectory(["cpu.stat": "usage_usec 42\nuser_usec 40\nsystem_usec 2\n"], label: "stats-cpu")
        defer { directory.remove() }
        let text = try Self.sortedJSON(CgroupStatsReader.read(directory: directory.path).cpu)
        #expect(text == #"{"throttling":{},"usage":{"kernel":2000,"total":42000,"user":40000}}"#)
    }

    @Test("without pids.current, current counts cgroup.procs lines and limit is 0")
    func pidsFromProcs() throws {
        let directory = try Self.makeDirectory(["cgroup.procs": "1\n7\n9\n12\n"], label: "stats-procs")
        defer { directory.remove() }
        let stats = CgroupStatsReader.read(directory: directory.path)
        #expect(stats.pids.current == 4)
        #expect(stats.pids.limit == 0)
    }

    @Test("memory.stat: negative counters read as 0, malformed lines skipped, raw keys sorted")
    func memoryStatParsing() throws {
        let directory = try Self.makeDirectory([
            "memory.stat": "zswap 1\nanon 10\nworkingset_nodereclaim -3\nbogus line here\nfile 5\n",
            "memory.current": "15\n", "memory.max": "max\n",
        ], label: "stats-memstat")
        defer { directory.remove() }
        let stats = CgroupStatsReader.read(directory: directory.path)
        #expect(stats.memory.raw == ["zswap": 1, "anon": 10, "workingset_nodereclaim": 0, "file": 5])
        #expect(stats.memory.cache == 5)
        let line = try CgroupEvent.stats(id: "c1", stats).jsonLine()
        #expect(line.contains(#""raw":{"anon":10,"file":5,"workingset_nodereclaim":0,"zswap":1}"#))
    }

    @Test("memory.current without memory.stat reports no memory, as runc does")
    func memoryNeedsStat() throws {
        let directory = try Self.makeDirectory(["memory.current": "15\n", "memory.max": "100\n"], label: "stats-nostat")
        defer { directory.remove() }
        #expect(CgroupStatsReader.read(directory: directory.path).memory.usage.usage == 0)
    }

    @Test("oomKills reads memory.events oom_kill")
    func oomKills() throws {
        let directory = try Self.makeDirectory(["memory.events": Self.container["memory.events"] ?? ""], label: "stats-oom")
        defer { directory.remove() }
        #expect(CgroupStatsReader.oomKills(directory: directory.path) == 1)
        try Files.write(directory.subpath("memory.events"), "low 0\nhigh 0\nmax 0\noom 0\noom_group_kill 0\n")
        #expect(CgroupStatsReader.oomKills(directory: directory.path) == 0)
    }

    @Test("an oom event has no data")
    func oomEvent() throws {
        let event = CgroupEvent.oom(id: "x")
        #expect(event.data == nil)
        #expect(try Self.sortedJSON(event) == #"{"id":"x","type":"oom"}"#)
        #expect(try event.jsonLine() == #"{"type":"oom","id":"x"}"# + "\n")
    }

    @Test("a stats event wraps the stats in data")
    func statsEvent() throws {
        let directory = TemporaryDirectory("stats-event")
        defer { directory.remove() }
        let event = CgroupEvent(type: "stats", id: "x", data: CgroupStatsReader.read(directory: directory.path))
        #expect(try Self.sortedJSON(event) == #"{"data":"# + Self.emptyShape + #","id":"x","type":"stats"}"#)
        #expect(try event.jsonLine() == #"{"type":"stats","id":"x","data":"# + Self.emptyShape + "}\n")
    }

    @Test("the full stats event is one line runc's consumers can parse")
    func fullEventLine() throws {
        let directory = try Self.makeDirectory(Self.container, label: "stats-line")
        defer { directory.remove() }
        let line = try CgroupEvent.stats(id: "web/1", CgroupStatsReader.read(directory: directory.path)).jsonLine()
        #expect(line.hasSuffix("}\n"))
        #expect(line.dropLast().contains("\n") == false)
        #expect(line.hasPrefix(#"{"type":"stats","id":"web/1","data":{"blkio":{"#))
        let object = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
        #expect(object["type"] as? String == "stats")
        let data = try #require(object["data"] as? [String: Any])
        #expect(Self.number(data, "cpu.usage.total") == 1_500_000)
    }
}

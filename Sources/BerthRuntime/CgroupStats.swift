import BerthOS
import FoundationEssentials

// `berth events` output in runc 1.1's JSON shape (types/events.go and
// events.go in opencontainers/runc), filled from cgroup v2 files the way
// runc's libcontainer/cgroups/fs2 does. Everything here mirrors encoding/json
// on runc's Go structs:
// - fields appear in Go declaration order; map keys (hugetlb, memory.raw)
//   sorted by bytes, as Go sorts them;
// - `omitempty` drops zero numbers, empty strings, empty arrays and maps, but
//   never a struct: a section whose controller is off still prints, zeroed;
// - cgroup v2 knows nothing of cpuset stats, percpu usage, kernel memory or
//   Intel RDT here, so those print runc's zero shape.

/// One line of `berth events`: runc's `types.Event`. `data` is left out
/// when nil (an "oom" event).
package struct CgroupEvent: Encodable, Sendable {
    package var type: String
    package var id: String
    package var data: CgroupStats?

    package init(type: String, id: String, data: CgroupStats? = nil) {
        self.type = type
        self.id = id
        self.data = data
    }

    package static func stats(id: String, _ stats: CgroupStats) -> CgroupEvent { CgroupEvent(type: "stats", id: id, data: stats) }
    package static func oom(id: String) -> CgroupEvent { CgroupEvent(type: "oom", id: id) }

    private enum CodingKeys: String, CodingKey { case type, id, data }

    package func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(type, forKey: .type)
        try container.encode(id, forKey: .id)
        try container.encodeIfPresent(data, forKey: .data)
    }

    /// The event as runc prints it: one line of JSON ending in a newline,
    /// "type", "id" and "data" in runc's order, "/" unescaped as Go leaves
    /// it. JSONEncoder does not keep declaration order, so keys inside
    /// "data" are sorted to keep the output stable.
    package func jsonLine() throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let text = { (value: any Encodable) throws -> String in String(decoding: try encoder.encode(value), as: UTF8.self) }
        var line = "{\"type\":\(try text(type)),\"id\":\(try text(id))"
        if let data { line += ",\"data\":\(try text(data))" }
        return line + "}\n"
    }
}

/// runc's `types.Stats`: the "data" of a stats event.
package struct CgroupStats: Encodable, Sendable {
    package var cpu = CPU()
    package var cpuset = CPUSet()
    package var memory = Memory()
    package var pids = Pids()
    package var blkio = Blkio()
    /// Keyed by page size as the kernel names it ("2MB", "1GB").
    package var hugetlb: [String: Hugetlb] = [:]

    package init() {}

    /// CPU time in nanoseconds (cgroup v2 counts microseconds).
    package struct CPU: Encodable, Sendable {
        package var usage = Usage()
        package var throttling = Throttling()

        package struct Usage: Encodable, Sendable {
            package var total: UInt64 = 0
            package var kernel: UInt64 = 0
            package var user: UInt64 = 0

            private enum CodingKeys: String, CodingKey { case total, kernel, user }

            package func encode(to encoder: any Encoder) throws {
                var container = encoder.container(keyedBy: CodingKeys.self)
                // percpu, percpu_kernel, percpu_user: cgroup v2 has no
                // per-CPU usage, so runc leaves them empty and omitted.
                try container.encodeUnlessZero(total, forKey: .total)
                try container.encode(kernel, forKey: .kernel)
                try container.encode(user, forKey: .user)
            }
        }

        package struct Throttling: Encodable, Sendable {
            package var periods: UInt64 = 0
            package var throttledPeriods: UInt64 = 0
            package var throttledTime: UInt64 = 0

            private enum CodingKeys: String, CodingKey { case periods, throttledPeriods, throttledTime }

            package func encode(to encoder: any Encoder) throws {
                var container = encoder.container(keyedBy: CodingKeys.self)
                try container.encodeUnlessZero(periods, forKey: .periods)
                try container.encodeUnlessZero(throttledPeriods, forKey: .throttledPeriods)
                try container.encodeUnlessZero(throttledTime, forKey: .throttledTime)
            }
        }
    }

    /// runc reads no cpuset stats on cgroup v2: always its zero shape
    /// (cpus and mems omitted, the counters present as 0).
    package struct CPUSet: Encodable, Sendable {
        private enum CodingKeys: String, CodingKey {
            case cpuExclusive = "cpu_exclusive", memHardwall = "mem_hardwall", memExclusive = "mem_exclusive"
            case memoryMigrate = "memory_migrate", memorySpreadPage = "memory_spread_page"
            case memorySpreadSlab = "memory_spread_slab", memoryPressure = "memory_pressure"
            case schedLoadBalance = "sched_load_balance", schedRelaxDomainLevel = "sched_relax_domain_level"
        }

        package func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            for key in [CodingKeys.cpuExclusive, .memHardwall, .memExclusive, .memoryMigrate, .memorySpreadPage,
                        .memorySpreadSlab, .memoryPressure, .schedLoadBalance, .schedRelaxDomainLevel] {
                try container.encode(0, forKey: key)
            }
        }
    }

    /// Bytes. A limit of "max" is UInt64.max (18446744073709551615).
    package struct Memory: Encodable, Sendable {
        /// memory.stat "file".
        package var cache: UInt64 = 0
        /// memory.current, memory.max, memory.peak.
        package var usage = Entry()
        /// Memory plus swap, as cgroup v1 reported it.
        package var swap = Entry()
        /// memory.stat as it stands.
        package var raw: [String: UInt64] = [:]

        package struct Entry: Encodable, Sendable {
            package var limit: UInt64 = 0
            package var usage: UInt64 = 0
            package var max: UInt64 = 0
            package var failcnt: UInt64 = 0

            private enum CodingKeys: String, CodingKey { case limit, usage, max, failcnt }

            package func encode(to encoder: any Encoder) throws {
                var container = encoder.container(keyedBy: CodingKeys.self)
                try container.encode(limit, forKey: .limit)
                try container.encodeUnlessZero(usage, forKey: .usage)
                try container.encodeUnlessZero(max, forKey: .max)
                try container.encode(failcnt, forKey: .failcnt)
            }
        }

        private enum CodingKeys: String, CodingKey { case cache, usage, swap, kernel, kernelTCP, raw }

        package func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encodeUnlessZero(cache, forKey: .cache)
            try container.encode(usage, forKey: .usage)
            try container.encode(swap, forKey: .swap)
            // cgroup v2 has no separate kernel or kernel TCP accounting.
            try container.encode(Entry(), forKey: .kernel)
            try container.encode(Entry(), forKey: .kernelTCP)
            try container.encodeSorted(raw, forKey: .raw)
        }
    }

    package struct Pids: Encodable, Sendable {
        package var current: UInt64 = 0
        /// 0 when pids.max is "max".
        package var limit: UInt64 = 0

        private enum CodingKeys: String, CodingKey { case current, limit }

        package func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encodeUnlessZero(current, forKey: .current)
            try container.encodeUnlessZero(limit, forKey: .limit)
        }
    }

    /// io.stat mapped onto cgroup v1's blkio tables; the other six v1
    /// tables (queued, service time, ...) have no v2 source and are omitted.
    package struct Blkio: Encodable, Sendable {
        /// rbytes and wbytes, as ops "Read" and "Write".
        package var ioServiceBytesRecursive: [Entry] = []
        /// rios and wios, as ops "Read" and "Write".
        package var ioServicedRecursive: [Entry] = []

        package struct Entry: Encodable, Sendable, Equatable {
            package var major: UInt64
            package var minor: UInt64
            package var op: String
            package var value: UInt64

            private enum CodingKeys: String, CodingKey { case major, minor, op, value }

            package func encode(to encoder: any Encoder) throws {
                var container = encoder.container(keyedBy: CodingKeys.self)
                try container.encodeUnlessZero(major, forKey: .major)
                try container.encodeUnlessZero(minor, forKey: .minor)
                if !op.isEmpty { try container.encode(op, forKey: .op) }
                try container.encodeUnlessZero(value, forKey: .value)
            }
        }

        private enum CodingKeys: String, CodingKey { case ioServiceBytesRecursive, ioServicedRecursive }

        package func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            if !ioServiceBytesRecursive.isEmpty { try container.encode(ioServiceBytesRecursive, forKey: .ioServiceBytesRecursive) }
            if !ioServicedRecursive.isEmpty { try container.encode(ioServicedRecursive, forKey: .ioServicedRecursive) }
        }
    }

    package struct Hugetlb: Encodable, Sendable {
        /// Bytes: hugetlb.<size>.rsvd.current, else hugetlb.<size>.current.
        package var usage: UInt64 = 0
        /// hugetlb.<size>.events "max": allocations refused at the limit.
        package var failcnt: UInt64 = 0

        private enum CodingKeys: String, CodingKey { case usage, max, failcnt }

        package func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            // "max" (peak usage) has no v2 source: always 0, so omitted.
            try container.encodeUnlessZero(usage, forKey: .usage)
            try container.encode(failcnt, forKey: .failcnt)
        }
    }

    private enum CodingKeys: String, CodingKey {
        case cpu, cpuset, memory, pids, blkio, hugetlb
        case intelRdt = "intel_rdt", networkInterfaces = "network_interfaces"
    }

    package func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(cpu, forKey: .cpu)
        try container.encode(cpuset, forKey: .cpuset)
        try container.encode(memory, forKey: .memory)
        try container.encode(pids, forKey: .pids)
        try container.encode(blkio, forKey: .blkio)
        // A Go map made with make(): "{}" when empty, never omitted.
        var sizes = container.nestedContainer(keyedBy: NameKey.self, forKey: .hugetlb)
        for size in hugetlb.keys.sorted(by: goOrder) {
            try sizes.encode(hugetlb[size], forKey: NameKey(size))
        }
        // No Intel RDT: runc's struct of omitempty pointers, "{}".
        _ = container.nestedContainer(keyedBy: NameKey.self, forKey: .intelRdt)
        // runc fills this only for libcontainer "veth" networks, which an
        // OCI bundle cannot ask for: a nil slice, "null".
        try container.encodeNil(forKey: .networkInterfaces)
    }
}

/// Reads a cgroup v2 directory into runc's stats, file by file as runc's
/// fs2 package does. Unreadable or missing files (controller not enabled,
/// cgroup gone) leave their part zero instead of failing; malformed lines
/// are skipped.
package enum CgroupStatsReader {
    /// Reads every stat available in the cgroup v2 directory (host path).
    package static func read(directory: String) -> CgroupStats {
        var stats = CgroupStats()
        readPids(directory, into: &stats.pids)
        readMemory(directory, into: &stats.memory)
        readIO(directory, into: &stats.blkio)
        readCPU(directory, into: &stats.cpu)
        readHugetlb(directory, into: &stats.hugetlb)
        return stats
    }

    /// memory.events "oom_kill": how many processes the OOM killer has
    /// killed in the cgroup (0 when the file or key is absent).
    package static func oomKills(directory: String) -> UInt64 {
        value(of: "oom_kill", inFile: directory + "/memory.events") ?? 0
    }

    /// cpu.stat exists even without the cpu controller (usage only).
    static func readCPU(_ directory: String, into cpu: inout CgroupStats.CPU) {
        for (key, value) in flatKeyed(directory + "/cpu.stat") {
            switch key {
            case "usage_usec": cpu.usage.total = nanoseconds(value)
            case "user_usec": cpu.usage.user = nanoseconds(value)
            case "system_usec": cpu.usage.kernel = nanoseconds(value)
            case "nr_periods": cpu.throttling.periods = value
            case "nr_throttled": cpu.throttling.throttledPeriods = value
            case "throttled_usec": cpu.throttling.throttledTime = nanoseconds(value)
            default: break
            }
        }
    }

    /// Without memory.stat runc reports no memory stats at all. Swap is
    /// reported as memory plus swap, as cgroup v1 did; its limit stays
    /// "max" when memory.swap.max is "max", and this sum saturates at
    /// UInt64.max where runc's Go addition would wrap.
    static func readMemory(_ directory: String, into memory: inout CgroupStats.Memory) {
        guard let text = try? Files.readString(directory + "/memory.stat") else { return }
        for (key, value) in flatKeyed(text: text) { memory.raw[key] = value }
        memory.cache = memory.raw["file"] ?? 0

        guard let usage = single(directory + "/memory.current") else { return }
        memory.usage.usage = usage
        memory.usage.limit = single(directory + "/memory.max") ?? 0
        memory.usage.max = single(directory + "/memory.peak") ?? 0

        var swap = CgroupStats.Memory.Entry()
        if let swapUsage = single(directory + "/memory.swap.current") {
            swap.usage = swapUsage
            swap.limit = single(directory + "/memory.swap.max") ?? 0
        }
        swap.usage = saturatingSum(swap.usage, memory.usage.usage)
        if swap.limit != .max { swap.limit = saturatingSum(swap.limit, memory.usage.limit) }
        memory.swap = swap
    }

    /// pids.max "max" is reported as limit 0. Without the pids controller,
    /// current is the number of lines in cgroup.procs (or cgroup.threads
    /// for a threaded cgroup).
    static func readPids(_ directory: String, into pids: inout CgroupStats.Pids) {
        if let current = single(directory + "/pids.current") {
            pids.current = current
            let limit = single(directory + "/pids.max") ?? 0
            pids.limit = limit == .max ? 0 : limit
            return
        }
        let list = (try? Files.readString(directory + "/cgroup.procs")) ?? (try? Files.readString(directory + "/cgroup.threads"))
        if let list { pids.current = UInt64(list.utf8.count(where: { $0 == UInt8(ascii: "\n") })) }
    }

    /// io.stat lines such as `8:0 rbytes=90430464 wbytes=299008000 rios=8950
    /// wios=1252 dbytes=50331648 dios=3021`; keys with no cgroup v1 table
    /// (dbytes, dios) are dropped, as runc drops them. Entries keep the
    /// file's order (runc's order across devices is Go map order, random).
    static func readIO(_ directory: String, into blkio: inout CgroupStats.Blkio) {
        guard let text = try? Files.readString(directory + "/io.stat") else { return }
        for line in text.split(separator: "\n") {
            let fields = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
            guard fields.count >= 2 else { continue }
            let device = fields[0].split(separator: ":", omittingEmptySubsequences: false)
            guard device.count == 2, let major = UInt64(device[0]), let minor = UInt64(device[1]) else { continue }
            for item in fields.dropFirst() {
                let pair = item.split(separator: "=", omittingEmptySubsequences: false)
                guard pair.count == 2, let value = UInt64(pair[1]) else { continue }
                let entry = { (op: String) in CgroupStats.Blkio.Entry(major: major, minor: minor, op: op, value: value) }
                switch pair[0] {
                case "rbytes": blkio.ioServiceBytesRecursive.append(entry("Read"))
                case "wbytes": blkio.ioServiceBytesRecursive.append(entry("Write"))
                case "rios": blkio.ioServicedRecursive.append(entry("Read"))
                case "wios": blkio.ioServicedRecursive.append(entry("Write"))
                default: continue
                }
            }
        }
    }

    /// One entry per `hugetlb.<size>.current` in the directory (runc asks
    /// /sys/kernel/mm/hugepages for the sizes; the kernel makes one file
    /// per size, so the keys agree).
    static func readHugetlb(_ directory: String, into hugetlb: inout [String: CgroupStats.Hugetlb]) {
        for name in Files.list(directory) where name.hasPrefix("hugetlb.") && name.hasSuffix(".current") {
            let size = String(name.dropFirst("hugetlb.".count).dropLast(".current".count))
            guard !size.isEmpty, !size.contains(".") else { continue }
            let prefix = directory + "/hugetlb." + size
            guard let usage = single(prefix + ".rsvd.current") ?? single(prefix + ".current") else { continue }
            hugetlb[size] = CgroupStats.Hugetlb(usage: usage, failcnt: value(of: "max", inFile: prefix + ".events") ?? 0)
        }
    }

    // MARK: - File formats

    /// A single-value file; "max" is UInt64.max.
    package static func single(_ path: String) -> UInt64? {
        guard let text = try? Files.readString(path) else { return nil }
        let trimmed = text.trimmed
        return trimmed == "max" ? .max : counter(trimmed)
    }

    /// A flat-keyed file ("key value" lines), in file order.
    static func flatKeyed(_ path: String) -> [(String, UInt64)] {
        guard let text = try? Files.readString(path) else { return [] }
        return flatKeyed(text: text)
    }

    static func flatKeyed(text: String) -> [(String, UInt64)] {
        text.split(separator: "\n").compactMap { line in
            let parts = line.split(separator: " ", omittingEmptySubsequences: false)
            guard parts.count == 2, !parts[0].isEmpty, let value = counter(parts[1]) else { return nil }
            return (String(parts[0]), value)
        }
    }

    package static func value(of key: String, inFile path: String) -> UInt64? {
        flatKeyed(path).first(where: { $0.0 == key })?.1
    }

    /// A kernel counter. Negative values (some memory.stat entries, from
    /// kernel bugs) read as 0, as runc reads them.
    static func counter(_ text: Substring) -> UInt64? {
        if let value = UInt64(text) { return value }
        let digits = text.dropFirst()
        let negative = text.first == "-" && !digits.isEmpty && digits.utf8.allSatisfy { $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }
        return negative ? 0 : nil
    }

    static func counter(_ text: String) -> UInt64? { counter(Substring(text)) }

    static func nanoseconds(_ microseconds: UInt64) -> UInt64 {
        let (product, overflow) = microseconds.multipliedReportingOverflow(by: 1000)
        return overflow ? .max : product
    }

    static func saturatingSum(_ a: UInt64, _ b: UInt64) -> UInt64 {
        let (sum, overflow) = a.addingReportingOverflow(b)
        return overflow ? .max : sum
    }
}

// MARK: - Go encoding/json helpers

/// A coding key for map entries.
private struct NameKey: CodingKey {
    var stringValue: String
    var intValue: Int? { nil }
    init(_ name: String) { stringValue = name }
    init?(stringValue: String) { self.stringValue = stringValue }
    init?(intValue: Int) { nil }
}

/// Go sorts map keys by their bytes.
private func goOrder(_ a: String, _ b: String) -> Bool { a.utf8.lexicographicallyPrecedes(b.utf8) }

extension KeyedEncodingContainer {
    /// A Go uint64 with `omitempty`.
    fileprivate mutating func encodeUnlessZero(_ value: UInt64, forKey key: Key) throws {
        if value != 0 { try encode(value, forKey: key) }
    }

    /// A Go map[string]uint64 with `omitempty`: left out when empty,
    /// otherwise keys in Go's order.
    fileprivate mutating func encodeSorted(_ map: [String: UInt64], forKey key: Key) throws {
        guard !map.isEmpty else { return }
        var nested = nestedContainer(keyedBy: NameKey.self, forKey: key)
        for name in map.keys.sorted(by: goOrder) {
            try nested.encode(map[name] ?? 0, forKey: NameKey(name))
        }
    }
}

import BerthOCI

/// One write into a cgroup v2 interface file, and the `linux.resources`
/// field it comes from (for error messages). When `alternatives` is not
/// empty, the first of them whose file exists is written instead (blkio
/// weights go to io.bfq.weight when BFQ schedules the disk, else io.weight).
struct CgroupWrite: Equatable, Sendable {
    var field: String
    var file: String
    var value: String
    var alternatives: [Alternative] = []
    /// A default rather than a limit (containerd's cpu.shares 1024): left
    /// out, not refused, where its controller is missing.
    var onlyDefault = false

    struct Alternative: Equatable, Sendable {
        var file: String
        var value: String
    }

    /// The controller that provides `file` ("memory" for memory.max); nil
    /// for the core files (cgroup.*), which every cgroup has.
    var controller: String? { Self.controller(of: file) }

    static func controller(of file: String) -> String? {
        guard let dot = file.firstIndex(of: "."), !file.hasPrefix("cgroup.") else { return nil }
        return String(file[..<dot])
    }
}

/// linux.resources in cgroup v2 terms: each setting becomes a write into
/// an interface file, converted the way runc converts cgroup v1 values
/// (Specs/cgroups.md has the table). Settings cgroup v2 cannot express are
/// errors, never dropped.
enum CgroupResources {
    /// The writes, in the order runc applies them (cpuset before cpu, the
    /// `unified` map last so it overrides). `currentMemoryLimit` is the
    /// group's memory.max, for a swap limit given without a memory limit
    /// (`update --memory-swap`); nil at creation.
    static func writes(_ resources: JSONValue?, currentMemoryLimit: Int64? = nil) throws(RuntimeError) -> [CgroupWrite] {
        guard let resources, case .object(let object) = resources else {
            if let resources, resources != .null { throw invalid("linux.resources", "must be an object") }
            return []
        }
        let known: Set<String> = ["devices", "memory", "cpu", "pids", "blockIO", "hugepageLimits", "network", "rdma", "unified"]
        for key in object.keys.sorted() where !known.contains(key) {
            throw RuntimeError(.unsupported, "linux.resources.\(key) is not a cgroup v2 resource berth knows")
        }
        var writes: [CgroupWrite] = []
        try cpu(object["cpu"], into: &writes)
        try memory(object["memory"], currentLimit: currentMemoryLimit, into: &writes)
        try pids(object["pids"], into: &writes)
        try blockIO(object["blockIO"], into: &writes)
        try hugepages(object["hugepageLimits"], into: &writes)
        try network(object["network"])
        try rdma(object["rdma"], into: &writes)
        try unified(object["unified"], into: &writes)
        return writes
    }

    /// The controllers `writes` need enabled in the parent's subtree_control.
    static func controllers(_ writes: [CgroupWrite]) -> [String] {
        var seen: [String] = []
        for write in writes {
            if let controller = write.controller, !seen.contains(controller) { seen.append(controller) }
        }
        return seen
    }

    // MARK: - conversions (runc's, so a value means the same under both runtimes)

    /// cgroup v1 cpu.shares (2..262144, default 1024) to cgroup v2
    /// cpu.weight (1..10000, default 100): runc's linear map.
    static func cpuWeight(shares: UInt64) -> UInt64 {
        let shares = min(max(shares, 2), 262_144)
        return 1 + ((shares - 2) * 9999) / 262_142
    }

    /// blkio.weight (10..1000) to io.weight (1..10000), as runc maps it.
    static func ioWeight(blkio weight: UInt64) -> UInt64 {
        let weight = min(max(weight, 10), 1000)
        return 1 + ((weight - 10) * 9999) / 990
    }

    /// OCI memory.swap is cgroup v1's memory+swap total; memory.swap.max is
    /// swap alone. -1 is unlimited, 0 unset. Returns nil for "leave alone".
    static func swapMax(swap: Int64, memory: Int64) throws(RuntimeError) -> String? {
        // Memory unlimited and swap unset: both unlimited, as on cgroup v1.
        if memory == -1 && swap == 0 { return "max" }
        if swap == -1 { return "max" }
        if swap == 0 { return nil }
        if swap < 0 { throw invalid("linux.resources.memory.swap", "\(swap) is not a limit (use -1 for unlimited)") }
        if memory <= 0 {
            throw invalid("linux.resources.memory.swap", "a swap limit needs a memory limit (memory.swap is memory+swap)")
        }
        if swap < memory {
            throw invalid("linux.resources.memory.swap", "\(swap) is below the memory limit \(memory) (memory.swap is memory+swap)")
        }
        return String(swap - memory)
    }

    // MARK: - sections

    private static func cpu(_ value: JSONValue?, into writes: inout [CgroupWrite]) throws(RuntimeError) {
        guard let cpu = try section(value, "cpu") else { return }
        if let cpus = try string(cpu["cpus"], "cpu.cpus"), !cpus.isEmpty {
            writes.append(CgroupWrite(field: "cpu.cpus", file: "cpuset.cpus", value: cpus))
        }
        if let mems = try string(cpu["mems"], "cpu.mems"), !mems.isEmpty {
            writes.append(CgroupWrite(field: "cpu.mems", file: "cpuset.mems", value: mems))
        }
        if let shares = try unsigned(cpu["shares"], "cpu.shares"), shares != 0 {
            writes.append(CgroupWrite(field: "cpu.shares", file: "cpu.weight", value: String(cpuWeight(shares: shares)), onlyDefault: shares == 1024))
        }
        let quota = try integer(cpu["quota"], "cpu.quota") ?? 0
        let period = try unsigned(cpu["period"], "cpu.period") ?? 0
        if quota != 0 || period != 0 {
            var text = quota > 0 ? String(quota) : "max"
            if period != 0 { text += " \(period)" }
            writes.append(CgroupWrite(field: quota != 0 ? "cpu.quota" : "cpu.period", file: "cpu.max", value: text))
        }
        if let burst = try unsigned(cpu["burst"], "cpu.burst") {
            writes.append(CgroupWrite(field: "cpu.burst", file: "cpu.max.burst", value: String(burst)))
        }
        if let idle = try integer(cpu["idle"], "cpu.idle"), idle != 0 {
            writes.append(CgroupWrite(field: "cpu.idle", file: "cpu.idle", value: String(idle)))
        }
        for key in ["realtimeRuntime", "realtimePeriod"] where !(cpu[key]?.isEmpty ?? true) {
            throw RuntimeError(.unsupported, "linux.resources.cpu.\(key): cgroup v2 has no real-time CPU budget (cpu.rt_* is cgroup v1 only)")
        }
    }

    private static func memory(_ value: JSONValue?, currentLimit: Int64?, into writes: inout [CgroupWrite]) throws(RuntimeError) {
        guard let memory = try section(value, "memory") else { return }
        let limit = try integer(memory["limit"], "memory.limit") ?? 0
        if let reservation = try integer(memory["reservation"], "memory.reservation"), reservation != 0 {
            writes.append(CgroupWrite(field: "memory.reservation", file: "memory.low", value: reservation < 0 ? "max" : String(reservation)))
        }
        // Swap before the limit: lowering memory.max first could push pages
        // into a swap the old swap limit no longer has room for.
        let swap = try integer(memory["swap"], "memory.swap") ?? 0
        if let swapMax = try swapMax(swap: swap, memory: limit != 0 ? limit : (currentLimit ?? 0)) {
            writes.append(CgroupWrite(field: "memory.swap", file: "memory.swap.max", value: swapMax))
        }
        if limit != 0 {
            if limit < -1 { throw invalid("linux.resources.memory.limit", "\(limit) is not a limit (use -1 for unlimited)") }
            writes.append(CgroupWrite(field: "memory.limit", file: "memory.max", value: limit == -1 ? "max" : String(limit)))
        }
        if memory["disableOOMKiller"] == .bool(true) {
            throw RuntimeError(.unsupported, "linux.resources.memory.disableOOMKiller: cgroup v2 cannot turn the OOM killer off for a group")
        }
        for key in ["kernel", "kernelTCP"] where !(memory[key]?.isEmpty ?? true) {
            throw RuntimeError(.unsupported, "linux.resources.memory.\(key): cgroup v2 has no separate kernel memory limit (kernel memory counts in memory.max)")
        }
        // docker sends -1 as an unsigned 64-bit "unset".
        if let swappiness = memory["swappiness"], !swappiness.isEmpty, swappiness != .unsigned(UInt64.max), swappiness != .integer(-1) {
            throw RuntimeError(.unsupported, "linux.resources.memory.swappiness: cgroup v2 has no per-group swappiness")
        }
    }

    private static func pids(_ value: JSONValue?, into writes: inout [CgroupWrite]) throws(RuntimeError) {
        guard let pids = try section(value, "pids"), let limit = try integer(pids["limit"], "pids.limit"), limit != 0 else { return }
        writes.append(CgroupWrite(field: "pids.limit", file: "pids.max", value: limit < 0 ? "max" : String(limit)))
    }

    private static func blockIO(_ value: JSONValue?, into writes: inout [CgroupWrite]) throws(RuntimeError) {
        guard let io = try section(value, "blockIO") else { return }
        if let weight = try unsigned(io["weight"], "blockIO.weight"), weight != 0 {
            writes.append(CgroupWrite(field: "blockIO.weight", file: "io.bfq.weight", value: String(weight), alternatives: [
                .init(file: "io.bfq.weight", value: String(weight)), .init(file: "io.weight", value: String(ioWeight(blkio: weight))),
            ]))
        }
        if !(io["leafWeight"]?.isEmpty ?? true) {
            throw RuntimeError(.unsupported, "linux.resources.blockIO.leafWeight: cgroup v2 has no leaf weights")
        }
        for (index, device) in try array(io["weightDevice"], "blockIO.weightDevice").enumerated() {
            let field = "blockIO.weightDevice[\(index)]"
            let id = try deviceID(device, field)
            if !(device["leafWeight"]?.isEmpty ?? true) {
                throw RuntimeError(.unsupported, "linux.resources.\(field).leafWeight: cgroup v2 has no leaf weights")
            }
            guard let weight = try unsigned(device["weight"], field + ".weight"), weight != 0 else { continue }
            writes.append(CgroupWrite(field: field, file: "io.bfq.weight", value: "\(id) \(weight)", alternatives: [
                .init(file: "io.bfq.weight", value: "\(id) \(weight)"), .init(file: "io.weight", value: "\(id) \(ioWeight(blkio: weight))"),
            ]))
        }
        for (key, name) in [("throttleReadBpsDevice", "rbps"), ("throttleWriteBpsDevice", "wbps"),
                            ("throttleReadIOPSDevice", "riops"), ("throttleWriteIOPSDevice", "wiops")] {
            for (index, device) in try array(io[key], "blockIO.\(key)").enumerated() {
                let field = "blockIO.\(key)[\(index)]"
                let id = try deviceID(device, field)
                let rate = try unsigned(device["rate"], field + ".rate") ?? 0
                writes.append(CgroupWrite(field: field, file: "io.max", value: "\(id) \(name)=\(rate == 0 ? "max" : String(rate))"))
            }
        }
    }

    private static func hugepages(_ value: JSONValue?, into writes: inout [CgroupWrite]) throws(RuntimeError) {
        for (index, entry) in try array(value, "hugepageLimits").enumerated() {
            let field = "hugepageLimits[\(index)]"
            guard let size = try string(entry["pageSize"], field + ".pageSize"), !size.isEmpty,
                  size.utf8.allSatisfy({ ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x41 && $0 <= 0x5a) || ($0 >= 0x61 && $0 <= 0x7a) }) else {
                throw invalid("linux.resources.\(field).pageSize", "must be a size such as 2MB or 1GB")
            }
            let limit = try unsigned(entry["limit"], field + ".limit") ?? 0
            writes.append(CgroupWrite(field: field, file: "hugetlb.\(size).max", value: String(limit)))
        }
    }

    private static func network(_ value: JSONValue?) throws(RuntimeError) {
        guard let value, !value.isEmpty else { return }
        throw RuntimeError(.unsupported, "linux.resources.network: cgroup v2 has no net_cls or net_prio controller (mark or prioritise traffic with nftables or tc instead)")
    }

    private static func rdma(_ value: JSONValue?, into writes: inout [CgroupWrite]) throws(RuntimeError) {
        guard let rdma = try section(value, "rdma"), case .object(let devices) = rdma else { return }
        for name in devices.keys.sorted() {
            let field = "rdma.\(name)"
            guard !name.isEmpty, !name.contains(" "), !name.contains("\n") else { throw invalid("linux.resources.\(field)", "bad device name") }
            let handles = try unsigned(devices[name]?["hcaHandles"], field + ".hcaHandles")
            let objects = try unsigned(devices[name]?["hcaObjects"], field + ".hcaObjects")
            guard handles != nil || objects != nil else { continue }
            let text = "\(name) hca_handle=\(handles.map(String.init) ?? "max") hca_object=\(objects.map(String.init) ?? "max")"
            writes.append(CgroupWrite(field: field, file: "rdma.max", value: text))
        }
    }

    private static func unified(_ value: JSONValue?, into writes: inout [CgroupWrite]) throws(RuntimeError) {
        guard let unified = try section(value, "unified"), case .object(let entries) = unified else { return }
        for key in entries.keys.sorted() {
            let field = "unified.\(key)"
            guard !key.isEmpty, !key.contains("/"), !key.hasPrefix("."), key.contains(".") else {
                throw invalid("linux.resources.\(field)", "not a cgroup interface file name")
            }
            guard !["cgroup.procs", "cgroup.threads", "cgroup.kill", "cgroup.freeze"].contains(key) else {
                throw invalid("linux.resources.\(field)", "moves, kills or freezes processes, which is not a resource")
            }
            guard case .string(let text) = entries[key] else {
                throw invalid("linux.resources.\(field)", "the value must be a string")
            }
            writes.append(CgroupWrite(field: field, file: key, value: text))
        }
    }

    // MARK: - reading JSON

    private static func invalid(_ field: String, _ problem: String) -> RuntimeError {
        RuntimeError(.invalidArgument, "\(field): \(problem)")
    }

    private static func section(_ value: JSONValue?, _ name: String) throws(RuntimeError) -> JSONValue? {
        guard let value, value != .null else { return nil }
        guard case .object = value else { throw invalid("linux.resources.\(name)", "must be an object") }
        return value
    }

    private static func array(_ value: JSONValue?, _ name: String) throws(RuntimeError) -> [JSONValue] {
        guard let value, value != .null else { return [] }
        guard case .array(let entries) = value else { throw invalid("linux.resources.\(name)", "must be an array") }
        return entries
    }

    private static func integer(_ value: JSONValue?, _ name: String) throws(RuntimeError) -> Int64? {
        switch value {
        case nil, .null?: return nil
        case .integer(let number)?: return number
        case .unsigned(let number)?: return number > UInt64(Int64.max) ? -1 : Int64(number)
        case .number(let number)? where number == number.rounded() && abs(number) < 9.2e18: return Int64(number)
        default: throw invalid("linux.resources.\(name)", "must be a whole number")
        }
    }

    private static func unsigned(_ value: JSONValue?, _ name: String) throws(RuntimeError) -> UInt64? {
        switch value {
        case nil, .null?: return nil
        case .integer(let number)? where number >= 0: return UInt64(number)
        case .unsigned(let number)?: return number
        case .number(let number)? where number >= 0 && number == number.rounded() && number < 1.8e19: return UInt64(number)
        default: throw invalid("linux.resources.\(name)", "must be a whole number of at least 0")
        }
    }

    private static func string(_ value: JSONValue?, _ name: String) throws(RuntimeError) -> String? {
        switch value {
        case nil, .null?: return nil
        case .string(let text)?:
            guard !text.contains("\n") else { throw invalid("linux.resources.\(name)", "must be one line") }
            return text
        default: throw invalid("linux.resources.\(name)", "must be a string")
        }
    }

    private static func deviceID(_ device: JSONValue, _ field: String) throws(RuntimeError) -> String {
        guard let major = try integer(device["major"], field + ".major"), let minor = try integer(device["minor"], field + ".minor"),
              major >= 0, minor >= 0 else {
            throw invalid("linux.resources.\(field)", "needs a major and a minor device number")
        }
        return "\(major):\(minor)"
    }
}

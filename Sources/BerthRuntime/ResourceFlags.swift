import BerthOCI

/// `berth update`'s flags (runc's, plus docker's --cpus), turned into a
/// linux.resources object. Each flag overrides the same field of a
/// `--resources` file.
public struct ResourceFlags: Sendable {
    public var memory: String?
    public var memoryReservation: String?
    public var memorySwap: String?
    public var cpuShares: String?
    public var cpuQuota: String?
    public var cpuPeriod: String?
    public var cpuBurst: String?
    public var cpuRtPeriod: String?
    public var cpuRtRuntime: String?
    public var cpus: String?
    public var cpusetCpus: String?
    public var cpusetMems: String?
    public var pidsLimit: String?
    public var blkioWeight: String?

    public init() {}

    /// `base` (a resources file, or {}) with every given flag set in it.
    public func merged(into base: JSONValue) throws(RuntimeError) -> JSONValue {
        var resources: [String: JSONValue] = [:]
        switch base {
        case .null: break
        case .object(let object): resources = object
        default: throw RuntimeError(.invalidArgument, "--resources: expected a JSON object (runtime-spec linux.resources)")
        }
        func set(_ section: String, _ key: String, _ value: JSONValue) {
            var object: [String: JSONValue] = [:]
            if case .object(let existing)? = resources[section] { object = existing }
            object[key] = value
            resources[section] = .object(object)
        }
        func bytes(_ text: String?, _ flag: String) throws(RuntimeError) -> JSONValue? {
            guard let text else { return nil }
            guard let value = Self.parseBytes(text) else {
                throw RuntimeError(.invalidArgument, "--\(flag) \"\(text)\": expected a size such as 512m or 2g, or -1 for unlimited")
            }
            return .integer(value)
        }
        func number(_ text: String?, _ flag: String, signed: Bool = false) throws(RuntimeError) -> JSONValue? {
            guard let text else { return nil }
            guard let value = Int64(text), signed || value >= 0 else {
                throw RuntimeError(.invalidArgument, "--\(flag) \"\(text)\": expected a whole number\(signed ? "" : " of at least 0")")
            }
            return .integer(value)
        }
        if let value = try bytes(memory, "memory") { set("memory", "limit", value) }
        if let value = try bytes(memoryReservation, "memory-reservation") { set("memory", "reservation", value) }
        if let value = try bytes(memorySwap, "memory-swap") { set("memory", "swap", value) }
        if let value = try number(cpuShares, "cpu-share") { set("cpu", "shares", value) }
        if let value = try number(cpuQuota, "cpu-quota", signed: true) { set("cpu", "quota", value) }
        if let value = try number(cpuPeriod, "cpu-period") { set("cpu", "period", value) }
        if let value = try number(cpuBurst, "cpu-burst") { set("cpu", "burst", value) }
        if let value = try number(cpuRtPeriod, "cpu-rt-period") { set("cpu", "realtimePeriod", value) }
        if let value = try number(cpuRtRuntime, "cpu-rt-runtime", signed: true) { set("cpu", "realtimeRuntime", value) }
        if let cpus {
            // docker's --cpus: a quota of that many CPUs per 100 ms period.
            guard let count = Double(cpus), count > 0, count <= 1_000_000 else {
                throw RuntimeError(.invalidArgument, "--cpus \"\(cpus)\": expected a number of CPUs above 0, such as 1.5")
            }
            set("cpu", "period", .integer(100_000))
            set("cpu", "quota", .integer(Int64((count * 100_000).rounded())))
        }
        if let cpusetCpus { set("cpu", "cpus", .string(cpusetCpus)) }
        if let cpusetMems { set("cpu", "mems", .string(cpusetMems)) }
        if let value = try number(pidsLimit, "pids-limit", signed: true) { set("pids", "limit", value) }
        if let value = try number(blkioWeight, "blkio-weight") { set("blockIO", "weight", value) }
        return .object(resources)
    }

    /// "512m", "2G", "1024", "1.5g", "-1": bytes with binary suffixes
    /// (k, m, g, t, with an optional b), as runc and docker read them.
    public static func parseBytes(_ text: String) -> Int64? {
        if text == "-1" { return -1 }
        var digits = Substring(text.lowercased())
        if digits.hasSuffix("b") && digits.count > 1 && !(digits.dropLast().last?.isNumber ?? true) { digits = digits.dropLast() }
        var multiplier: Double = 1
        if let last = digits.last, let power = ["k": 1, "m": 2, "g": 3, "t": 4, "p": 5][String(last)] {
            multiplier = Double(1 << (10 * power))
            digits = digits.dropLast()
        } else if digits.last == "b" {
            digits = digits.dropLast()
        }
        guard let value = Double(digits), value >= 0, value.isFinite else { return nil }
        let bytes = (value * multiplier).rounded(.down)
        return bytes < 9.2e18 ? Int64(bytes) : nil
    }
}

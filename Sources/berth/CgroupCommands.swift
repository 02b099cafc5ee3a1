#if canImport(Glibc)
import Glibc
#endif
import ArgumentParser
import BerthOCI
import BerthOS
import BerthRuntime
import FoundationEssentials

struct PauseCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "pause", abstract: "Freeze every process of a container (cgroup.freeze).")
    @Argument(help: "The container id.") var id: String
    func run() throws { try Operations.pause(id, paths: globalOptions.paths) }
}

struct ResumeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "resume", abstract: "Thaw a paused container.")
    @Argument(help: "The container id.") var id: String
    func run() throws { try Operations.resume(id, paths: globalOptions.paths) }
}

struct UpdateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "update", abstract: "Change a running container's cgroup limits.",
        discussion: "Sizes take k, m, g, t suffixes (binary); -1 is unlimited. Flags override the same fields of --resources."
    )
    @Option(name: [.short, .long], help: "A JSON file with runtime-spec linux.resources, or - for stdin.") var resources: String?
    @Option(name: .customLong("memory"), help: "Memory limit (memory.max).") var memory: String?
    @Option(name: .customLong("memory-reservation"), help: "Memory protection (memory.low).") var memoryReservation: String?
    @Option(name: .customLong("memory-swap"), help: "Memory plus swap limit (cgroup v1 semantics; -1 unlimited).") var memorySwap: String?
    @Option(name: .customLong("cpu-share"), help: "cgroup v1 CPU shares, converted to cpu.weight.") var cpuShares: String?
    @Option(name: .customLong("cpu-quota"), help: "CPU time in microseconds per period (cpu.max).") var cpuQuota: String?
    @Option(name: .customLong("cpu-period"), help: "CPU period in microseconds (cpu.max).") var cpuPeriod: String?
    @Option(name: .customLong("cpu-burst"), help: "CPU burst in microseconds (cpu.max.burst).") var cpuBurst: String?
    @Option(name: .customLong("cpu-rt-period"), help: "Refused: cgroup v2 has no real-time budget.") var cpuRtPeriod: String?
    @Option(name: .customLong("cpu-rt-runtime"), help: "Refused: cgroup v2 has no real-time budget.") var cpuRtRuntime: String?
    @Option(name: .customLong("cpus"), help: "Number of CPUs of time (docker's --cpus: quota per 100 ms period).") var cpus: String?
    @Option(name: .customLong("cpuset-cpus"), help: "CPUs the container may run on (cpuset.cpus).") var cpusetCpus: String?
    @Option(name: .customLong("cpuset-mems"), help: "Memory nodes (cpuset.mems).") var cpusetMems: String?
    @Option(name: .customLong("pids-limit"), help: "Maximum number of processes (pids.max; -1 unlimited).") var pidsLimit: String?
    @Option(name: .customLong("blkio-weight"), help: "Block I/O weight 10-1000 (io.bfq.weight or io.weight).") var blkioWeight: String?
    @Option(name: .customLong("l3-cache-schema"), help: "Refused: berth has no Intel RDT support.") var l3CacheSchema: String?
    @Option(name: .customLong("mem-bw-schema"), help: "Refused: berth has no Intel RDT support.") var memBwSchema: String?
    @Argument(help: "The container id.") var id: String

    func run() throws {
        if l3CacheSchema != nil || memBwSchema != nil {
            throw RuntimeError(.unsupported, "--l3-cache-schema and --mem-bw-schema need Intel RDT (resctrl), which berth does not support")
        }
        var base = JSONValue.null
        if let resources {
            let bytes: [UInt8]
            do {
                bytes = resources == "-" ? try FileDescriptor.standardInput.readAll() : try Files.read(resources)
            } catch {
                throw RuntimeError(.notFound, "--resources \(resources): \(error)")
            }
            guard let value = try? JSONDecoder().decode(JSONValue.self, from: Data(bytes)) else {
                throw RuntimeError(.invalidArgument, "--resources \(resources): not valid JSON")
            }
            base = value
        }
        var flags = ResourceFlags()
        flags.memory = memory
        flags.memoryReservation = memoryReservation
        flags.memorySwap = memorySwap
        flags.cpuShares = cpuShares
        flags.cpuQuota = cpuQuota
        flags.cpuPeriod = cpuPeriod
        flags.cpuBurst = cpuBurst
        flags.cpuRtPeriod = cpuRtPeriod
        flags.cpuRtRuntime = cpuRtRuntime
        flags.cpus = cpus
        flags.cpusetCpus = cpusetCpus
        flags.cpusetMems = cpusetMems
        flags.pidsLimit = pidsLimit
        flags.blkioWeight = blkioWeight
        let merged = try flags.merged(into: base)
        guard !merged.isEmpty else { throw RuntimeError(.invalidArgument, "update: give --resources or at least one limit flag") }
        try Operations.update(id, resources: merged, paths: globalOptions.paths)
    }
}

struct EventsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "events", abstract: "Print a container's cgroup statistics and OOM events as JSON lines (runc's format)."
    )
    @Flag(help: "Print the statistics once and exit.") var stats = false
    @Option(help: "Seconds between statistics lines (also 5s, 500ms).") var interval = "5s"
    @Argument(help: "The container id.") var id: String

    func run() throws {
        guard let seconds = Self.seconds(interval), seconds > 0 else {
            throw RuntimeError(.invalidArgument, "--interval \"\(interval)\": expected a duration such as 5s or 500ms")
        }
        try Operations.events(id, once: stats, interval: seconds, paths: globalOptions.paths, output: printOut)
    }

    /// "5", "5s", "500ms", "1m": Go duration-like, as runc's --interval.
    static func seconds(_ text: String) -> Double? {
        for (suffix, scale) in [("ms", 0.001), ("s", 1.0), ("m", 60.0)] where text.hasSuffix(suffix) {
            return Double(text.dropLast(suffix.count)).map { $0 * scale }
        }
        return Double(text)
    }
}

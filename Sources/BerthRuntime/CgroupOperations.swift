#if canImport(Glibc)
import Glibc
#endif
import BerthOCI
import BerthOS
import FoundationEssentials

/// The commands that act on a container's cgroup: update, pause, resume, events.
extension Operations {
    /// The group of a live container, or an error naming why there is none.
    static func liveCgroup(_ id: String, paths: RuntimePaths, for action: String) throws(RuntimeError) -> (ContainerDirectory, ContainerRecord, String) {
        let (directory, record) = try open(id, paths: paths)
        let status = record.status(in: directory)
        guard status != .stopped else { throw RuntimeError(.invalidState, "cannot \(action) \"\(id)\": container not running") }
        guard let cgroup = record.cgroup, Files.isDirectory(cgroup) else {
            throw RuntimeError(.unsupported, "cannot \(action) \"\(id)\": it has no cgroup (no usable cgroup v2 hierarchy when it was created, or --cgroups=disabled)")
        }
        return (directory, record, cgroup)
    }

    /// `pause`: freezes every process of the container (cgroup.freeze) and
    /// returns once the kernel reports the group frozen.
    public static func pause(_ id: String, paths: RuntimePaths) throws(RuntimeError) {
        let (directory, record, cgroup) = try liveCgroup(id, paths: paths, for: "pause")
        let status = record.status(in: directory)
        guard status == .running else { throw RuntimeError(.invalidState, "cannot pause \"\(id)\": it is \(status.rawValue), not running") }
        try Cgroups.freeze(cgroup, true)
    }

    /// `resume`: thaws a paused container.
    public static func resume(_ id: String, paths: RuntimePaths) throws(RuntimeError) {
        let (directory, record, cgroup) = try liveCgroup(id, paths: paths, for: "resume")
        let status = record.status(in: directory)
        guard status == .paused else { throw RuntimeError(.invalidState, "cannot resume \"\(id)\": it is \(status.rawValue), not paused") }
        try Cgroups.freeze(cgroup, false)
    }

    /// `update`: writes new limits into the live group. `resources` is a
    /// runtime-spec linux.resources object.
    public static func update(_ id: String, resources: JSONValue, paths: RuntimePaths) throws(RuntimeError) {
        let (_, _, cgroup) = try liveCgroup(id, paths: paths, for: "update")
        if let devices = resources["devices"], !devices.isEmpty {
            throw RuntimeError(.unsupported, "linux.resources.devices cannot be changed by update (the device program is fixed at create)")
        }
        let current = Cgroups.words(cgroup + "/memory.max").first.map { $0 == "max" ? -1 : Int64($0) ?? 0 }
        let writes = try CgroupResources.writes(resources, currentMemoryLimit: current)
        let enabled = Cgroups.words(cgroup + "/cgroup.controllers")
        for write in writes {
            if let controller = write.controller, !enabled.contains(controller) {
                throw RuntimeError(.unsupported, "linux.resources.\(write.field) needs the \"\(controller)\" controller, which is not enabled for \(cgroup) (it has: \(enabled.isEmpty ? "none" : enabled.joined(separator: " ")))")
            }
        }
        if resources["memory"]?["checkBeforeUpdate"] == .bool(true),
           let limit = writes.first(where: { $0.file == "memory.max" }).flatMap({ Int64($0.value) }),
           let usage = Cgroups.words(cgroup + "/memory.current").first.flatMap({ Int64($0) }), limit < usage {
            throw RuntimeError(.invalidArgument, "linux.resources.memory.limit \(limit) is below the container's current usage \(usage) (checkBeforeUpdate)")
        }
        for write in writes { try CgroupPlan.apply(write, in: cgroup) }
    }

    /// `events`: with `once`, one stats line; otherwise a stats line every
    /// `interval` seconds and an "oom" line for each OOM kill, until the
    /// container stops. Lines are runc's JSON.
    public static func events(_ id: String, once: Bool, interval: Double, paths: RuntimePaths,
                              output: (String) -> Void) throws(RuntimeError) {
        let (directory, record, cgroup) = try liveCgroup(id, paths: paths, for: "read events of")
        func emit(_ event: CgroupEvent) {
            if let line = try? event.jsonLine() { output(String(line.dropLast())) }
        }
        func stats() { emit(CgroupEvent(type: "stats", id: id, data: CgroupStatsReader.read(directory: cgroup))) }
        if once {
            stats()
            return
        }
        var oomKills = CgroupStatsReader.oomKills(directory: cgroup)
        let events = try? FileDescriptor.open(cgroup + "/memory.events", O_RDONLY | O_CLOEXEC)
        defer { events?.close() }
        let period = max(Int64(interval * 1000), 10)
        var next = Cgroups.monotonicMilliseconds()
        while record.status(in: directory) != .stopped && Files.isDirectory(cgroup) {
            let now = Cgroups.monotonicMilliseconds()
            if now >= next {
                stats()
                next = now + period
            }
            // memory.events wakes POLLPRI pollers when a count changes.
            var buffer = [UInt8](repeating: 0, count: 512)
            if let events {
                _ = buffer.withUnsafeMutableBytes { pread(events.rawValue, $0.baseAddress, $0.count, 0) }
                var entry = pollfd(fd: events.rawValue, events: Int16(POLLPRI), revents: 0)
                _ = poll(&entry, 1, Int32(min(max(next - Cgroups.monotonicMilliseconds(), 0), 1000)))
            } else {
                usleep(UInt32(min(max(next - Cgroups.monotonicMilliseconds(), 0), 1000)) * 1000)
            }
            let kills = CgroupStatsReader.oomKills(directory: cgroup)
            if kills > oomKills {
                for _ in oomKills..<kills { emit(CgroupEvent(type: "oom", id: id, data: nil)) }
                oomKills = kills
            }
        }
    }
}

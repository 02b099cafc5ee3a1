#if canImport(Glibc)
import Glibc
#endif
import BerthOCI
import BerthOS
import FoundationEssentials

/// What berth remembers about a container between commands: written to
/// state.json in its state directory, atomically.
struct ContainerRecord: Codable, Sendable {
    var id: String
    var pid: Int32
    /// Start time of `pid` in clock ticks, so a recycled pid is never taken for the container.
    var startTime: UInt64
    var bundle: String
    var rootfs: String
    var created: String
    var owner: String
    var annotations: [String: String]?
    /// Whether the container has its own pid namespace (then "all its
    /// processes" are the processes of that namespace).
    var ownPidNamespace: Bool
    var hasTerminal: Bool?
    /// The container's cgroup v2 directory (host path), nil without one.
    var cgroup: String? = nil
    /// Parents of it that berth created, removed with it when empty.
    var cgroupParents: [String]? = nil
}

/// The on-disk state directory of one container.
struct ContainerDirectory: Sendable {
    let id: String
    let path: String

    init(paths: RuntimePaths, id: String) {
        self.id = id
        self.path = paths.directory(of: id)
    }

    var recordPath: String { path + "/state.json" }
    var configPath: String { path + "/config.json" }
    var fifoPath: String { path + "/exec.fifo" }

    /// Creates the directory; fails if the id is taken.
    func create(stateRoot: String) throws(RuntimeError) {
        do {
            try Files.makeDirectories(stateRoot, mode: 0o711)
        } catch {
            throw RuntimeError.system("create state directory \(stateRoot)", error)
        }
        if Glibc.mkdir(path, 0o711) != 0 {
            let error = Errno.current
            if error == .exists { throw RuntimeError(.exists, "container \"\(id)\" already exists") }
            throw RuntimeError.system("create state directory \(path)", error)
        }
    }

    func remove() { Files.removeTree(path) }

    var exists: Bool { Files.isDirectory(path) }

    func load() throws(RuntimeError) -> ContainerRecord {
        guard exists, let bytes = try? Files.read(recordPath) else {
            throw RuntimeError(.notFound, "container \"\(id)\" does not exist")
        }
        do {
            return try JSONDecoder().decode(ContainerRecord.self, from: Data(bytes))
        } catch {
            throw RuntimeError(.failed, "container \"\(id)\": state file \(recordPath) is damaged")
        }
    }

    func save(_ record: ContainerRecord) throws(RuntimeError) {
        let data: Data
        do { data = try JSONEncoder().encode(record) } catch { throw RuntimeError(.failed, "encode state: \(error)") }
        try step("write \(recordPath)") { () throws(Errno) in try Files.writeAtomically(recordPath, Array(data), mode: 0o600) }
    }

    func loadSpec() -> Spec? {
        guard let bytes = try? Files.read(configPath) else { return nil }
        return try? JSONDecoder().decode(Spec.self, from: Data(bytes))
    }
}

extension ContainerRecord {
    /// The live status: created while the exec fifo exists, running while
    /// the init process lives (a zombie counts as stopped), else stopped.
    func status(in directory: ContainerDirectory) -> State.Status {
        guard pid > 0, processStartTime(pid) == startTime, processState(pid) != "Z" else { return .stopped }
        if Files.exists(directory.fifoPath) { return .created }
        if let cgroup { return Cgroups.isFrozen(cgroup) ? .paused : .running }
        if processState(pid) == "T" { return .paused }
        return .running
    }

    func state(in directory: ContainerDirectory) -> State {
        let status = status(in: directory)
        var state = State(id: id, status: status, pid: status == .stopped ? 0 : pid, bundle: bundle, rootfs: rootfs,
                          created: created, owner: owner, annotations: annotations)
        if let cgroup, CgroupStatsReader.oomKills(directory: cgroup) > 0 { state.oomKilled = true }
        return state
    }
}

/// RFC 3339 with nanoseconds in UTC, as runc prints `created`.
func timestampNow() -> String {
    var ts = timespec()
    clock_gettime(CLOCK_REALTIME, &ts)
    var seconds = ts.tv_sec
    var tm = Glibc.tm()
    gmtime_r(&seconds, &tm)
    func pad(_ value: Int32, _ width: Int) -> String {
        let s = String(value)
        return String(repeating: "0", count: max(0, width - s.count)) + s
    }
    let nanos = String(ts.tv_nsec)
    return "\(tm.tm_year + 1900)-\(pad(tm.tm_mon + 1, 2))-\(pad(tm.tm_mday, 2))T\(pad(tm.tm_hour, 2)):\(pad(tm.tm_min, 2)):\(pad(tm.tm_sec, 2)).\(String(repeating: "0", count: 9 - nanos.count) + nanos)Z"
}

/// The user name for a uid, or the number.
func userName(_ uid: uid_t) -> String {
    guard let entry = getpwuid(uid), let name = entry.pointee.pw_name else { return String(uid) }
    return String(cString: name)
}

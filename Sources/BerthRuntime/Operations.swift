#if canImport(Glibc)
import Glibc
#endif
import BerthOCI
import BerthOS
import CBerth
import FoundationEssentials

/// The runc-compatible commands that act on an existing container.
public enum Operations {
    static func open(_ id: String, paths: RuntimePaths) throws(RuntimeError) -> (ContainerDirectory, ContainerRecord) {
        try RuntimePaths.validate(id: id)
        let directory = ContainerDirectory(paths: paths, id: id)
        return (directory, try directory.load())
    }

    public static func state(_ id: String, paths: RuntimePaths) throws(RuntimeError) -> State {
        let (directory, record) = try open(id, paths: paths)
        return record.state(in: directory)
    }

    /// `start`: opens the exec fifo, which releases the waiting init to exec.
    public static func start(_ id: String, paths: RuntimePaths) throws(RuntimeError) {
        let (directory, record) = try open(id, paths: paths)
        let status = record.status(in: directory)
        guard status == .created else {
            throw RuntimeError(.invalidState, "cannot start container \"\(id)\": it is \(status.rawValue), not created")
        }
        // Non-blocking open, then wait for the init's byte or its death: a
        // blocking open would hang forever if the init died just now.
        let fifo = try step("open exec fifo of \(id)") { () throws(Errno) in try FileDescriptor.open(directory.fifoPath, O_RDONLY | O_NONBLOCK) }
        let pidfd = berth_pidfd_open(record.pid)
        var fds = [pollfd(fd: fifo.rawValue, events: Int16(POLLIN), revents: 0)]
        if pidfd >= 0 { fds.append(pollfd(fd: pidfd, events: Int16(POLLIN), revents: 0)) }
        while poll(&fds, nfds_t(fds.count), -1) < 0 && Errno.current == .interrupted {}
        var byte: UInt8 = 0
        let bytes = fds[0].revents & Int16(POLLIN) != 0 && Glibc.read(fifo.rawValue, &byte, 1) == 1 ? [byte] : []
        if pidfd >= 0 { Glibc.close(pidfd) }
        fifo.close()
        _ = unlink(directory.fifoPath)
        guard !bytes.isEmpty else {
            throw RuntimeError(.failed, "cannot start container \"\(id)\": its init exited before it could start")
        }
        if let spec = directory.loadSpec() {
            try? HookRunner.run(.poststart, spec: spec, state: record.state(in: directory), warn: warn)
        }
    }

    /// `kill [--all] ID SIGNAL`.
    public static func kill(_ id: String, signal: Int32, all: Bool, paths: RuntimePaths) throws(RuntimeError) {
        let (directory, record) = try open(id, paths: paths)
        let status = record.status(in: directory)
        guard status != .stopped else {
            // containerd and podman look for "container not running".
            throw RuntimeError(.invalidState, "cannot kill \"\(id)\": container not running")
        }
        if all, let cgroup = record.cgroup {
            // Every process of the group, at once for SIGKILL (cgroup.kill).
            Cgroups.signal(cgroup, signal)
            return
        }
        if all {
            for pid in processes(of: record) where pid != record.pid { _ = Glibc.kill(pid, signal) }
        }
        if Glibc.kill(record.pid, signal) != 0 {
            throw RuntimeError.system("kill container \"\(id)\" (pid \(record.pid))", Errno.current)
        }
    }

    public static func exists(_ id: String, paths: RuntimePaths) -> Bool {
        (try? RuntimePaths.validate(id: id)) != nil && ContainerDirectory(paths: paths, id: id).exists
    }

    /// `delete [--force] ID`.
    public static func delete(_ id: String, force: Bool, paths: RuntimePaths) throws(RuntimeError) {
        try RuntimePaths.validate(id: id)
        let directory = ContainerDirectory(paths: paths, id: id)
        guard directory.exists else {
            throw RuntimeError(.notFound, "container \"\(id)\" does not exist")
        }
        guard let record = try? directory.load() else {
            // A launch that died half-way: nothing runs, remove what is left.
            directory.remove()
            return
        }
        let status = record.status(in: directory)
        if status == .running || status == .paused {
            guard force else {
                throw RuntimeError(.invalidState, "cannot delete container \"\(id)\" that is not stopped: \(status.rawValue) (use --force)")
            }
        }
        destroy(directory: directory, record: record, warn: warn)
    }

    /// Kills whatever still runs, runs poststop hooks, removes the state.
    static func destroy(directory: ContainerDirectory, record: ContainerRecord, warn: (String) -> Void) {
        if record.status(in: directory) != .stopped {
            let pidfd = berth_pidfd_open(record.pid)
            if let cgroup = record.cgroup {
                Cgroups.signal(cgroup, SIGKILL)
            } else {
                for pid in processes(of: record) where pid != record.pid { _ = Glibc.kill(pid, SIGKILL) }
            }
            _ = Glibc.kill(record.pid, SIGKILL)
            if pidfd >= 0 {
                var entry = pollfd(fd: pidfd, events: Int16(POLLIN), revents: 0)
                _ = poll(&entry, 1, 10_000)
                Glibc.close(pidfd)
            }
            // Our own child (foreground run) must be reaped too.
            _ = try? waitForProcess(record.pid, options: WNOHANG)
        }
        if let spec = directory.loadSpec() {
            var state = record.state(in: directory)
            state.status = .stopped
            try? HookRunner.run(.poststop, spec: spec, state: state, warn: warn)
        }
        if let cgroup = record.cgroup { Cgroups.remove(cgroup, createdParents: record.cgroupParents ?? []) }
        directory.remove()
    }

    /// Every process of the container: those in its cgroup (and the groups
    /// below it); without a cgroup, with a pid namespace of its own, the
    /// processes in that namespace; otherwise just its init.
    static func processes(of record: ContainerRecord) -> [pid_t] {
        if let cgroup = record.cgroup, Files.isDirectory(cgroup) { return Cgroups.allProcesses(cgroup).sorted() }
        guard processStartTime(record.pid) == record.startTime else { return [] }
        guard record.ownPidNamespace, let namespace = Files.readLink("/proc/\(record.pid)/ns/pid") else { return [record.pid] }
        var result: [pid_t] = []
        for name in Files.list("/proc") {
            guard let pid = pid_t(name) else { continue }
            if Files.readLink("/proc/\(pid)/ns/pid") == namespace { result.append(pid) }
        }
        return result.sorted()
    }

    public static func pids(_ id: String, paths: RuntimePaths) throws(RuntimeError) -> [pid_t] {
        let (directory, record) = try open(id, paths: paths)
        guard record.status(in: directory) != .stopped else { return [] }
        return processes(of: record)
    }

    /// Every container under the state root.
    public static func list(paths: RuntimePaths) -> [State] {
        Files.list(paths.stateRoot).sorted().compactMap { id in
            let directory = ContainerDirectory(paths: paths, id: id)
            guard let record = try? directory.load() else { return nil }
            return record.state(in: directory)
        }
    }
}

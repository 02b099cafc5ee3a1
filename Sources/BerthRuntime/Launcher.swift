#if canImport(Glibc)
import Glibc
#endif
import BerthOCI
import BerthOS
import CBerth
import FoundationEssentials

/// What `create` and `run` were asked to do.
public struct LaunchOptions: Sendable {
    public enum Mode: Sendable { case create, runDetached, runForeground }
    public var id: String
    public var bundle: String?
    public var pidFile: String?
    public var consoleSocket: String?
    public var noPivot = false
    public var preserveFDs = 0
    public var mode: Mode
    public var cgroupMode = CgroupMode.enabled
    /// runc's --systemd-cgroup: linux.cgroupsPath is `slice:prefix:name`.
    public var systemdCgroup = false
    /// Descriptors the container's init puts on its stdin, stdout and stderr
    /// (the engine's log pipes); nil: berth's own.
    public var stdio: [Int32]? = nil
    /// Told when a foreground run's process runs and when it has ended, and
    /// given what it writes (through `outputs` or its terminal).
    public var observer: (any LaunchObserver)? = nil
    /// Read ends the supervisor relays to the observer: stdout, then stderr.
    public var outputs: [FileDescriptor] = []
    /// With a terminal: copy berth's stdin to it (docker's -i).
    public var forwardStdin = true

    public init(id: String, bundle: String?, mode: Mode) {
        self.id = id
        self.bundle = bundle
        self.mode = mode
    }
}

/// What the engine (its foreground run, or the detached monitor) learns
/// from a foreground launch.
public protocol LaunchObserver: AnyObject, Sendable {
    /// The container's process has been exec'd.
    func started(pid: pid_t, startTime: UInt64)
    /// Output: stream 1 is stdout (and a terminal), 2 is stderr.
    func output(stream: Int, bytes: ArraySlice<UInt8>)
    /// It has exited (before the runtime state is removed).
    func finished(status: ExitStatus, oomKilled: Bool)
    /// More descriptors for the supervisor to wait on (the monitor's attach socket and clients).
    func descriptors() -> [Int32]
    /// One of them is readable; returns bytes for the process's terminal, if any.
    func ready(_ fd: Int32) -> [UInt8]?
    /// Its namespaces exist (id maps written) and it waits for berth's go (the engine starts pasta here).
    func namespacesReady(pid: pid_t) throws(RuntimeError)
    /// The supervisor passed `signal`, which berth received, on to it.
    func forwarded(signal: Int32)
}

extension LaunchObserver {
    public func descriptors() -> [Int32] { [] }
    public func ready(_ fd: Int32) -> [UInt8]? { nil }
    public func namespacesReady(pid: pid_t) throws(RuntimeError) {}
    public func forwarded(signal: Int32) {}
}

/// The parent side of a launch: validate, create the state directory,
/// clone() into the namespaces, write id maps, run the runtime's hooks,
/// record the container. On any failure it kills the child and removes
/// what it made, so bad input leaves nothing behind.
public enum Launcher {
    /// `create` and `run`. Returns the exit code for the command.
    public static func launch(_ options: LaunchOptions, paths: RuntimePaths) throws(RuntimeError) -> Int32 {
        try RuntimePaths.validate(id: options.id)
        let bundle = try LoadedBundle(path: options.bundle)
        let spec = bundle.spec
        let terminal = spec.process?.terminal == true
        if terminal && options.mode != .runForeground && options.consoleSocket == nil {
            throw RuntimeError(.invalidArgument, "process.terminal is true: --console-socket is required with create and run --detach")
        }
        if !terminal && options.consoleSocket != nil {
            throw RuntimeError(.invalidArgument, "--console-socket given but process.terminal is false in config.json")
        }
        try SealedExecutable.reexecuteIfNeeded(SealedExecutable.containerCanPtraceHost(
            capabilities: spec.process?.capabilities, ownUserNamespace: bundle.hasNewNamespace("user") || bundle.namespacePath("user") != nil))
        let rlimits = Rlimits.clamped(spec.process?.rlimits ?? [], warn: warn)
        let seccomp = try spec.linux?.seccomp.map { (profile) throws(RuntimeError) in
            try SeccompCompiler.compile(profile, cacheDirectory: paths.seccompCache)
        }
        // Decided before anything exists: a limit this host cannot apply fails here.
        let cgroupPlan = try Cgroups.plan(id: options.id, linux: spec.linux, mode: options.cgroupMode,
                                          systemdPath: options.systemdCgroup, rootless: RuntimePaths.isRootless)
        let directory = ContainerDirectory(paths: paths, id: options.id)
        try directory.create(stateRoot: paths.stateRoot)

        var child: pid_t = 0
        var cgroup: CgroupHandle? = nil
        var launched = false
        do {
            let result = try launchCreated(options, bundle: bundle, rlimits: rlimits, seccomp: seccomp, directory: directory,
                                           cgroupPlan: cgroupPlan, cgroup: &cgroup, child: &child)
            launched = true
            return result
        } catch {
            if !launched {
                if child > 0 {
                    _ = Glibc.kill(child, SIGKILL)
                    _ = try? waitForProcess(child)
                }
                cgroup?.remove()
                directory.remove()
            }
            throw error
        }
    }

    private static func launchCreated(_ options: LaunchOptions, bundle: LoadedBundle, rlimits: [POSIXRlimit], seccomp: CompiledSeccomp?,
                                      directory: ContainerDirectory, cgroupPlan: CgroupPlan, cgroup: inout CgroupHandle?,
                                      child: inout pid_t) throws(RuntimeError) -> Int32 {
        let spec = bundle.spec
        try step("write \(directory.configPath)") { () throws(Errno) in try Files.writeAtomically(directory.configPath, bundle.configBytes, mode: 0o600) }

        var execFifo: FileDescriptor? = nil
        if options.mode == .create {
            if mkfifo(directory.fifoPath, 0o622) != 0 { throw RuntimeError.system("mkfifo \(directory.fifoPath)", Errno.current) }
            // Not the umask's mode: the container's own user (any uid) writes it.
            _ = chmod(directory.fifoPath, 0o622)
            if !RuntimePaths.isRootless, let rootMapping = spec.linux?.uidMappings?.first(where: { $0.containerID == 0 }) {
                let gid = spec.linux?.gidMappings?.first(where: { $0.containerID == 0 })?.hostID ?? 0
                _ = chown(directory.fifoPath, rootMapping.hostID, gid)
            }
            execFifo = try step("open exec fifo") { () throws(Errno) in try FileDescriptor.open(directory.fifoPath, BERTH_O_PATH) }
        }
        defer { execFifo?.close() }

        // Set on berth itself, before any namespace is joined; the child inherits it.
        try ProcessSetup.applyOOMScoreAdjustment(spec.process)
        let foreground = options.mode == .runForeground
        if foreground { _ = berth_block_all_signals(nil) }

        let (parentEnd, childEnd) = try step("create sync socket") { () throws(Errno) in try makeSocketPair() }
        let channel = SyncChannel(parentEnd)
        defer { channel.close() }

        // Joining a user namespace: the parent joins it (it is single-threaded),
        // so that the namespaces clone() creates are owned by it and the
        // child may join the others that it owns.
        if let userPath = bundle.namespacePath("user") {
            let target = try step("open user namespace \(userPath)") { () throws(Errno) in try FileDescriptor.open(userPath, O_RDONLY) }
            defer { target.close() }
            if berth_setns(target.rawValue, BERTH_CLONE_NEWUSER) != 0 {
                throw RuntimeError.system("join user namespace \(userPath)", Errno.current)
            }
        }
        // Joining a pid namespace only affects children: do it here, around clone().
        var ownPidNamespace: FileDescriptor? = nil
        if let pidPath = bundle.namespacePath("pid") {
            ownPidNamespace = try step("open /proc/self/ns/pid") { () throws(Errno) in try FileDescriptor.open("/proc/self/ns/pid", O_RDONLY) }
            let target = try step("open pid namespace \(pidPath)") { () throws(Errno) in try FileDescriptor.open(pidPath, O_RDONLY) }
            defer { target.close() }
            if berth_setns(target.rawValue, BERTH_CLONE_NEWPID) != 0 {
                ownPidNamespace?.close()
                throw RuntimeError.system("join pid namespace \(pidPath)", Errno.current)
            }
        }
        cgroup = try cgroupPlan.create()
        // The container's cgroup, which /sys/fs/cgroup in it shows (see RootFilesystem).
        let needsCgroupMount = bundle.spec.mounts?.contains { $0.type == "cgroup" || $0.type == "cgroup2" } ?? false
        let cgroupDirectory = needsCgroupMount ? (cgroup?.directory ?? Cgroups.ownV2Directory) : nil
        let pid = cgroup?.fd.map { berth_clone_into_cgroup(bundle.cloneFlags, $0.rawValue) } ?? berth_clone(bundle.cloneFlags)
        if pid == 0 {
            parentEnd.close()
            ContainerInit(bundle: bundle, channel: SyncChannel(childEnd), execFifo: execFifo, rlimits: rlimits,
                          noPivot: options.noPivot, preserveFDs: options.preserveFDs, dieWithParent: foreground,
                          cgroupDirectory: cgroupDirectory, seccomp: seccomp, stdio: options.stdio).run()
        }
        let cloneError = Errno.current
        childEnd.close()
        cgroup?.closeDescriptor()
        if let ownPidNamespace {
            _ = berth_setns(ownPidNamespace.rawValue, BERTH_CLONE_NEWPID)
            ownPidNamespace.close()
        }
        if pid < 0 {
            if cgroup != nil && cloneError == .notSupported {
                throw RuntimeError(.unsupported, "clone3 with CLONE_INTO_CGROUP needs Linux 5.7 or later (or run with --cgroups=disabled)")
            }
            throw RuntimeError.system(cgroup.map { "clone into new namespaces and cgroup \($0.directory)" } ?? "clone into new namespaces", cloneError)
        }
        child = pid

        if bundle.hasNewNamespace("user") {
            try IDMapper.write(pid: pid, uidMappings: spec.linux?.uidMappings ?? [], gidMappings: spec.linux?.gidMappings ?? [])
        }
        // Before "go": the child is still dumpable, so its /proc/<pid>/ns is
        // open to helpers such as pasta that join its namespaces.
        if options.mode != .create { try options.observer?.namespacesReady(pid: pid) }
        let created = timestampNow()
        var record = ContainerRecord(
            id: options.id, pid: pid, startTime: processStartTime(pid) ?? 0, bundle: bundle.path, rootfs: bundle.rootfs,
            created: created, owner: userName(geteuid()), annotations: spec.annotations,
            ownPidNamespace: bundle.hasNewNamespace("pid"), hasTerminal: spec.process?.terminal,
            cgroup: cgroup?.directory, cgroupParents: cgroup.map { $0.createdParents }
        )
        var state = record.state(in: directory)
        state.status = .creating
        state.pid = pid
        try step("start the container's init") { () throws(Errno) in try channel.send("go:" + String(decoding: HookRunner.encode(state), as: UTF8.self)) }

        var master: FileDescriptor? = nil
        defer { master?.close() }
        // Follow the child until it is ready to exec.
        while true {
            guard let message = try? channel.receive() else {
                let description = reapDescription(pid)
                child = 0 // reaped: the cleanup must not signal a pid that may be reused
                throw RuntimeError(.failed, "container init exited before it was ready: \(description)")
            }
            if message.text == "ready" { break }
            if message.text == "hooks" {
                try HookRunner.run(.prestart, spec: spec, state: state, warn: warn)
                try HookRunner.run(.createRuntime, spec: spec, state: state, warn: warn)
                try step("resume the container's init") { () throws(Errno) in try channel.send("hooks-done") }
            } else if message.text.hasPrefix("pty:"), let fd = message.fd {
                if let socket = options.consoleSocket {
                    defer { fd.close() }
                    try sendToConsoleSocket(fd, path: socket, name: String(message.text.dropFirst(4)))
                } else {
                    master = fd
                }
            } else if message.text == "seccomp", let fd = message.fd {
                defer { fd.close() }
                try sendToSeccompListener(fd, seccomp: seccomp, state: state)
            } else if let error = RuntimeError.fromWire(message.text) {
                _ = try? waitForProcess(pid)
                child = 0 // reaped: the cleanup must not signal a pid that may be reused
                throw error
            }
        }

        record.startTime = processStartTime(pid) ?? record.startTime
        try directory.save(record)
        if let pidFile = options.pidFile {
            let file = Files.absolute(pidFile)
            try step("write pid file \(file)") { () throws(Errno) in try Files.writeAtomically(file, Array(String(pid).utf8)) }
        }
        if options.mode == .create { return 0 }

        // run: let it exec, and learn whether startContainer hooks or execve failed.
        try step("start the container's process") { () throws(Errno) in try channel.send("start") }
        if let message = try? channel.receive(), let error = RuntimeError.fromWire(message.text) {
            _ = try? waitForProcess(pid)
            child = 0 // reaped: the cleanup must not signal a pid that may be reused
            throw error
        }
        state = record.state(in: directory)
        try? HookRunner.run(.poststart, spec: spec, state: state, warn: warn)
        if options.mode == .runDetached { return 0 }
        options.observer?.started(pid: pid, startTime: record.startTime)

        // What the launch parsed and compiled is garbage now: give the heap
        // back before waiting, since this process lives as long as the container.
        _ = berth_malloc_trim()
        let status = Supervisor(pid: pid, master: master, outputs: options.outputs, observer: options.observer,
                                forwardStdin: options.forwardStdin).wait()
        let oomKilled = record.cgroup.map { CgroupStatsReader.oomKills(directory: $0) > 0 } ?? false
        options.observer?.finished(status: status, oomKilled: oomKilled)
        if let group = record.cgroup, oomKilled {
            warn("container \"\(options.id)\": the kernel's OOM killer killed a process (memory.max \(Cgroups.words(group + "/memory.max").first ?? "?"))")
        }
        Operations.destroy(directory: directory, record: record, warn: warn)
        return status.shellCode
    }

    static func reapDescription(_ pid: pid_t) -> String {
        guard let (_, status) = (try? waitForProcess(pid)) ?? nil else { return "unknown status" }
        return HookRunner.describe(status)
    }

    /// The runtime-spec's seccomp notify protocol: the container process
    /// state as JSON, with the listener fd, over a unix socket.
    static func sendToSeccompListener(_ listener: FileDescriptor, seccomp: CompiledSeccomp?, state: State) throws(RuntimeError) {
        guard let path = seccomp?.listenerPath else { return }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.withoutEscapingSlashes]
        var message: [String: JSONValue] = [
            "ociVersion": .string(Spec.version), "fds": .array([.string("seccompFd")]), "pid": .integer(Int64(state.pid)),
        ]
        if let metadata = seccomp?.listenerMetadata { message["metadata"] = .string(metadata) }
        if let data = try? encoder.encode(state), let value = try? JSONDecoder().decode(JSONValue.self, from: data) {
            message["state"] = value
        }
        let text = (try? encoder.encode(JSONValue.object(message))).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
        let socket = berth_unix_connect(path)
        if socket < 0 { throw RuntimeError.system("connect to seccomp listener \(path)", Errno.current) }
        defer { Glibc.close(socket) }
        if berth_send_fd(socket, listener.rawValue, text) != 0 {
            throw RuntimeError.system("send the seccomp listener to \(path)", Errno.current)
        }
    }

    static func sendToConsoleSocket(_ master: FileDescriptor, path: String, name: String) throws(RuntimeError) {
        let socket = berth_unix_connect(path)
        if socket < 0 { throw RuntimeError.system("connect to console socket \(path)", Errno.current) }
        defer { Glibc.close(socket) }
        if berth_send_fd(socket, master.rawValue, name) != 0 {
            throw RuntimeError.system("send terminal to console socket \(path)", Errno.current)
        }
    }
}

#if canImport(Glibc)
import Glibc
#endif
import BerthOCI
import BerthOS
import CBerth
import FoundationEssentials

/// What `exec` was asked to run.
public struct ExecOptions: Sendable {
    public var id: String
    public var processFile: String?
    public var arguments: [String] = []
    public var terminal = false
    public var detach = false
    public var pidFile: String?
    public var consoleSocket: String?
    public var cwd: String?
    public var environment: [String] = []
    public var user: String?
    public var additionalGids: [UInt32] = []
    public var noNewPrivileges = false
    public var preserveFDs = 0
    public var capabilities: [String] = []
    /// As for a launch: the exec'd process's stdio, and who reads it.
    public var stdio: [Int32]? = nil
    public var observer: (any LaunchObserver)? = nil
    public var outputs: [FileDescriptor] = []

    public init(id: String) { self.id = id }
}

/// `exec`: a new process in a running container's namespaces. The parent
/// joins the user namespace (so it may join the rest) and the pid namespace
/// (which only affects children), then forks one child that joins the
/// others and execs: one fork, and the process is the parent's own child.
public enum ExecLauncher {
    public static func exec(_ options: ExecOptions, paths: RuntimePaths) throws(RuntimeError) -> Int32 {
        let (directory, record) = try Operations.open(options.id, paths: paths)
        let status = record.status(in: directory)
        guard status == .running || status == .created else {
            throw RuntimeError(.invalidState, "cannot exec in container \"\(options.id)\": it is \(status.rawValue)")
        }
        let spec = directory.loadSpec()
        let process = try makeProcess(options, base: spec?.process)
        let containerHasUserNamespace = spec?.linux?.namespaces?.contains { $0.type == "user" } ?? false
        try SealedExecutable.reexecuteIfNeeded(SealedExecutable.containerCanPtraceHost(
            capabilities: spec?.process?.capabilities, extra: options.capabilities, ownUserNamespace: containerHasUserNamespace))
        if process.terminal == true && options.detach && options.consoleSocket == nil {
            throw RuntimeError(.invalidArgument, "exec --tty --detach needs --console-socket")
        }
        let rlimits = Rlimits.clamped(process.rlimits ?? [], warn: warn)
        // The container's filter applies to every process in it.
        let seccomp = try spec?.linux?.seccomp.map { (profile) throws(RuntimeError) in
            try SeccompCompiler.compile(profile, cacheDirectory: paths.seccompCache)
        }
        let pid = record.pid

        let namespaceTypes: [(String, Int32)] = [
            ("user", BERTH_CLONE_NEWUSER), ("ipc", BERTH_CLONE_NEWIPC), ("uts", BERTH_CLONE_NEWUTS),
            ("net", BERTH_CLONE_NEWNET), ("cgroup", BERTH_CLONE_NEWCGROUP), ("pid", BERTH_CLONE_NEWPID),
            ("time", BERTH_CLONE_NEWTIME), ("mnt", BERTH_CLONE_NEWNS),
        ]
        // Only namespaces that differ from ours need joining.
        var toJoin: [(String, Int32, FileDescriptor)] = []
        defer { for entry in toJoin { entry.2.close() } }
        for (name, flag) in namespaceTypes {
            let theirs = "/proc/\(pid)/ns/\(name)"
            guard let target = Files.readLink(theirs) else {
                if !Files.exists("/proc/self/ns/\(name)") { continue } // a namespace type this kernel lacks
                if status == .created && RuntimePaths.isRootless {
                    // The waiting init is not dumpable (it must not expose berth's
                    // binary to the container), so an unprivileged caller cannot
                    // reach its namespaces until it has exec'd its process.
                    throw RuntimeError(.invalidState, "cannot exec in container \"\(options.id)\": it is created, not started, and rootless berth can join it only once it runs (berth start \(options.id))")
                }
                throw RuntimeError.system("read \(theirs)", Errno.current)
            }
            guard target != Files.readLink("/proc/self/ns/\(name)") else { continue }
            let fd = try step("open \(theirs)") { () throws(Errno) in try FileDescriptor.open(theirs, O_RDONLY) }
            toJoin.append((name, flag, fd))
        }
        // Re-check identity after opening: the pid must still be the container.
        guard processStartTime(pid) == record.startTime else {
            throw RuntimeError(.invalidState, "cannot exec in container \"\(options.id)\": it is stopped")
        }
        try ProcessSetup.applyOOMScoreAdjustment(process)
        // Not dumpable before anything joins the container (the child
        // inherits it; execve resets it): processes in the container cannot
        // open /proc/<pid>/exe of berth and reach the host binary (the
        // CVE-2019-5736 class).
        _ = berth_prctl(BERTH_PR_SET_DUMPABLE, 0, 0, 0, 0)
        for (name, flag, fd) in toJoin where name == "user" || name == "pid" {
            if berth_setns(fd.rawValue, flag) != 0 {
                throw RuntimeError.system("join the container's \(name) namespace", Errno.current)
            }
        }
        let foreground = !options.detach
        if foreground { _ = berth_block_all_signals(nil) }
        let (parentEnd, childEnd) = try step("create sync socket") { () throws(Errno) in try makeSocketPair() }
        let channel = SyncChannel(parentEnd)
        defer { channel.close() }
        // Into the container's cgroup from the start, so its limits hold for
        // the new process too.
        let cgroupFD = record.cgroup.flatMap { try? FileDescriptor.open($0, O_RDONLY | O_DIRECTORY | O_CLOEXEC) }
        defer { cgroupFD?.close() }
        var child = cgroupFD.map { berth_clone_into_cgroup(0, $0.rawValue) } ?? berth_clone(0)
        // Moving a process between groups needs write access to their common
        // ancestor: a rootless caller outside the subtree it delegated (a
        // login shell, for a container of a user unit) may not. Its process
        // then stays in the caller's group, as crun's exec leaves it.
        if child < 0, cgroupFD != nil, RuntimePaths.isRootless, Errno.current == .permissionDenied || Errno.current == .notPermitted {
            child = berth_clone(0)
        }
        if child == 0 {
            parentEnd.close()
            let childChannel = SyncChannel(childEnd)
            if let stdio = options.stdio {
                for (target, fd) in stdio.prefix(3).enumerated() where fd != Int32(target) { _ = dup2(fd, Int32(target)) }
            }
            do throws(RuntimeError) {
                for (name, flag, fd) in toJoin where name != "user" && name != "pid" {
                    if berth_setns(fd.rawValue, flag) != 0 {
                        throw RuntimeError.system("join the container's \(name) namespace", Errno.current)
                    }
                }
                let setup = ProcessSetup(process: process, rlimits: rlimits, channel: childChannel, seccomp: seccomp, warn: warn)
                let prepared = try setup.prepare(bindConsole: false)
                try setup.finishSeccomp()
                ProcessSetup.closeInheritedDescriptors(preserving: options.preserveFDs)
                if foreground { _ = berth_prctl(BERTH_PR_SET_PDEATHSIG, UInt(SIGKILL), 0, 0, 0) }
                let error = ProcessSetup.exec(prepared)
                throw RuntimeError.exec(prepared.path, error)
            } catch {
                try? childChannel.send(error.wire)
                _exit(127)
            }
        }
        let cloneError = Errno.current
        childEnd.close()
        if child < 0 { throw RuntimeError.system("fork for exec", cloneError) }

        var master: FileDescriptor? = nil
        defer { master?.close() }
        do throws(RuntimeError) {
            while let message = try? channel.receive() {
                if message.text.hasPrefix("pty:"), let fd = message.fd {
                    if let socket = options.consoleSocket {
                        defer { fd.close() }
                        try Launcher.sendToConsoleSocket(fd, path: socket, name: String(message.text.dropFirst(4)))
                    } else {
                        master = fd
                    }
                } else if message.text == "seccomp", let fd = message.fd {
                    defer { fd.close() }
                    var state = record.state(in: directory)
                    state.pid = child
                    try Launcher.sendToSeccompListener(fd, seccomp: seccomp, state: state)
                } else if let error = RuntimeError.fromWire(message.text) {
                    // Reaped below: until then its pid cannot be reused.
                    throw error
                }
            }
            if let pidFile = options.pidFile {
                let file = Files.absolute(pidFile)
                try step("write pid file \(file)") { () throws(Errno) in try Files.writeAtomically(file, Array(String(child).utf8)) }
            }
        } catch {
            // Whatever failed after the fork, the exec'd process must not
            // outlive the error: kill it, so nothing is left behind.
            _ = Glibc.kill(child, SIGKILL)
            _ = try? waitForProcess(child)
            throw error
        }
        if options.detach { return 0 }
        // What the launch parsed and compiled is garbage now: give the heap
        // back before waiting, since this process lives as long as the container.
        _ = berth_malloc_trim()
        options.observer?.started(pid: child, startTime: processStartTime(child) ?? 0)
        return Supervisor(pid: child, master: master, outputs: options.outputs, observer: options.observer).wait().shellCode
    }

    /// The process to run: --process JSON, or the container's own process
    /// with the command line's arguments and overrides (as runc does).
    static func makeProcess(_ options: ExecOptions, base: BerthOCI.Process?) throws(RuntimeError) -> BerthOCI.Process {
        if let file = options.processFile {
            let bytes: [UInt8]
            do { bytes = try Files.read(Files.absolute(file)) } catch { throw RuntimeError.system("read process file \(file)", error) }
            do {
                let process = try JSONDecoder().decode(BerthOCI.Process.self, from: Data(bytes))
                guard let args = process.args, !args.isEmpty else {
                    throw RuntimeError(.invalidArgument, "process file \(file): args must not be empty")
                }
                return process
            } catch let error as RuntimeError {
                throw error
            } catch {
                throw RuntimeError(.invalidArgument, "invalid process file \(file): \(error)")
            }
        }
        guard !options.arguments.isEmpty else {
            throw RuntimeError(.invalidArgument, "exec needs a command to run")
        }
        var process = base ?? BerthOCI.Process()
        process.args = options.arguments
        process.terminal = options.terminal
        process.consoleSize = nil
        if let cwd = options.cwd { process.cwd = cwd }
        process.env = (process.env ?? []) + options.environment
        if let user = options.user {
            let parts = user.split(separator: ":", maxSplits: 1)
            guard let uid = UInt32(parts[0]), parts.count == 1 || UInt32(parts[1]) != nil else {
                throw RuntimeError(.invalidArgument, "--user \"\(user)\": expected UID[:GID]")
            }
            process.user.uid = uid
            process.user.gid = parts.count > 1 ? UInt32(parts[1])! : 0
        }
        if !options.additionalGids.isEmpty { process.user.additionalGids = options.additionalGids }
        if options.noNewPrivileges { process.noNewPrivileges = true }
        if !options.capabilities.isEmpty {
            // runc exec --cap adds to the bounding, effective and permitted sets.
            for name in options.capabilities where Capabilities.number(of: name) == nil {
                throw RuntimeError(.invalidArgument, "unknown capability \"\(name)\"")
            }
            var caps = process.capabilities ?? LinuxCapabilities()
            caps.bounding = (caps.bounding ?? []) + options.capabilities
            caps.effective = (caps.effective ?? []) + options.capabilities
            caps.permitted = (caps.permitted ?? []) + options.capabilities
            process.capabilities = caps
        }
        return process
    }
}

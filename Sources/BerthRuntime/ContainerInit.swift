#if canImport(Glibc)
import Glibc
#endif
import BerthOCI
import BerthOS
import CBerth
import FoundationEssentials

/// The child side of a launch, from clone() to execve(). Runs in the new
/// namespaces; every failure is sent to the parent as one line and the
/// child exits, so the parent can report it and clean up.
struct ContainerInit {
    let bundle: LoadedBundle
    let channel: SyncChannel
    let execFifo: FileDescriptor?
    let rlimits: [POSIXRlimit]
    let noPivot: Bool
    let preserveFDs: Int
    let dieWithParent: Bool
    let cgroupDirectory: String?
    let seccomp: CompiledSeccomp?
    var stdio: [Int32]? = nil

    func run() -> Never {
        if let stdio {
            for (target, fd) in stdio.prefix(3).enumerated() where fd != Int32(target) { _ = dup2(fd, Int32(target)) }
        }
        do {
            try body()
        } catch {
            try? channel.send(error.wire)
        }
        _exit(1)
    }

    private func waitFor(_ expected: String) throws(RuntimeError) -> String {
        guard let message = try? channel.receive() else {
            throw RuntimeError(.failed, "lost contact with berth while waiting for \(expected)")
        }
        guard message.text.hasPrefix(expected) else {
            throw RuntimeError(.failed, "unexpected message from berth: \(message.text)")
        }
        return String(message.text.dropFirst(expected.count))
    }

    private func body() throws(RuntimeError) {
        let stateJSON = try waitFor("go:")
        // Not dumpable from here to execve (which resets it): no process in
        // the container can open /proc/<pid>/exe, fd or mem of this one, so
        // the host's berth binary cannot be reached through it (the
        // CVE-2019-5736 class). Not before: the parent writes our id maps,
        // which needs /proc/<pid> to be ours.
        _ = berth_prctl(BERTH_PR_SET_DUMPABLE, 0, 0, 0, 0)
        let spec = bundle.spec
        let newUserNamespace = bundle.hasNewNamespace("user")
        if newUserNamespace {
            // Become root of the new namespace if it maps root (kuid 0 of the
            // host may be unmapped, as with podman's --userns).
            _ = berth_setresgid(0, 0, 0)
            _ = berth_setresuid(0, 0, 0)
        }
        try joinNamespaces()
        if let hostname = spec.hostname, !hostname.isEmpty {
            if sethostname(hostname, hostname.utf8.count) != 0 { throw RuntimeError.system("sethostname \(hostname)", Errno.current) }
        }
        if let domainname = spec.domainname, !domainname.isEmpty {
            if setdomainname(domainname, domainname.utf8.count) != 0 { throw RuntimeError.system("setdomainname \(domainname)", Errno.current) }
        }
        let rootfs = RootFilesystem(bundle: bundle, inUserNamespace: newUserNamespace || bundle.namespacePath("user") != nil || RuntimePaths.isRootless,
                                    cgroupDirectory: cgroupDirectory, warn: warn)
        try rootfs.prepare()
        if !(spec.hooks?.prestart ?? []).isEmpty || !(spec.hooks?.createRuntime ?? []).isEmpty {
            try step("ask for createRuntime hooks") { () throws(Errno) in try channel.send("hooks") }
            _ = try waitFor("hooks-done")
        }
        try runChildHooks(.createContainer, stateJSON: stateJSON, status: .creating)
        try rootfs.enter(noPivot: noPivot)
        try rootfs.finish()
        let process = spec.process!
        let setup = ProcessSetup(process: process, rlimits: rlimits, channel: channel, seccomp: seccomp, warn: warn)
        let prepared = try setup.prepare(bindConsole: true)
        // Before "ready": a notify listener must reach its listener while
        // create still runs; what follows (exec fifo, startContainer hooks,
        // execve) runs under the filter.
        try setup.finishSeccomp()
        ProcessSetup.closeInheritedDescriptors(preserving: preserveFDs)
        try step("report ready") { () throws(Errno) in try channel.send("ready") }
        if let execFifo {
            // Blocks until `berth start` opens the fifo for reading.
            let fifo = try step("open exec fifo") { () throws(Errno) in try FileDescriptor.open(execFifo.procPath, O_WRONLY) }
            try step("write exec fifo") { () throws(Errno) in try fifo.writeAll("0") }
            fifo.close()
            execFifo.close()
        } else {
            _ = try waitFor("start")
        }
        try runChildHooks(.startContainer, stateJSON: stateJSON, status: .running)
        if dieWithParent {
            // Foreground run: if berth is killed, the container goes with it.
            _ = berth_prctl(BERTH_PR_SET_PDEATHSIG, UInt(SIGKILL), 0, 0, 0)
        }
        if spec.annotations?[ContainerInitProcess.annotation] == "true" {
            ContainerInitProcess.fork(channel: channel)
        }
        let error = ProcessSetup.exec(prepared)
        throw RuntimeError.exec(prepared.path, error)
    }

    /// setns() into the namespaces given by path (pid was joined by the parent).
    private func joinNamespaces() throws(RuntimeError) {
        let order = ["ipc", "uts", "network", "cgroup", "time", "mount"] // user and pid: joined by the parent
        for type in order {
            guard let path = bundle.namespacePath(type) else { continue }
            let fd = try step("open \(type) namespace \(path)") { () throws(Errno) in try FileDescriptor.open(path, O_RDONLY) }
            defer { fd.close() }
            if berth_setns(fd.rawValue, LoadedBundle.namespaceTypes[type]!) != 0 {
                throw RuntimeError.system("join \(type) namespace \(path)", Errno.current)
            }
        }
    }

    private func runChildHooks(_ kind: HookRunner.Kind, stateJSON: String, status: State.Status) throws(RuntimeError) {
        guard !HookRunner.hooks(kind, in: bundle.spec).isEmpty else { return }
        guard var state = try? JSONDecoder().decode(State.self, from: Data(stateJSON.utf8)) else { return }
        state.status = status
        // As runc does: the pid as the hook, inside the container, sees it.
        state.pid = getpid()
        try HookRunner.run(kind, spec: bundle.spec, state: state, warn: warn)
    }
}

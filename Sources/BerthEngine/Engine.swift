#if canImport(Glibc)
import Glibc
#endif
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import BerthImage
import BerthOCI
import BerthOS
import BerthRuntime
import CBerth

/// Containers as users see them: create from an image, run in the
/// foreground or under a monitor, stop, kill, remove, wait. Every path to a
/// process goes through the runtime's Launcher with the container's
/// directory as the bundle; no other binary is exec'd.
package struct Engine: Sendable {
    package let containers: ContainerStore
    package let runtime: RuntimePaths
    package let rootless: Bool
    package var cgroupMode = CgroupMode.enabled

    package init(store: ImageStore, runtime: RuntimePaths, rootless: Bool) {
        self.containers = ContainerStore(images: store)
        self.runtime = runtime
        self.rootless = rootless
    }

    package var images: ImageStore { containers.images }
    package var volumes: VolumeStore { VolumeStore(storeRoot: images.root) }

    package static func environment() -> [String] {
        var result: [String] = []
        var pointer = berth_environ_pointer()
        while let entry = pointer?.pointee {
            result.append(String(cString: entry))
            pointer = pointer?.advanced(by: 1)
        }
        return result
    }

    // MARK: create

    /// Makes the container: its record, overlay directories and config.json.
    package func create(_ options: CreateOptions, image: ImageRecord, imageConfig: ImageConfiguration) throws(EngineError) -> Container {
        if let name = options.name { try ContainerStore.validate(name: name) }
        let id = ContainerStore.newID()
        let directory = containers.path(id)
        let built = try SpecBuilder(id: id, options: options, image: image, imageConfig: imageConfig, store: images, rootless: rootless)
            .build(directory: directory)
        // A generated name is checked under the lock like any other; the
        // records are read only if it was taken.
        var container = Container(id: id, name: options.name ?? ContainerStore.generateName(taken: []), created: Timestamps.now(),
                                  image: options.image, imageID: image.id.description, config: built.config, state: ContainerState())
        do {
            // A generated name that a concurrent create took meanwhile is drawn again.
            var attempts = options.name == nil ? 5 : 1
            while true {
                attempts -= 1
                do {
                    try write(container, spec: built.spec)
                    break
                } catch let error where error.kind == .exists && attempts > 0 {
                    container.name = ContainerStore.generateName(taken: Set(containers.list().map(\.name)))
                }
            }
        } catch {
            // Anonymous volumes made for it are not anyone's.
            for mount in built.config.mounts where mount.anonymous { _ = try? volumes.remove(mount.source, inUseBy: []) }
            throw error
        }
        return container
    }

    private func write(_ container: Container, spec: Spec) throws(EngineError) {
        try containers.create(container) { (directory) throws(EngineError) in
            do {
                for name in ["upper", "work", "rootfs"] { try Files.makeDirectories(directory + "/" + name, mode: 0o700) }
                chmod(directory + "/upper", 0o755)
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.sortedKeys]
                try Files.writeAtomically(directory + "/config.json", Array(try encoder.encode(spec)), mode: 0o600)
            } catch {
                throw EngineError(.failed, "prepare the container in \(directory): \(error)")
            }
        }
    }

    // MARK: state

    /// The record, with what has happened since it was written: a
    /// container whose process and monitor are both gone has exited, with
    /// an unknown code if nobody recorded one.
    package func refresh(_ container: Container) -> Container {
        if let network = container.state.network, !container.state.isActive,
           network.ownerPid == 0 || processStartTime(network.ownerPid) != network.ownerStartTime {
            // A start that was killed half-way left its network behind.
            tearDownNetwork(container.id)
            return containers.load(container.id) ?? container
        }
        guard container.state.isActive else { return container }
        if container.processAlive || container.monitorAlive { return container }
        // Whoever ran it is gone: record that, once, under the lock.
        let updated = try? containers.update(container.id) { (record) throws(EngineError) in
            guard record.state.isActive else { return }
            guard !record.processAlive, !record.monitorAlive else { return }
            // Between two runs the last run's code is known; otherwise nobody recorded one.
            if record.state.status != "restarting" { record.state.exitCode = nil }
            record.state.status = "exited"
            record.state.finishedAt = Timestamps.now()
            record.state.pid = 0
        }
        cleanRuntime(container.id)
        tearDownNetwork(container.id)
        return updated.flatMap { containers.load($0.id) } ?? updated ?? container
    }

    /// Removes runtime state (cgroup, state directory) of a container that has ended.
    package func cleanRuntime(_ id: String) {
        if Operations.exists(id, paths: runtime) { try? Operations.delete(id, force: true, paths: runtime) }
    }

    package func list(all: Bool) -> [Container] {
        containers.list().map(refresh).filter { all || $0.state.status == "running" || $0.state.status == "paused" || $0.state.status == "restarting" }
    }

    package func lookup(_ text: String) throws(EngineError) -> Container {
        refresh(try containers.lookup(text))
    }

    // MARK: start

    /// Exit codes as podman's: 125 berth, 126 cannot invoke, 127 not found.
    package static func exitCode(for error: RuntimeError) -> Int32 {
        switch error.code {
        case .commandNotFound: 127
        case .commandNotExecutable: 126
        default: 125
        }
    }

    /// Runs a created or exited container in the foreground: berth is the
    /// container's parent, its stdio the container's (copied to the log its
    /// driver keeps; k8s-file keeps none for --rm). Returns the container's
    /// exit code, or throws with the code to exit with.
    package func runForeground(_ container: Container) throws(StartError) -> Int32 {
        try prepareStart(container)
        // The log by its driver; without one (none, passthrough, k8s-file with --rm) the container writes to berth's stdio.
        let log = try openLog(container, foreground: true)
        let network = try startNetwork(container)
        let observer = ForegroundObserver(engine: self, container: container, log: log)
        observer.network = network
        var options = LaunchOptions(id: container.id, bundle: containers.path(container.id), mode: .runForeground)
        options.cgroupMode = container.config.cgroupMode(default: cgroupMode)
        options.observer = observer
        var pipes: [(read: FileDescriptor, write: FileDescriptor)] = []
        if log != nil && !container.config.tty {
            // The container writes into pipes; berth copies them to its own stdout/stderr and the log.
            for _ in 0..<2 { if let pipe = try? makePipe() { pipes.append(pipe) } }
            if pipes.count == 2 {
                options.stdio = [0, pipes[0].write.rawValue, pipes[1].write.rawValue]
                options.outputs = [pipes[0].read, pipes[1].read]
                observer.closeAfterStart = [pipes[0].write, pipes[1].write]
            }
        }
        // Without -i the container reads an empty stdin, as docker gives it.
        options.forwardStdin = container.config.interactive
        var emptyInput: FileDescriptor? = nil
        if !container.config.interactive, let empty = try? makePipe() {
            empty.write.close()
            emptyInput = empty.read
            options.stdio = [empty.read.rawValue, options.stdio?[1] ?? 1, options.stdio?[2] ?? 2]
        }
        defer {
            for pipe in pipes { pipe.read.close(); pipe.write.close() }
            emptyInput?.close()
        }
        let code: Int32
        do {
            code = try Launcher.launch(options, paths: runtime)
        } catch {
            observer.closeLog()
            network.tearDown()
            try? recordFailure(container, error.message)
            throw StartError(code: Engine.exitCode(for: error), message: error.message)
        }
        network.tearDown()
        observer.closeLog()
        if container.config.autoRemove { try? remove(containers.load(container.id) ?? container, force: true, volumes: true) }
        // As timeout(1): a run that its --timeout ended exits 124, whatever the container's own status.
        if observer.timer.timedOut {
            try? FileDescriptor.standardError.writeAll("berth: container \(container.name) \(observer.timer.message) (its exit code: \(code))\n")
            return Engine.timedOutCode
        }
        return code
    }

    /// The exit code of a foreground run ended by its --timeout.
    package static let timedOutCode: Int32 = 124

    /// The network a start needs; a failure is recorded like a failed launch.
    func startNetwork(_ container: Container) throws(StartError) -> NetworkSession {
        do {
            return try prepareNetwork(containers.load(container.id) ?? container)
        } catch {
            try? recordFailure(container, error.message)
            throw StartError(code: 125, message: error.message)
        }
    }

    /// Checks a container may start, and marks it running-to-be.
    func prepareStart(_ container: Container) throws(StartError) {
        let current = refresh(container)
        if current.state.status == "running" || current.state.status == "paused" || current.state.status == "restarting" {
            throw StartError(code: 125, message: "container \(container.name) is already running")
        }
        if current.state.status == "exited" || current.state.status == "created" {
            cleanRuntime(container.id)
        }
        try resetOverlayVolumes(current)
        // A new start: an earlier stop no longer holds back the restart policy.
        if current.state.stopRequested {
            _ = try? containers.update(container.id) { (record) throws(EngineError) in record.state.stopRequested = false }
        }
    }

    func recordFailure(_ container: Container, _ message: String) throws(EngineError) {
        try containers.update(container.id) { (record) throws(EngineError) in
            record.state.status = record.state.startedAt == nil ? "created" : "exited"
            record.state.error = message
            record.state.pid = 0
            if record.state.startedAt != nil { record.state.exitCode = 127 }
        }
    }

    package struct StartError: Error, Sendable {
        package var code: Int32
        package var message: String
    }

    // MARK: stop, kill, wait, remove

    /// Sends the stop signal, waits `timeout` seconds, then SIGKILL; returns once the exit is recorded.
    package func stop(_ container: Container, timeout: Int?) throws(EngineError) {
        let current = settle(refresh(container))
        guard current.state.status == "running" || current.state.status == "paused" else { return }
        try containers.update(container.id) { (record) throws(EngineError) in record.state.stopRequested = true }
        let signal = SignalName.parse(current.config.stopSignal) ?? SIGTERM
        let seconds = timeout ?? current.config.stopTimeout
        let pidfd = berth_pidfd_open(current.state.pid)
        defer { if pidfd >= 0 { close(pidfd) } }
        try? Operations.kill(current.id, signal: signal, all: false, paths: runtime)
        if pidfd >= 0 {
            var entry = pollfd(fd: pidfd, events: Int16(POLLIN), revents: 0)
            if poll(&entry, 1, Int32(seconds * 1000)) == 0 {
                try? Operations.kill(current.id, signal: SIGKILL, all: true, paths: runtime)
            }
        }
        _ = waitForExit(current, timeout: 10 + Double(seconds))
    }

    /// Between two runs of its restart policy a container's record says
    /// exited while its monitor lives on and is about to start it again
    /// (the back-off, then the network's setup). Tells the monitor not to,
    /// and waits until it has given up or the run it had begun is running.
    func settle(_ container: Container) -> Container {
        // Not when it is our own (a monitor's or foreground run's --rm removal).
        guard container.state.status != "running", container.state.status != "paused", container.monitorAlive,
              container.state.monitorPid != getpid() else { return container }
        _ = try? containers.update(container.id) { (record) throws(EngineError) in record.state.stopRequested = true }
        var current = container
        for _ in 0..<1000 {
            guard let record = containers.load(container.id) else { break }
            current = record
            if record.state.status == "running" || !record.monitorAlive { break }
            usleep(10_000)
        }
        return refresh(current)
    }

    package func kill(_ container: Container, signal: Int32) throws(EngineError) {
        let current = refresh(container)
        guard current.state.status == "running" || current.state.status == "paused" else {
            throw EngineError(.invalidState, "cannot kill container \(current.name): it is not running")
        }
        do {
            try Operations.kill(current.id, signal: signal, all: false, paths: runtime)
        } catch {
            throw EngineError(.failed, error.message)
        }
    }

    /// Waits until the container has exited (recorded by whoever ran it); returns the refreshed record.
    @discardableResult
    package func waitForExit(_ container: Container, timeout: Double? = nil) -> Container? {
        var waited = 0.0
        while true {
            guard let record = containers.load(container.id) else { return nil }
            let current = refresh(record)
            if !current.state.isActive && current.state.status != "paused" {
                return current
            }
            if let timeout, waited >= timeout { return current }
            usleep(20_000)
            waited += 0.02
        }
    }

    /// Removes a container (killing it first with `force`), and its anonymous volumes with `volumes`.
    package func remove(_ container: Container, force: Bool, volumes removeVolumes: Bool) throws(EngineError) {
        var current = refresh(container)
        current = settle(current)
        if current.state.status == "running" || current.state.status == "paused" {
            guard force else {
                throw EngineError(.invalidState, "cannot remove container \(current.name) as it is running: stop it first, or use --force")
            }
            _ = try? containers.update(current.id) { (record) throws(EngineError) in record.state.stopRequested = true }
            try? Operations.kill(current.id, signal: SIGKILL, all: true, paths: runtime)
            current = waitForExit(current, timeout: 10) ?? current
        }
        cleanRuntime(current.id)
        tearDownNetwork(current.id)
        containers.remove(current.id)
        guard removeVolumes else { return }
        for mount in current.config.mounts where mount.type == "volume" && mount.anonymous {
            if let leftover = (try? volumes.remove(mount.source, inUseBy: usersOf(volume: mount.source))) ?? nil {
                containers.removeDirectory(leftover)
            }
        }
    }

    /// Containers that mount a volume (short ids).
    package func usersOf(volume name: String) -> [String] {
        containers.list().filter { $0.config.mounts.contains { $0.type == "volume" && $0.source == name } }.map(\.id)
    }
}

extension Engine {
    /// The container's process runs, watched by this process.
    func recordStarted(_ id: String, pid: pid_t, startTime: UInt64, clearStop: Bool) {
        _ = try? containers.update(id) { (record) throws(EngineError) in
            record.state.status = "running"
            record.state.pid = pid
            record.state.startTime = startTime
            record.state.monitorPid = getpid()
            record.state.monitorStartTime = processStartTime(getpid()) ?? 0
            record.state.startedAt = Timestamps.now()
            record.state.finishedAt = nil
            record.state.exitCode = nil
            record.state.error = nil
            record.state.oomKilled = false
            record.state.resetHealth(record.config)
            if clearStop { record.state.stopRequested = false }
        }
    }

    func recordExit(_ id: String, status: ExitStatus, oomKilled: Bool, error: String? = nil) {
        _ = try? containers.update(id) { (record) throws(EngineError) in
            record.state.status = "exited"
            if let error { record.state.error = error }
            record.state.exitCode = status.shellCode
            record.state.finishedAt = Timestamps.now()
            record.state.oomKilled = oomKilled
            record.state.pid = 0
        }
    }
}

/// The foreground run's view of its container.
final class ForegroundObserver: LaunchObserver, @unchecked Sendable {
    let engine: Engine
    let container: Container
    var closeAfterStart: [FileDescriptor] = []
    var network: NetworkSession?
    private var writer: LogSink?
    let timer: ContainerTimer
    let readiness: ContainerReadiness

    init(engine: Engine, container: Container, log: LogSink?) {
        self.engine = engine
        self.container = container
        self.writer = log
        self.timer = ContainerTimer(config: container.config)
        self.readiness = ContainerReadiness(engine: engine, container: container)
    }

    func descriptors() -> [Int32] { timer.descriptors + readiness.descriptors }

    func ready(_ fd: Int32) -> [UInt8]? {
        if fd == timer.fd { timer.fired() }
        if readiness.handles(fd) { readiness.ready(fd) }
        return nil
    }

    func forwarded(signal: Int32) { timer.forwarded(signal) }

    func closeLog() {
        writer?.close()
        writer = nil
    }

    func started(pid: pid_t, startTime: UInt64) {
        for fd in closeAfterStart { fd.close() }
        closeAfterStart = []
        engine.recordStarted(container.id, pid: pid, startTime: startTime, clearStop: true)
        timer.started(pid: pid)
        readiness.started(pid: pid)
    }

    func output(stream: Int, bytes: ArraySlice<UInt8>) {
        try? (stream == 2 ? FileDescriptor.standardError : FileDescriptor.standardOutput).writeAll(bytes)
        writer?.write(stream == 2 ? .stderr : .stdout, bytes)
    }

    func namespacesReady(pid: pid_t) throws(RuntimeError) {
        try network?.attach(pid: pid)
    }

    func finished(status: ExitStatus, oomKilled: Bool) {
        // Before the exit is recorded: whoever waits for it finds the network gone.
        readiness.finished()
        network?.tearDown()
        engine.recordExit(container.id, status: status, oomKilled: oomKilled, error: timer.timedOut ? timer.message : nil)
    }
}

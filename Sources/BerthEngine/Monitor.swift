#if canImport(Glibc)
import Glibc
#endif
import BerthOS
import BerthRuntime
import CBerth

/// A detached container's monitor: berth forked (not a second binary),
/// in a session of its own, as the container's parent. It holds the
/// container's stdio, writes its log, reaps it, records how it ended, runs
/// its restart policy and `--rm`, and exits with it. The container dies with
/// it (its init has PDEATHSIG), so a killed monitor never leaves a
/// container that nobody watches; the next command records it as exited
/// with an unknown code.
extension Engine {
    /// Starts the container under a new monitor; returns once it runs (or
    /// throws what kept it from running).
    package func startDetached(_ container: Container) throws(StartError) {
        try prepareStart(container)
        let report: (read: FileDescriptor, write: FileDescriptor)
        do { report = try makePipe() } catch {
            throw StartError(code: 125, message: "create a pipe: \(error)")
        }
        let pid = fork()
        if pid < 0 { throw StartError(code: 125, message: "fork the monitor: \(Errno.current)") }
        if pid == 0 {
            report.read.close()
            monitor(container, report: report.write)
        }
        report.write.close()
        defer { report.read.close() }
        let bytes = (try? report.read.readAll(limit: 1 << 16)) ?? []
        let text = String(decoding: bytes, as: UTF8.self)
        if text == "ok" { return }
        // "error:<code>:<message>"; nothing at all: the monitor died.
        _ = try? waitForProcess(pid, options: WNOHANG)
        let parts = text.split(separator: ":", maxSplits: 2).map(String.init)
        if parts.count == 3, parts[0] == "error", let code = Int32(parts[1]) {
            throw StartError(code: code, message: parts[2])
        }
        throw StartError(code: 125, message: "the monitor of container \(container.shortID) exited before the container started")
    }

    /// The monitor process: never returns.
    private func monitor(_ container: Container, report: FileDescriptor) -> Never {
        _ = setsid()
        signal(SIGPIPE, SIG_IGN)
        signal(SIGHUP, SIG_IGN)
        // passthrough: the container's stdout and stderr are the caller's
        // (a unit's journal stream under systemd), kept before they are replaced.
        let passthrough = container.config.loggingDriver.isPassthrough ? keepCallerOutput() : nil
        // Its own messages (warnings) go to a file next to the log.
        let directory = containers.path(container.id)
        if let file = try? FileDescriptor.open(directory + "/monitor.log", O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, mode: 0o600) {
            _ = dup2(file.rawValue, 1)
            _ = dup2(file.rawValue, 2)
            file.close()
        }
        // Never the caller's terminal: with -t the supervisor copies stdin to the pty.
        if let empty = try? makePipe() {
            empty.write.close()
            _ = dup2(empty.read.rawValue, 0)
            empty.read.close()
        }
        var reportFD: FileDescriptor? = report
        let listener = AttachSocket.listen(directory: directory)
        defer { if let listener { close(listener); _ = unlink(directory + "/" + AttachSocket.name) } }
        var current = container
        var attempt = 0
        while true {
            let code = monitorOnce(current, report: &reportFD, listener: listener, passthrough: passthrough)
            guard let code else { break } // failed to start
            guard let record = containers.load(container.id) else { _exit(0) } // removed meanwhile
            current = record
            if record.state.stopRequested || !record.config.restartPolicy.restarts(exitCode: code, count: record.restartCount) { break }
            // Restart with back-off: 100 ms doubling, at most 10 s.
            let delay = min(10_000_000, 100_000 << min(attempt, 7))
            usleep(UInt32(delay))
            attempt += 1
            // "restarting" until it runs again: the record never looks final
            // between two runs (the back-off and the network's setup).
            guard let again = try? containers.update(container.id, { (record) throws(EngineError) in
                guard !record.state.stopRequested else { return }
                record.restartCount += 1
                record.state.status = "restarting"
            }), !again.state.stopRequested else { break }
            current = again
            cleanRuntime(container.id)
            // Each run begins from the overlay volumes' host directories again.
            do { try resetOverlayVolumes(current) } catch {
                try? recordFailure(current, error.message)
                break
            }
        }
        if let listener {
            close(listener)
            _ = unlink(directory + "/" + AttachSocket.name)
        }
        if let final = containers.load(container.id), final.config.autoRemove {
            try? remove(final, force: true, volumes: true)
        }
        _exit(0)
    }

    /// Copies of this process's stdout and stderr above 2, close-on-exec
    /// (the launch puts them on the container's 1 and 2).
    private func keepCallerOutput() -> (out: FileDescriptor, err: FileDescriptor)? {
        let out = fcntl(1, F_DUPFD_CLOEXEC, 3)
        let err = fcntl(2, F_DUPFD_CLOEXEC, 3)
        guard out >= 0, err >= 0 else {
            if out >= 0 { close(out) }
            if err >= 0 { close(err) }
            return nil
        }
        return (FileDescriptor(rawValue: out), FileDescriptor(rawValue: err))
    }

    /// One run of the container: nil when it could not start.
    private func monitorOnce(_ container: Container, report: inout FileDescriptor?, listener: Int32?,
                             passthrough: (out: FileDescriptor, err: FileDescriptor)? = nil) -> Int32? {
        let network: NetworkSession
        var log: LogSink? = nil
        do {
            log = try openLog(container, foreground: false, passthroughOutput: passthrough?.out)
            network = try startNetwork(container)
        } catch {
            log?.close()
            if let fd = report {
                try? fd.writeAll("error:\(error.code):\(error.message)")
                fd.close()
                report = nil
            }
            return nil
        }
        defer { network.tearDown() }
        let observer = MonitorObserver(engine: self, container: container, log: log, report: report)
        observer.listener = listener
        observer.network = network
        defer { observer.closeClients() }
        var options = LaunchOptions(id: container.id, bundle: containers.path(container.id), mode: .runForeground)
        options.cgroupMode = container.config.cgroupMode(default: cgroupMode)
        options.observer = observer
        // stdin: an empty pipe (EOF at once), or one kept open with -i.
        var fds: [FileDescriptor] = []
        defer { for fd in fds { fd.close() } }
        guard let input = try? makePipe() else { return nil }
        fds += [input.read, input.write]
        if !container.config.interactive { input.write.close(); fds.removeLast() } else { observer.input = input.write }
        if let passthrough, !container.config.tty {
            options.stdio = [input.read.rawValue, passthrough.out.rawValue, passthrough.err.rawValue]
            observer.closeAfterStart = [input.read]
        } else if !container.config.tty, let out = try? makePipe(), let err = try? makePipe() {
            fds += [out.read, err.read]
            options.stdio = [input.read.rawValue, out.write.rawValue, err.write.rawValue]
            options.outputs = [out.read, err.read]
            observer.closeAfterStart = [out.write, err.write, input.read]
        } else {
            options.stdio = [input.read.rawValue, 1, 2]
            observer.closeAfterStart = [input.read]
        }
        let code: Int32
        do {
            code = try Launcher.launch(options, paths: runtime)
        } catch {
            for fd in observer.closeAfterStart { fd.close() }
            try? recordFailure(container, error.message)
            if let fd = observer.report {
                try? fd.writeAll("error:\(Engine.exitCode(for: error)):\(error.message)")
                fd.close()
                report = nil
            }
            return nil
        }
        report = nil
        observer.closeLog()
        return code
    }
}

final class MonitorObserver: LaunchObserver, @unchecked Sendable {
    let engine: Engine
    let container: Container
    var log: LogSink?
    var report: FileDescriptor?
    var closeAfterStart: [FileDescriptor] = []
    var network: NetworkSession?
    let timer: ContainerTimer
    let readiness: ContainerReadiness

    init(engine: Engine, container: Container, log: LogSink?, report: FileDescriptor?) {
        self.engine = engine
        self.container = container
        self.log = log
        self.report = report
        self.timer = ContainerTimer(config: container.config)
        self.readiness = ContainerReadiness(engine: engine, container: container)
    }

    func forwarded(signal: Int32) { timer.forwarded(signal) }

    func started(pid: pid_t, startTime: UInt64) {
        for fd in closeAfterStart { fd.close() }
        closeAfterStart = []
        // A restart keeps stopRequested: a stop that raced the restart still wins.
        engine.recordStarted(container.id, pid: pid, startTime: startTime, clearStop: false)
        timer.started(pid: pid)
        // Before `run -d` returns: systemd learns the monitor is the process to watch.
        readiness.started(pid: pid)
        if let report {
            try? report.writeAll("ok")
            report.close()
            self.report = nil
        }
        // What the launch parsed is garbage now: this process lives as long as the container.
        _ = berth_malloc_trim()
    }

    func output(stream: Int, bytes: ArraySlice<UInt8>) {
        log?.write(stream == 2 ? .stderr : .stdout, bytes)
        guard !clients.isEmpty else { return }
        let frame = AttachSocket.frame(stream: stream, bytes)
        clients.removeAll { client in
            // A client that cannot keep up is dropped, never waited for.
            let sent = frame.withUnsafeBytes { send(client, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT | MSG_NOSIGNAL)) }
            if sent == frame.count { return false }
            close(client)
            return true
        }
    }

    // MARK: attach

    /// The monitor's listening socket, the attached clients, and the
    /// container's stdin (with -i, no terminal).
    var listener: Int32?
    var clients: [Int32] = []
    var input: FileDescriptor?

    func descriptors() -> [Int32] { (listener.map { [$0] } ?? []) + clients + timer.descriptors + readiness.descriptors }

    func ready(_ fd: Int32) -> [UInt8]? {
        if fd == timer.fd {
            timer.fired()
            return nil
        }
        if readiness.handles(fd) {
            readiness.ready(fd)
            return nil
        }
        if fd == listener {
            let client = accept(fd, nil, nil)
            if client >= 0 {
                _ = fcntl(client, F_SETFD, FD_CLOEXEC)
                clients.append(client)
            }
            return nil
        }
        var buffer = [UInt8](repeating: 0, count: 16384)
        let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        if n <= 0 {
            close(fd)
            clients.removeAll { $0 == fd }
            return nil
        }
        let bytes = Array(buffer[0..<n])
        if container.config.tty { return container.config.interactive ? bytes : nil }
        try? input?.writeAll(bytes)
        return nil
    }

    func closeClients() {
        for client in clients { close(client) }
        clients = []
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

    func closeLog() {
        log?.close()
        log = nil
    }
}

/// The monitor's attach socket, `attach` in the container's directory:
/// clients get the container's output as frames (1 byte stream, 1 stdout
/// or 2 stderr; 4 bytes big-endian length; the bytes) and may write raw
/// bytes that become the container's stdin (with -i). The socket closes
/// when the container exits.
package enum AttachSocket {
    package static let name = "attach"

    /// Bound through /proc/self/fd, so a long store path still fits sun_path.
    static func listen(directory: String) -> Int32? {
        let dir = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard dir >= 0 else { return nil }
        defer { close(dir) }
        _ = unlinkat(dir, name, 0)
        let fd = berth_unix_listen("/proc/self/fd/\(dir)/\(name)")
        return fd >= 0 ? fd : nil
    }

    package static func connect(directory: String) -> Int32? {
        let dir = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard dir >= 0 else { return nil }
        defer { close(dir) }
        let fd = berth_unix_connect("/proc/self/fd/\(dir)/\(name)")
        return fd >= 0 ? fd : nil
    }

    static func frame(stream: Int, _ bytes: ArraySlice<UInt8>) -> [UInt8] {
        let count = UInt32(bytes.count)
        return [UInt8(stream), UInt8(count >> 24), UInt8((count >> 16) & 0xff), UInt8((count >> 8) & 0xff), UInt8(count & 0xff)] + bytes
    }
}

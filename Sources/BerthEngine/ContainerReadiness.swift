#if canImport(Glibc)
import Glibc
#endif
import BerthOCI
import BerthOS
import BerthRuntime
import CBerth

/// What the berth that supervises a container (a foreground `run`, or the
/// monitor) does for systemd and for health checks, from the descriptors
/// in its poll set:
///
/// - `--sdnotify`: MAINPID (its own pid: the process systemd should
///   watch) once the container runs, READY=1 at once with `conmon`; with
///   `container`, the proxy socket bound at /run/notify in the container,
///   whose datagrams are passed on (conmon's list of lines).
/// - Health checks every interval (a timerfd): each one is `berth
///   healthcheck run` as a child, which execs the check into the container
///   and records it; this process only notices that child's end (its
///   output pipe closes), so relaying the container's output never waits
///   for a check. A check that outlives its timeout by 10 s is killed.
final class ContainerReadiness: @unchecked Sendable {
    let engine: Engine
    let container: Container
    /// The host's notify socket, when berth speaks to it for this container.
    let notifySocket: String?
    let mode: String
    private var proxy: Int32 = -1
    private let timer: Int32
    private let interval: Int
    private let watchdog: Int
    /// The running check: the child's pid, a pidfd to kill it by, its output pipe.
    private var check: (pid: pid_t, pidfd: Int32, output: FileDescriptor)?

    init(engine: Engine, container: Container) {
        self.engine = engine
        self.container = container
        let config = container.config
        mode = config.sdNotifyMode ?? "container"
        notifySocket = mode == "ignore" ? nil : config.sdNotifySocket
        if mode == "container", notifySocket != nil {
            // Before the launch: the container may send from its first instruction on.
            proxy = SystemdNotify.bindProxy(directory: engine.containers.path(container.id))
        }
        let health = config.healthcheck
        interval = Int((health?.Interval ?? 0) / 1_000_000)
        watchdog = Int((health?.Timeout ?? HealthDefaults.timeout) / 1_000_000) + 10_000
        timer = health?.command != nil && interval > 0 ? berth_timer_create() : -1
    }

    deinit {
        stopChecks()
        if timer >= 0 { close(timer) }
        closeProxy()
    }

    /// For the supervisor's poll set.
    var descriptors: [Int32] {
        var fds: [Int32] = []
        if proxy >= 0 { fds.append(proxy) }
        if timer >= 0 { fds.append(timer) }
        if let check { fds.append(check.output.rawValue) }
        return fds
    }

    func handles(_ fd: Int32) -> Bool { fd >= 0 && (fd == proxy || fd == timer || fd == check?.output.rawValue) }

    func ready(_ fd: Int32) {
        if fd == proxy {
            relay()
        } else if fd == timer {
            var expirations: UInt64 = 0
            _ = read(timer, &expirations, 8)
            if let check {
                // The check outlived its timeout: its exec'd command dies with it (PDEATHSIG).
                if check.pidfd >= 0 { _ = berth_pidfd_send_signal(check.pidfd, SIGKILL) } else { _ = kill(check.pid, SIGKILL) }
            } else {
                startCheck()
            }
        } else if let check, fd == check.output.rawValue {
            var buffer = [UInt8](repeating: 0, count: 4096)
            let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 && (Errno.current == .wouldBlock || Errno.current == .interrupted) { return }
            if n > 0 { return } // what `healthcheck run` says is in the record already
            endCheck()
            _ = berth_timer_arm(timer, interval)
        }
    }

    /// The container runs: tell systemd who to watch, and start the checks' clock.
    func started(pid: pid_t) {
        if let notifySocket {
            SystemdNotify.send("MAINPID=\(getpid())" + (mode == "conmon" ? "\nREADY=1" : ""), to: notifySocket)
        }
        if timer >= 0 { _ = berth_timer_arm(timer, interval) }
    }

    /// The container has exited: no more checks, no more messages.
    func finished() {
        stopChecks()
        if timer >= 0 { _ = berth_timer_arm(timer, 0) }
        closeProxy()
    }

    // MARK: the proxy

    private func relay() {
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = buffer.withUnsafeMutableBytes { recv(proxy, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT)) }
            if n < 0 { return }
            if let notifySocket, let message = SystemdNotify.forwarded(buffer[0..<n]) {
                SystemdNotify.send(message, to: notifySocket)
            }
        }
    }

    private func closeProxy() {
        guard proxy >= 0 else { return }
        close(proxy)
        proxy = -1
        SystemdNotify.unlinkProxy(directory: engine.containers.path(container.id))
    }

    // MARK: checks

    /// `berth --root STORE --runroot STATE healthcheck run ID` as a child,
    /// its stdout and stderr a pipe whose end says it has ended.
    private func startCheck() {
        guard let input = try? makePipe() else { return }
        defer { input.read.close() }
        input.write.close()
        guard let output = try? makePipe() else { return }
        let arguments = ["berth", "--root", engine.images.root, "--runroot", engine.runtime.stateRoot,
                         "healthcheck", "run", container.id]
        let pid: pid_t
        do {
            pid = try Subprocess.spawn("/proc/self/exe", arguments: arguments, environment: Engine.environment(),
                                       stdio: [input.read.rawValue, output.write.rawValue, output.write.rawValue])
        } catch {
            output.read.close()
            output.write.close()
            _ = berth_timer_arm(timer, interval)
            return
        }
        output.write.close()
        try? output.read.setNonBlocking(true)
        check = (pid, berth_pidfd_open(pid), output.read)
        _ = berth_timer_arm(timer, watchdog)
    }

    /// The child has ended: reap it (unless the supervisor did) and let go.
    private func endCheck() {
        guard let check else { return }
        var status: Int32 = 0
        _ = waitpid(check.pid, &status, WNOHANG)
        if check.pidfd >= 0 { close(check.pidfd) }
        check.output.close()
        self.check = nil
    }

    private func stopChecks() {
        guard let check else { return }
        if check.pidfd >= 0 { _ = berth_pidfd_send_signal(check.pidfd, SIGKILL) } else { _ = kill(check.pid, SIGKILL) }
        var status: Int32 = 0
        _ = waitpid(check.pid, &status, 0)
        if check.pidfd >= 0 { close(check.pidfd) }
        check.output.close()
        self.check = nil
    }
}

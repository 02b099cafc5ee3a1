#if canImport(Glibc)
import Glibc
#endif
import BerthOS
import BerthRuntime
import CBerth

extension ContainerConfig {
    /// Its own --cgroups, else the global one.
    func cgroupMode(default mode: CgroupMode) -> CgroupMode {
        cgroups.flatMap(CgroupMode.init(rawValue:)) ?? mode
    }
}

/// The deadlines of the process that supervises a container (a foreground
/// `run`, or the monitor): `--timeout` (the stop signal when it passes,
/// SIGKILL `--stop-timeout` seconds later), and the same SIGKILL
/// escalation when berth itself forwards the stop signal (a foreground
/// berth told to stop, as `systemctl stop` does). A timerfd in the
/// supervisor's poll set: no thread, no SIGALRM.
final class ContainerTimer: @unchecked Sendable {
    let fd: Int32
    /// --timeout, in seconds (0: none).
    let limit: Int
    let stopSignal: Int32
    /// --stop-timeout, in seconds.
    let grace: Int
    private(set) var pid: pid_t = 0
    /// The container ran out of its --timeout.
    private(set) var timedOut = false
    private var killing = false

    init(config: ContainerConfig) {
        fd = berth_timer_create()
        limit = config.timeout ?? 0
        stopSignal = SignalName.parse(config.stopSignal) ?? SIGTERM
        grace = config.stopTimeout
    }

    deinit { if fd >= 0 { close(fd) } }

    /// The descriptor to poll (none if the timerfd could not be made).
    var descriptors: [Int32] { fd >= 0 ? [fd] : [] }

    func started(pid: pid_t) {
        self.pid = pid
        timedOut = false
        killing = false
        if limit > 0 { _ = berth_timer_arm(fd, limit * 1000) }
    }

    /// Berth forwarded `signal` to the container: the stop signal starts the grace period.
    func forwarded(_ signal: Int32) {
        guard signal == stopSignal, pid > 0, !killing else { return }
        killing = true
        _ = berth_timer_arm(fd, grace * 1000)
    }

    /// The timer fired: first the stop signal (--timeout), then SIGKILL.
    func fired() {
        var expirations: UInt64 = 0
        _ = read(fd, &expirations, 8)
        guard pid > 0 else { return }
        if !killing {
            timedOut = true
            killing = true
            _ = Glibc.kill(pid, stopSignal)
            _ = berth_timer_arm(fd, grace * 1000)
        } else {
            _ = Glibc.kill(pid, SIGKILL)
        }
    }

    /// What the record's State.Error says after a timeout.
    var message: String { "exceeded --timeout \(limit)s: stopped" }
}

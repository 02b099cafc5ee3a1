#if canImport(Glibc)
import Glibc
#endif
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import BerthOCI
import BerthOS
import BerthRuntime
import CBerth

/// run/create's health-check flags as given (checked by `SpecBuilder`).
package struct HealthOptions: Sendable {
    /// --health-cmd: a shell command, a JSON array, or `none`.
    package var command: String?
    /// --health-interval: a duration, or `disable`.
    package var interval: String?
    package var retries: String?
    package var startPeriod: String?
    package var timeout: String?
    /// --no-healthcheck
    package var disabled = false

    package init() {}
}

/// A container's health as `inspect` shows it (`State.Health`, podman's shape).
package struct HealthState: Codable, Sendable, Equatable {
    /// starting (until a check passes), healthy, unhealthy
    package var status: String
    /// Failed checks in a row, outside the start period.
    package var failingStreak = 0
    /// The last five checks, oldest first.
    package var log: [HealthLogEntry] = []

    package static let keptChecks = 5
    /// Bytes of a check's output kept (podman's default).
    package static let keptOutput = 500

    package init(status: String) { self.status = status }

    enum CodingKeys: String, CodingKey {
        case status = "Status", failingStreak = "FailingStreak", log = "Log"
    }

    /// One more check: passed (exit 0) → healthy; a failure outside the
    /// start period adds to the streak, and `retries` in a row → unhealthy.
    package mutating func record(_ entry: HealthLogEntry, retries: Int, inStartPeriod: Bool) {
        if entry.exitCode == 0 {
            status = "healthy"
            failingStreak = 0
        } else if !inStartPeriod {
            failingStreak += 1
            if failingStreak >= retries { status = "unhealthy" }
        }
        log.append(entry)
        if log.count > Self.keptChecks { log.removeFirst(log.count - Self.keptChecks) }
    }
}

package struct HealthLogEntry: Codable, Sendable, Equatable {
    package var start: String
    package var end: String
    /// The check's exit code; -1 when it ran out of its timeout.
    package var exitCode: Int32
    package var output: String

    package init(start: String, end: String, exitCode: Int32, output: String) {
        self.start = start
        self.end = end
        self.exitCode = exitCode
        self.output = output
    }

    enum CodingKeys: String, CodingKey {
        case start = "Start", end = "End", exitCode = "ExitCode", output = "Output"
    }
}

/// Go's duration syntax, as podman reads --health-interval and friends:
/// `30s`, `1m30s`, `1.5s`, `500ms`, `2h`; `0` alone needs no unit.
package enum GoDuration {
    /// Nanoseconds, or nil for anything else (negative durations included).
    package static func parse(_ text: String) -> Int64? {
        if text == "0" { return 0 }
        let units: [(String, Double)] = [("ns", 1), ("us", 1e3), ("µs", 1e3), ("μs", 1e3), ("ms", 1e6), ("s", 1e9), ("m", 60e9), ("h", 3600e9)]
        var rest = Substring(text)
        var total = 0.0
        guard !rest.isEmpty else { return nil }
        while !rest.isEmpty {
            let number = rest.prefix { $0.isNumber || $0 == "." }
            guard !number.isEmpty, number != ".", let value = Double(number.hasPrefix(".") ? "0" + number : String(number)) else { return nil }
            rest = rest.dropFirst(number.count)
            let unitText = rest.prefix { !$0.isNumber && $0 != "." }
            guard let unit = units.first(where: { $0.0 == unitText }) else { return nil }
            rest = rest.dropFirst(unitText.count)
            total += value * unit.1
        }
        guard total < 9.2e18 else { return nil }
        return Int64(total)
    }

    /// Go's way of printing one: `30s`, `1m30s`, `1h0m0s`, `1.5s`, `500ms`.
    package static func format(_ nanoseconds: Int64) -> String {
        if nanoseconds == 0 { return "0s" }
        if nanoseconds < 1_000_000_000 {
            if nanoseconds % 1_000_000 == 0 { return "\(nanoseconds / 1_000_000)ms" }
            if nanoseconds % 1000 == 0 { return "\(nanoseconds / 1000)µs" }
            return "\(nanoseconds)ns"
        }
        let seconds = nanoseconds / 1_000_000_000, fraction = nanoseconds % 1_000_000_000
        var secondsText = String(seconds % 60)
        if fraction != 0 {
            var digits = String(fraction)
            digits = String(repeating: "0", count: 9 - digits.count) + digits
            while digits.hasSuffix("0") { digits.removeLast() }
            secondsText += "." + digits
        }
        let minutes = seconds / 60, hours = minutes / 60
        if hours > 0 { return "\(hours)h\(minutes % 60)m\(secondsText)s" }
        if minutes > 0 { return "\(minutes)m\(secondsText)s" }
        return secondsText + "s"
    }
}

/// The defaults podman gives a check that does not say.
package enum HealthDefaults {
    package static let interval: Int64 = 30_000_000_000
    package static let timeout: Int64 = 30_000_000_000
    package static let retries = 3
}

extension SpecBuilder {
    /// `--health-cmd` as podman reads it: a JSON array of several words is
    /// `CMD` (run as is), one word or a string is `CMD-SHELL` (`/bin/sh
    /// -c`), a leading `CMD`/`CMD-SHELL` is kept, `none` is no check (nil).
    package static func healthTest(_ text: String) throws(EngineError) -> [String]? {
        var words: [String]
        var isArray = false
        if text.hasPrefix("["), let array = try? JSONDecoder().decode([String].self, from: Data(text.utf8)) {
            words = array
            isArray = true
        } else {
            words = text.split(separator: " ", maxSplits: 1).map(String.init)
        }
        guard let first = words.first, !first.isEmpty else {
            throw EngineError(.invalidArgument, "--health-cmd \"\(text)\": give a command, or none")
        }
        switch first.uppercased() {
        case "NONE":
            return nil
        case "CMD":
            if !isArray { words = text.split(separator: " ").map(String.init) }
            words[0] = "CMD"
            guard words.count > 1 else { throw EngineError(.invalidArgument, "--health-cmd \"\(text)\": CMD needs a command") }
            return words
        case "CMD-SHELL":
            guard words.count > 1 else { throw EngineError(.invalidArgument, "--health-cmd \"\(text)\": CMD-SHELL needs a command") }
            return ["CMD-SHELL", words.dropFirst().joined(separator: " ")]
        default:
            if isArray && words.count > 1 { return ["CMD"] + words }
            return ["CMD-SHELL", words.joined(separator: " ")]
        }
    }

    /// The container's check: --health-cmd's, else the image's
    /// HEALTHCHECK; the timing flags (and the defaults: 30s, 30s, 3, 0s)
    /// fill in. nil: no check (--no-healthcheck, `none`, or neither).
    func resolveHealthcheck(image: HealthConfig?) throws(EngineError) -> HealthConfig? {
        let flags = options.health
        var check: HealthConfig
        if flags.disabled {
            if flags.command != nil {
                throw EngineError(.invalidArgument, "--no-healthcheck and --health-cmd conflict: give one of them")
            }
            return nil
        }
        if let text = flags.command {
            guard let test = try Self.healthTest(text) else { return nil }
            check = HealthConfig(Test: test)
        } else if let image, image.command != nil {
            check = image
        } else {
            return nil
        }
        if let text = flags.interval {
            guard text == "disable" || GoDuration.parse(text) != nil else {
                throw EngineError(.invalidArgument, "--health-interval \"\(text)\": expected a duration such as 30s, or disable")
            }
            check.Interval = text == "disable" ? 0 : GoDuration.parse(text)
        } else if (check.Interval ?? 0) <= 0 {
            check.Interval = HealthDefaults.interval
        }
        if let text = flags.timeout {
            guard let timeout = GoDuration.parse(text), timeout >= 1_000_000_000 else {
                throw EngineError(.invalidArgument, "--health-timeout \"\(text)\": expected a duration of at least 1s, such as 30s")
            }
            check.Timeout = timeout
        } else if (check.Timeout ?? 0) <= 0 {
            check.Timeout = HealthDefaults.timeout
        }
        if let text = flags.retries {
            guard let retries = Int(text), retries >= 1 else {
                throw EngineError(.invalidArgument, "--health-retries \"\(text)\": expected a number ≥ 1")
            }
            check.Retries = retries
        } else if (check.Retries ?? 0) <= 0 {
            check.Retries = HealthDefaults.retries
        }
        if let text = flags.startPeriod {
            guard let period = GoDuration.parse(text) else {
                throw EngineError(.invalidArgument, "--health-start-period \"\(text)\": expected a duration such as 0s or 1m")
            }
            check.StartPeriod = period
        } else if (check.StartPeriod ?? 0) < 0 {
            check.StartPeriod = 0
        }
        check.StartPeriod = check.StartPeriod ?? 0
        check.StartInterval = nil
        return check
    }
}

extension ContainerState {
    /// A new run: a container with a check starts out `starting`; the log is kept.
    mutating func resetHealth(_ config: ContainerConfig) {
        readyNotified = nil
        guard config.healthcheck != nil else {
            health = nil
            return
        }
        var reset = health ?? HealthState(status: "starting")
        reset.status = "starting"
        reset.failingStreak = 0
        health = reset
    }
}

/// What one `healthcheck run` found.
package struct HealthCheckOutcome: Sendable {
    /// The check's exit code (-1: it ran out of its timeout).
    package var exitCode: Int32
    /// It failed while the container was in its start period (not counted).
    package var inStartPeriod: Bool
    /// The container's health after it.
    package var health: HealthState

    /// podman's word for this check's result: healthy, starting or unhealthy.
    package var word: String { exitCode == 0 ? "healthy" : inStartPeriod ? "starting" : "unhealthy" }
}

extension Engine {
    /// Runs the container's check once, now, as an exec into it bounded by
    /// its timeout, and records it (`State.Health`). The berth whose check
    /// first finds a `--sdnotify healthy` container healthy in this run
    /// (whatever came before) sends READY=1.
    /// This process joins the container's namespaces (an exec does): it
    /// is `berth healthcheck run`, its own process.
    package func runHealthCheck(_ container: Container) throws(EngineError) -> HealthCheckOutcome {
        guard let check = container.config.healthcheck, let command = check.command else {
            throw EngineError(.invalidArgument, "container \(container.name) has no defined healthcheck")
        }
        guard container.state.status == "running" else {
            throw EngineError(.invalidState, "container \(container.name) is not running")
        }
        let started = Timestamp.now()
        let inStartPeriod = container.state.startedAt.flatMap(Timestamp.init(rfc3339:)).map {
            started < $0.advanced(byNanoseconds: check.StartPeriod ?? 0)
        } ?? false
        let timeout = check.Timeout ?? HealthDefaults.timeout
        let (exitCode, output) = try execCheck(container, command: command, timeoutMilliseconds: Int(max(1, timeout / 1_000_000)),
                                               timeoutText: GoDuration.format(timeout))
        let entry = HealthLogEntry(start: started.rfc3339Nano, end: Timestamp.now().rfc3339Nano, exitCode: exitCode, output: output)
        var notify = false
        let updated = try containers.update(container.id) { (record) throws(EngineError) in
            var health = record.state.health ?? HealthState(status: "starting")
            health.record(entry, retries: record.config.healthcheck?.Retries ?? HealthDefaults.retries, inStartPeriod: inStartPeriod)
            record.state.health = health
            // Once per run, decided under the lock: concurrent checks send it once.
            if health.status == "healthy", record.config.sdNotifyMode == "healthy", record.state.readyNotified != true {
                record.state.readyNotified = true
                notify = true
            }
        }
        let health = updated.state.health ?? HealthState(status: "starting")
        if notify, let socket = updated.config.sdNotifySocket {
            SystemdNotify.send("READY=1", to: socket)
        }
        return HealthCheckOutcome(exitCode: exitCode, inStartPeriod: inStartPeriod && exitCode != 0, health: health)
    }

    /// The check as an exec with its output captured: (exit code, output).
    /// A command that cannot run is a failed check (126, 127), as a
    /// timeout is (-1, after SIGKILL); anything else is berth's error.
    private func execCheck(_ container: Container, command: [String], timeoutMilliseconds: Int,
                           timeoutText: String) throws(EngineError) -> (Int32, String) {
        let input: (read: FileDescriptor, write: FileDescriptor)
        let output: (read: FileDescriptor, write: FileDescriptor)
        do {
            input = try makePipe()
            output = try makePipe()
        } catch {
            throw EngineError(.failed, "create a pipe: \(error)")
        }
        input.write.close()
        let observer = HealthCheckObserver(timeoutMilliseconds: timeoutMilliseconds)
        // Our end of the output's write side goes once the check runs (or now, if it never did).
        observer.closeAfterStart = [output.write]
        defer {
            input.read.close()
            output.read.close()
            observer.closeRemaining()
        }
        var options = ExecOptions(id: container.id)
        options.arguments = command
        options.stdio = [input.read.rawValue, output.write.rawValue, output.write.rawValue]
        options.outputs = [output.read]
        options.observer = observer
        var code: Int32
        do {
            code = try ExecLauncher.exec(options, paths: runtime)
        } catch let error where error.code == .commandNotFound || error.code == .commandNotExecutable {
            return (Engine.exitCode(for: error), error.message)
        } catch {
            throw EngineError(.failed, error.message)
        }
        var text = String(decoding: observer.collected, as: UTF8.self)
        if observer.timedOut {
            code = -1
            text += (text.isEmpty || text.hasSuffix("\n") ? "" : "\n") + "healthcheck command exceeded timeout of \(timeoutText)"
        }
        return (code, text)
    }
}

/// The exec'd check's side of the supervisor: keeps the first bytes of
/// its output and kills it when its timeout passes (a timerfd).
final class HealthCheckObserver: LaunchObserver, @unchecked Sendable {
    private(set) var collected: [UInt8] = []
    private(set) var timedOut = false
    var closeAfterStart: [FileDescriptor] = []
    private var pid: pid_t = 0
    private let timer: Int32

    init(timeoutMilliseconds: Int) {
        timer = berth_timer_create()
        if timer >= 0 { _ = berth_timer_arm(timer, timeoutMilliseconds) }
    }

    deinit { if timer >= 0 { close(timer) } }

    func started(pid: pid_t, startTime: UInt64) {
        self.pid = pid
        closeRemaining()
    }

    func closeRemaining() {
        for fd in closeAfterStart { fd.close() }
        closeAfterStart = []
    }

    func output(stream: Int, bytes: ArraySlice<UInt8>) {
        let room = HealthState.keptOutput - collected.count
        if room > 0 { collected += bytes.prefix(room) }
    }

    func finished(status: ExitStatus, oomKilled: Bool) {}

    func descriptors() -> [Int32] { timer >= 0 && !timedOut ? [timer] : [] }

    func ready(_ fd: Int32) -> [UInt8]? {
        var expirations: UInt64 = 0
        _ = read(fd, &expirations, 8)
        timedOut = true
        if pid > 0 { Self.killTree(pid) }
        return nil
    }

    /// SIGKILL to `root` and every process below it: each is stopped
    /// before its children are read (none can fork meanwhile), so a
    /// shell's children do not outlive it in the container.
    static func killTree(_ root: pid_t) {
        var found: [pid_t] = []
        var queue = [root]
        while let pid = queue.popLast(), found.count < 4096 {
            guard !found.contains(pid), kill(pid, SIGSTOP) == 0 else { continue }
            found.append(pid)
            guard let tasks = try? FileDescriptor.open("/proc/\(pid)/task", O_RDONLY | O_DIRECTORY | O_CLOEXEC) else { continue }
            let threads = (try? directoryEntries(tasks)) ?? []
            tasks.close()
            for thread in threads {
                let text = (try? Files.readString("/proc/\(pid)/task/\(String(decoding: thread, as: UTF8.self))/children")) ?? ""
                queue += text.split(whereSeparator: { $0 == " " || $0 == "\n" }).compactMap { pid_t($0) }
            }
        }
        for pid in found { _ = kill(pid, SIGKILL) }
    }
}

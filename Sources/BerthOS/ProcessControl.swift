#if canImport(Glibc)
import Glibc
#endif
import CBerth

/// How a child process ended.
public enum ExitStatus: Equatable, Sendable {
    case exited(Int32)
    case signaled(Int32)

    public init(waitStatus: Int32) {
        if berth_wifsignaled(waitStatus) != 0 {
            self = .signaled(berth_wtermsig(waitStatus))
        } else {
            self = .exited(berth_wexitstatus(waitStatus))
        }
    }

    /// The shell convention: the code, or 128+N for signal N.
    public var shellCode: Int32 {
        switch self {
        case .exited(let code): code
        case .signaled(let signal): 128 + signal
        }
    }
}

/// kill(2).
public func sendSignal(_ signal: Int32, to pid: pid_t) throws(Errno) {
    _ = try check(Glibc.kill(pid, signal))
}

/// Whether `pid` exists (it may be a zombie).
public func processExists(_ pid: pid_t) -> Bool {
    Glibc.kill(pid, 0) == 0 || Errno.current == .notPermitted
}

/// waitpid(2), retried on EINTR.
public func waitForProcess(_ pid: pid_t, options: Int32 = 0) throws(Errno) -> (pid: pid_t, status: ExitStatus)? {
    var status: Int32 = 0
    let result = try retryOnInterrupt { Glibc.waitpid(pid, &status, options) }
    if result == 0 { return nil }
    return (result, ExitStatus(waitStatus: status))
}

/// execve(2). Only returns by throwing.
public func execute(path: String, arguments: [String], environment: [String]) -> Errno {
    var argv: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) } + [nil]
    var envp: [UnsafeMutablePointer<CChar>?] = environment.map { strdup($0) } + [nil]
    Glibc.execve(path, &argv, &envp)
    let error = Errno.current
    for p in argv { free(p) }
    for p in envp { free(p) }
    return error
}

/// fork(2)-like clone(2) with namespace flags. Returns 0 in the child.
public func cloneProcess(flags: UInt) throws(Errno) -> pid_t {
    try check(berth_clone(flags))
}

/// The process's start time in clock ticks since boot (field 22 of
/// /proc/PID/stat): together with the pid it names a process uniquely, so a
/// recycled pid is never mistaken for the container.
public func processStartTime(_ pid: pid_t) -> UInt64? {
    guard let stat = try? Files.readString("/proc/\(pid)/stat"),
          let close = stat.lastIndex(of: ")") else { return nil }
    let fields = stat[stat.index(after: close)...].split(separator: " ")
    // fields[0] is the state (field 3); start time is field 22.
    guard fields.count > 19 else { return nil }
    return UInt64(fields[19])
}

/// The one-letter state of /proc/PID/stat ("R", "S", "Z", …).
public func processState(_ pid: pid_t) -> Character? {
    guard let stat = try? Files.readString("/proc/\(pid)/stat"),
          let close = stat.lastIndex(of: ")") else { return nil }
    return stat[stat.index(after: close)...].split(separator: " ").first?.first
}

/// Signal numbers by name, with or without SIG, as kill(1) accepts them.
public enum SignalName {
    static let table: [String: Int32] = [
        "HUP": SIGHUP, "INT": SIGINT, "QUIT": SIGQUIT, "ILL": SIGILL, "TRAP": SIGTRAP,
        "ABRT": SIGABRT, "IOT": SIGIOT, "BUS": SIGBUS, "FPE": SIGFPE, "KILL": SIGKILL,
        "USR1": SIGUSR1, "SEGV": SIGSEGV, "USR2": SIGUSR2, "PIPE": SIGPIPE, "ALRM": SIGALRM,
        "TERM": SIGTERM, "STKFLT": SIGSTKFLT, "CHLD": SIGCHLD, "CONT": SIGCONT, "STOP": SIGSTOP,
        "TSTP": SIGTSTP, "TTIN": SIGTTIN, "TTOU": SIGTTOU, "URG": SIGURG, "XCPU": SIGXCPU,
        "XFSZ": SIGXFSZ, "VTALRM": SIGVTALRM, "PROF": SIGPROF, "WINCH": SIGWINCH, "IO": SIGIO,
        "POLL": SIGPOLL, "PWR": SIGPWR, "SYS": SIGSYS,
    ]

    /// Parses "TERM", "SIGTERM", "15", "RTMIN+3". Nil when unknown.
    public static func parse(_ text: String) -> Int32? {
        if let number = Int32(text) { return (1..<65).contains(number) ? number : nil }
        var name = text.uppercased()
        if name.hasPrefix("SIG") { name.removeFirst(3) }
        if let number = table[name] { return number }
        let rtmin = Int32(34), rtmax = Int32(64)
        if name == "RTMIN" { return rtmin }
        if name == "RTMAX" { return rtmax }
        if name.hasPrefix("RTMIN+"), let n = Int32(name.dropFirst(6)), n >= 0, rtmin + n <= rtmax { return rtmin + n }
        if name.hasPrefix("RTMAX-"), let n = Int32(name.dropFirst(6)), n >= 0, rtmax - n >= rtmin { return rtmax - n }
        return nil
    }
}

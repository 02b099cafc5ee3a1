#if canImport(Glibc)
import Glibc
#endif
import CBerth

/// Runs a helper program (hooks, newuidmap) with posix_spawn: no fork of
/// this process's memory, and the caller's signal mask is reset for it.
public enum Subprocess {
    public struct Result: Sendable {
        public var status: ExitStatus
        public var standardError: String
        public var timedOut: Bool
    }

    /// Runs `path` with `arguments` (argv[0] included) and `environment`,
    /// feeding `input` on stdin; stdout goes to this process's stderr (so
    /// a hook cannot corrupt a command's JSON output). Kills it after
    /// `timeout` seconds when given.
    public static func run(_ path: String, arguments: [String], environment: [String], input: [UInt8] = [],
                           timeout: Int? = nil, captureStandardError: Bool = false) throws(Errno) -> Result {
        let stdinPipe = try makePipe()
        let stderrPipe = try makePipe()
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, stdinPipe.read.rawValue, 0)
        posix_spawn_file_actions_adddup2(&actions, 2, 1)
        if captureStandardError { posix_spawn_file_actions_adddup2(&actions, stderrPipe.write.rawValue, 2) }
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var emptyMask = sigset_t()
        sigemptyset(&emptyMask)
        var defaults = sigset_t()
        sigfillset(&defaults)
        posix_spawnattr_setsigmask(&attributes, &emptyMask)
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))

        var argv: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) } + [nil]
        var envp: [UnsafeMutablePointer<CChar>?] = environment.map { strdup($0) } + [nil]
        defer { for p in argv { free(p) }; for p in envp { free(p) } }
        var pid: pid_t = 0
        let spawnResult = posix_spawn(&pid, path, &actions, &attributes, &argv, &envp)
        stdinPipe.read.close()
        stderrPipe.write.close()
        defer { stderrPipe.read.close() }
        if spawnResult != 0 {
            stdinPipe.write.close()
            throw Errno(spawnResult)
        }
        // A hook that does not read stdin must not block us: ignore EPIPE.
        let oldPipe = signal(SIGPIPE, SIG_IGN)
        try? stdinPipe.write.writeAll(input)
        stdinPipe.write.close()
        signal(SIGPIPE, oldPipe)

        var errorText: [UInt8] = []
        if captureStandardError { errorText = (try? stderrPipe.read.readAll(limit: 1 << 16)) ?? [] }
        var timedOut = false
        if let timeout, timeout > 0 {
            let pidfd = berth_pidfd_open(pid)
            if pidfd >= 0 {
                var pfd = pollfd(fd: pidfd, events: Int16(POLLIN), revents: 0)
                var remaining = Int32(timeout * 1000)
                while remaining > 0 {
                    let r = poll(&pfd, 1, min(remaining, 1000))
                    if r > 0 { break }
                    if r == 0 { remaining -= min(remaining, 1000) }
                }
                if remaining <= 0 { timedOut = true; _ = Glibc.kill(pid, SIGKILL) }
                Glibc.close(pidfd)
            }
        }
        guard let (_, status) = try waitForProcess(pid) else { throw Errno.noSuchProcess }
        return Result(status: status, standardError: String(decoding: errorText, as: UTF8.self), timedOut: timedOut)
    }
}

extension String {
    /// The string without leading and trailing spaces, tabs and newlines.
    public var trimmed: String {
        let isSpace: (Character) -> Bool = { $0 == " " || $0 == "\t" || $0 == "\n" || $0 == "\r" }
        guard let start = firstIndex(where: { !isSpace($0) }), let end = lastIndex(where: { !isSpace($0) }) else { return "" }
        return String(self[start...end])
    }
}

/// The process environment, for posix_spawn.
public func berth_environ_pointer() -> UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? {
    berth_environ()
}

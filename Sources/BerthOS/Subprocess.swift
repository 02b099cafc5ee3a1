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

    /// Waits for `pid` to exit while reading its stderr, killing it at the
    /// deadline: the timer runs while stderr is read, so a hung helper that
    /// keeps stderr open is still killed.
    static func collect(pid: pid_t, standardError: FileDescriptor?, timeout: Int?) -> ([UInt8], Bool) {
        var output: [UInt8] = []
        let pidfd = berth_pidfd_open(pid)
        defer { if pidfd >= 0 { Glibc.close(pidfd) } }
        let deadline = timeout.map { monotonicMilliseconds() + Int64($0) * 1000 }
        var timedOut = false
        var readingError = standardError != nil
        var exited = false
        var buffer = [UInt8](repeating: 0, count: 4096)
        while !exited || readingError {
            var fds: [pollfd] = []
            if pidfd >= 0 && !exited { fds.append(pollfd(fd: pidfd, events: Int16(POLLIN), revents: 0)) }
            if readingError, let standardError { fds.append(pollfd(fd: standardError.rawValue, events: Int16(POLLIN), revents: 0)) }
            if fds.isEmpty { break }
            var wait: Int32 = -1
            if let deadline, !exited { wait = Int32(max(0, deadline - monotonicMilliseconds())) }
            if exited { wait = 200 } // a grandchild may keep stderr open: read what is there, briefly
            let ready = poll(&fds, nfds_t(fds.count), wait)
            if ready < 0 { if Errno.current == .interrupted { continue }; break }
            if ready == 0 {
                if exited { break }
                timedOut = true
                _ = Glibc.kill(pid, SIGKILL)
                exited = true
                continue
            }
            for entry in fds where entry.revents != 0 {
                if entry.fd == pidfd {
                    exited = true
                } else {
                    let n = buffer.withUnsafeMutableBytes { Glibc.read(entry.fd, $0.baseAddress, $0.count) }
                    if n <= 0 { readingError = false } else if output.count < 1 << 16 { output.append(contentsOf: buffer[0..<n]) }
                }
            }
            if pidfd < 0 && !readingError { exited = true }
        }
        return (output, timedOut)
    }

    static func monotonicMilliseconds() -> Int64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Int64(ts.tv_sec) * 1000 + Int64(ts.tv_nsec) / 1_000_000
    }

    /// posix_spawn with `stdio` as its descriptors 0, 1, 2 and the signal
    /// state of a fresh process (berth may have signals blocked or ignored).
    package static func spawn(_ path: String, arguments: [String], environment: [String], stdio: [Int32],
                      joining: Namespaces? = nil) throws(Errno) -> pid_t {
        if let joining { return try spawnJoined(path, arguments: arguments, environment: environment, stdio: stdio, joining: joining) }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        for (target, fd) in stdio.enumerated() { posix_spawn_file_actions_adddup2(&actions, fd, Int32(target)) }
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
        let result = posix_spawn(&pid, path, &actions, &attributes, &argv, &envp)
        if result != 0 { throw Errno(result) }
        return pid
    }

    /// Another process's namespaces for a program to run in (posix_spawn
    /// cannot join them: a forked child does, then execs).
    public struct Namespaces: Sendable {
        public var pid: pid_t
        /// BERTH_CLONE_NEWUSER, BERTH_CLONE_NEWNS, BERTH_CLONE_NEWNET.
        public var flags: Int32
        public init(pid: pid_t, flags: Int32) {
            self.pid = pid
            self.flags = flags
        }
    }

    /// fork, join `joining`'s namespaces, exec; `keep` descriptors survive the exec.
    public static func spawnJoined(_ path: String, arguments: [String], environment: [String], stdio: [Int32],
                                   joining: Namespaces, keep: [Int32] = [], directory: String? = nil) throws(Errno) -> pid_t {
        var argv: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) } + [nil]
        var envp: [UnsafeMutablePointer<CChar>?] = environment.map { strdup($0) } + [nil]
        defer { for p in argv { free(p) }; for p in envp { free(p) } }
        let pid = stdio.withUnsafeBufferPointer { io in
            keep.withUnsafeBufferPointer { kept in
                berth_spawn_joined(joining.pid, joining.flags, path, &argv, &envp, io.baseAddress, kept.baseAddress, Int32(kept.count),
                                   directory)
            }
        }
        if pid < 0 { throw Errno.current }
        return pid
    }

    /// Runs `path` with `arguments` (argv[0] included) and `environment`,
    /// feeding `input` on stdin; stdout goes to this process's stderr (so
    /// a hook cannot corrupt a command's JSON output). Kills it after
    /// `timeout` seconds when given.
    public static func run(_ path: String, arguments: [String], environment: [String], input: [UInt8] = [],
                           timeout: Int? = nil, captureStandardError: Bool = false) throws(Errno) -> Result {
        let stdinPipe = try makePipe()
        let stderrPipe = try makePipe()
        defer { stderrPipe.read.close() }
        let pid: pid_t
        do {
            pid = try spawn(path, arguments: arguments, environment: environment,
                            stdio: [stdinPipe.read.rawValue, 2, captureStandardError ? stderrPipe.write.rawValue : 2])
        } catch {
            stdinPipe.read.close(); stdinPipe.write.close(); stderrPipe.write.close()
            throw error
        }
        stdinPipe.read.close()
        stderrPipe.write.close()
        // A hook that does not read stdin must not block us: ignore EPIPE.
        let oldPipe = signal(SIGPIPE, SIG_IGN)
        try? stdinPipe.write.writeAll(input)
        stdinPipe.write.close()
        signal(SIGPIPE, oldPipe)

        let (errorText, timedOut) = collect(pid: pid, standardError: captureStandardError ? stderrPipe.read : nil, timeout: timeout)
        guard let (_, status) = try waitForProcess(pid) else { throw Errno.noSuchProcess }
        return Result(status: status, standardError: String(decoding: errorText, as: UTF8.self), timedOut: timedOut)
    }

    /// Runs `path` like `run`, but keeps what it writes: stdout and stderr
    /// each into its own buffer (netavark answers JSON on stdout and logs on stderr).
    public static func capture(_ path: String, arguments: [String], environment: [String], input: [UInt8] = [],
                               timeout: Int? = nil, joining: Namespaces? = nil) throws(Errno) -> (status: ExitStatus, output: [UInt8], error: [UInt8]) {
        let stdinPipe = try makePipe()
        let stdoutPipe = try makePipe()
        let stderrPipe = try makePipe()
        defer { stdoutPipe.read.close(); stderrPipe.read.close() }
        let pid: pid_t
        do {
            pid = try spawn(path, arguments: arguments, environment: environment,
                            stdio: [stdinPipe.read.rawValue, stdoutPipe.write.rawValue, stderrPipe.write.rawValue],
                            joining: joining)
        } catch {
            stdinPipe.read.close(); stdinPipe.write.close(); stdoutPipe.write.close(); stderrPipe.write.close()
            throw error
        }
        stdinPipe.read.close()
        stdoutPipe.write.close()
        stderrPipe.write.close()
        let oldPipe = signal(SIGPIPE, SIG_IGN)
        try? stdinPipe.write.writeAll(input)
        stdinPipe.write.close()
        signal(SIGPIPE, oldPipe)
        // Read both pipes until it exits, then what is left in them: a
        // daemon it starts (aardvark-dns) may hold them open for ever.
        var buffers: [[UInt8]] = [[], []]
        let pipes = [stdoutPipe.read.rawValue, stderrPipe.read.rawValue]
        var open = pipes
        let pidfd = berth_pidfd_open(pid)
        defer { if pidfd >= 0 { Glibc.close(pidfd) } }
        let deadline = timeout.map { monotonicMilliseconds() + Int64($0) * 1000 }
        var chunk = [UInt8](repeating: 0, count: 8192)
        func readChunk(_ index: Int) -> Bool {
            let n = chunk.withUnsafeMutableBytes { Glibc.read(pipes[index], $0.baseAddress, $0.count) }
            if n <= 0 { return false }
            if buffers[index].count < 1 << 22 { buffers[index].append(contentsOf: chunk[0..<n]) }
            return true
        }
        var exited = pidfd < 0
        while !exited && open.contains(where: { $0 >= 0 }) {
            var fds = open.filter { $0 >= 0 }.map { pollfd(fd: $0, events: Int16(POLLIN), revents: 0) }
            fds.append(pollfd(fd: pidfd, events: Int16(POLLIN), revents: 0))
            let wait: Int32 = deadline.map { Int32(max(0, $0 - monotonicMilliseconds())) } ?? -1
            let ready = poll(&fds, nfds_t(fds.count), wait)
            if ready < 0 { if Errno.current == .interrupted { continue }; break }
            if ready == 0 { _ = Glibc.kill(pid, SIGKILL); break }
            for entry in fds where entry.revents != 0 {
                if entry.fd == pidfd { exited = true; continue }
                if let index = pipes.firstIndex(of: entry.fd), !readChunk(index) { open[index] = -1 }
            }
        }
        for index in 0..<2 where open[index] >= 0 {
            _ = berth_set_nonblock(pipes[index], 1)
            while readChunk(index) {}
        }
        guard let (_, status) = try waitForProcess(pid) else { throw Errno.noSuchProcess }
        return (status, buffers[0], buffers[1])
    }
}

extension String {
    /// The string without leading and trailing spaces, tabs and newlines.
    public var trimmed: String {
        // On scalars: "\r\n" is one Character, equal to neither "\r" nor "\n".
        let scalars = unicodeScalars
        let isSpace: (Unicode.Scalar) -> Bool = { $0 == " " || $0 == "\t" || $0 == "\n" || $0 == "\r" }
        guard let start = scalars.firstIndex(where: { !isSpace($0) }),
              let end = scalars.lastIndex(where: { !isSpace($0) }) else { return "" }
        return String(scalars[start...end])
    }
}

/// The process environment, for posix_spawn.
public func berth_environ_pointer() -> UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? {
    berth_environ()
}

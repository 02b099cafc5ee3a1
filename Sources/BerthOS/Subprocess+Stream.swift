#if canImport(Glibc)
import Glibc
#endif

extension Subprocess {
    /// Runs `path` (argv[0] included in `arguments`) with an empty stdin,
    /// handing what it writes on stdout to `output` as it comes, for a
    /// program whose output may be large or endless (`journalctl
    /// --follow`). Whenever it has written nothing for `idleMilliseconds`,
    /// `idle` says whether to keep waiting; false ends it with SIGTERM
    /// (SIGKILL two seconds later), and what it wrote until then is still
    /// read. Returns how it ended and the first 64 KiB of its stderr.
    public static func stream(_ path: String, arguments: [String], environment: [String], idleMilliseconds: Int32 = 100,
                              output: (ArraySlice<UInt8>) -> Void, idle: () -> Bool) throws(Errno) -> (status: ExitStatus, error: [UInt8]) {
        var pipes: [(read: FileDescriptor, write: FileDescriptor)] = []
        do {
            for _ in 0..<3 { pipes.append(try makePipe()) }
        } catch {
            for pipe in pipes { pipe.read.close(); pipe.write.close() }
            throw error
        }
        let (input, out, err) = (pipes[0], pipes[1], pipes[2])
        defer { out.read.close(); err.read.close() }
        let pid: pid_t
        do {
            pid = try spawn(path, arguments: arguments, environment: environment,
                            stdio: [input.read.rawValue, out.write.rawValue, err.write.rawValue])
        } catch {
            for pipe in [input, out, err] { pipe.write.close() }
            input.read.close()
            throw error
        }
        for pipe in [input, out, err] { pipe.write.close() }
        input.read.close()

        var open = [out.read.rawValue, err.read.rawValue]
        var errorText: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65_536)
        var terminatedAt: Int64? = nil
        while open.contains(where: { $0 >= 0 }) {
            var fds = open.filter { $0 >= 0 }.map { pollfd(fd: $0, events: Int16(POLLIN), revents: 0) }
            let ready = poll(&fds, nfds_t(fds.count), idleMilliseconds)
            if ready < 0 {
                if Errno.current == .interrupted { continue }
                break
            }
            if ready == 0 {
                if let terminatedAt {
                    if monotonicMilliseconds() - terminatedAt > 2000 { _ = Glibc.kill(pid, SIGKILL) }
                } else if !idle() {
                    _ = Glibc.kill(pid, SIGTERM)
                    terminatedAt = monotonicMilliseconds()
                }
                continue
            }
            for entry in fds where entry.revents != 0 {
                let n = buffer.withUnsafeMutableBytes { Glibc.read(entry.fd, $0.baseAddress, $0.count) }
                if n < 0 && Errno.current == .interrupted { continue }
                if n <= 0 {
                    if let index = open.firstIndex(of: entry.fd) { open[index] = -1 }
                    continue
                }
                if entry.fd == out.read.rawValue {
                    output(buffer[0..<n])
                } else if errorText.count < 1 << 16 {
                    errorText.append(contentsOf: buffer[0..<n])
                }
            }
        }
        guard let (_, status) = try waitForProcess(pid) else { throw Errno.noSuchProcess }
        return (status, errorText)
    }
}

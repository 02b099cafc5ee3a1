#if canImport(Glibc)
import Glibc
#endif
import CBerth

/// A raw file descriptor. Value type; closing is explicit (`close()`) or
/// scoped (`closeAfter`), so fds do not leak on error paths.
public struct FileDescriptor: Hashable, Sendable {
    public let rawValue: Int32
    public init(rawValue: Int32) { self.rawValue = rawValue }

    public static let standardInput = FileDescriptor(rawValue: 0)
    public static let standardOutput = FileDescriptor(rawValue: 1)
    public static let standardError = FileDescriptor(rawValue: 2)

    /// open(2), always O_CLOEXEC.
    public static func open(_ path: String, _ flags: Int32, mode: mode_t = 0o644) throws(Errno) -> FileDescriptor {
        let fd = try retryOnInterrupt { berth_open(path, flags | O_CLOEXEC, UInt32(mode)) }
        return FileDescriptor(rawValue: fd)
    }

    /// openat(2) relative to this directory, always O_CLOEXEC.
    public func openAt(_ path: String, _ flags: Int32, mode: mode_t = 0o644) throws(Errno) -> FileDescriptor {
        let fd = try retryOnInterrupt { berth_openat(rawValue, path, flags | O_CLOEXEC, UInt32(mode)) }
        return FileDescriptor(rawValue: fd)
    }

    public func close() { _ = Glibc.close(rawValue) }

    /// Runs `body`, then closes the descriptor whatever happens.
    public func closeAfter<R, E: Error>(_ body: (FileDescriptor) throws(E) -> R) throws(E) -> R {
        defer { close() }
        return try body(self)
    }

    public func read(into buffer: UnsafeMutableRawBufferPointer) throws(Errno) -> Int {
        try retryOnInterrupt { Glibc.read(rawValue, buffer.baseAddress, buffer.count) }
    }

    /// Reads until end of file.
    public func readAll(limit: Int = 64 << 20) throws(Errno) -> [UInt8] {
        var result: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while result.count < limit {
            let n = try retryOnInterrupt { chunk.withUnsafeMutableBytes { Glibc.read(rawValue, $0.baseAddress, $0.count) } }
            if n == 0 { break }
            result.append(contentsOf: chunk[0..<n])
        }
        return result
    }

    /// Writes all of `bytes`, retrying short writes.
    public func writeAll(_ bytes: some Collection<UInt8>) throws(Errno) {
        let array = Array(bytes)
        var offset = 0
        while offset < array.count {
            let n = try retryOnInterrupt { array.withUnsafeBytes { Glibc.write(rawValue, $0.baseAddress! + offset, $0.count - offset) } }
            offset += n
        }
    }

    public func writeAll(_ string: String) throws(Errno) { try writeAll(Array(string.utf8)) }

    /// Writes a whole buffer without copying it (layer data in large chunks).
    public func writeAll(_ buffer: UnsafeRawBufferPointer) throws(Errno) {
        guard let base = buffer.baseAddress else { return }
        var offset = 0
        while offset < buffer.count {
            let n = try retryOnInterrupt { Glibc.write(rawValue, base + offset, buffer.count - offset) }
            offset += n
        }
    }

    /// dup2(2) onto `target`, which loses close-on-exec.
    public func duplicate(as target: FileDescriptor) throws(Errno) {
        if target == self {
            _ = berth_set_cloexec(rawValue, 0)
            return
        }
        _ = try retryOnInterrupt { Glibc.dup2(rawValue, target.rawValue) }
    }

    /// fcntl(F_DUPFD_CLOEXEC): a copy at or above `minimum`.
    public func duplicate(atLeast minimum: Int32) throws(Errno) -> FileDescriptor {
        FileDescriptor(rawValue: try check(berth_fcntl_int(rawValue, F_DUPFD_CLOEXEC, minimum)))
    }

    public func setCloseOnExec(_ on: Bool) throws(Errno) { _ = try check(berth_set_cloexec(rawValue, on ? 1 : 0)) }
    public func setNonBlocking(_ on: Bool) throws(Errno) { _ = try check(berth_set_nonblock(rawValue, on ? 1 : 0)) }

    /// The path the kernel shows for this descriptor in /proc/self/fd.
    public var procPath: String { "/proc/self/fd/\(rawValue)" }

    public func stat() throws(Errno) -> Glibc.stat {
        var st = Glibc.stat()
        _ = try retryOnInterrupt { Glibc.fstat(rawValue, &st) }
        return st
    }

    public var isTerminal: Bool { Glibc.isatty(rawValue) == 1 }
}

/// pipe2(O_CLOEXEC).
public func makePipe() throws(Errno) -> (read: FileDescriptor, write: FileDescriptor) {
    var fds: [Int32] = [0, 0]
    _ = try check(berth_pipe2(&fds, O_CLOEXEC))
    return (FileDescriptor(rawValue: fds[0]), FileDescriptor(rawValue: fds[1]))
}

/// socketpair(AF_UNIX, SOCK_SEQPACKET): message boundaries keep the
/// parent/child sync protocol simple.
public func makeSocketPair() throws(Errno) -> (FileDescriptor, FileDescriptor) {
    var fds: [Int32] = [0, 0]
    _ = try check(Glibc.socketpair(AF_UNIX, Int32(SOCK_SEQPACKET.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &fds))
    return (FileDescriptor(rawValue: fds[0]), FileDescriptor(rawValue: fds[1]))
}

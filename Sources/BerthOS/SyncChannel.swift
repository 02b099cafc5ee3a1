#if canImport(Glibc)
import Glibc
#endif
import CBerth

/// One end of the parent/child sync socket (SOCK_SEQPACKET): short text
/// messages, optionally carrying a file descriptor.
public struct SyncChannel: Sendable {
    public let descriptor: FileDescriptor
    public init(_ descriptor: FileDescriptor) { self.descriptor = descriptor }

    public func send(_ message: String) throws(Errno) {
        let bytes = Array(message.utf8)
        let n = bytes.withUnsafeBytes { Glibc.send(descriptor.rawValue, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        if n < 0 { throw Errno.current }
    }

    public func send(_ message: String, passing fd: FileDescriptor) throws(Errno) {
        if berth_send_fd(descriptor.rawValue, fd.rawValue, message) != 0 { throw Errno.current }
    }

    /// The next message, or nil at end of stream (the peer exited or exec'd).
    public func receive() throws(Errno) -> (text: String, fd: FileDescriptor?)? {
        var buffer = [UInt8](repeating: 0, count: 65536)
        var fd: Int32 = -1
        let n = buffer.withUnsafeMutableBytes { berth_recv_message(descriptor.rawValue, $0.baseAddress, UInt($0.count), &fd) }
        if n < 0 { throw Errno.current }
        if n == 0 && fd < 0 { return nil }
        return (String(decoding: buffer[0..<Int(n)], as: UTF8.self), fd >= 0 ? FileDescriptor(rawValue: fd) : nil)
    }

    public func close() { descriptor.close() }
}

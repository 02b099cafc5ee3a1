#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// An error number returned by a system call.
public struct Errno: Error, Equatable, Hashable, Sendable, CustomStringConvertible {
    public let rawValue: Int32
    public init(_ rawValue: Int32) { self.rawValue = rawValue }

    /// The calling thread's current `errno`.
    public static var current: Errno { Errno(errno) }

    /// strerror's text with a lowercase first letter ("no such file or
    /// directory"), the form runc and Go print and clients match on.
    public var description: String {
        let text = String(cString: strerror(rawValue))
        guard let first = text.first else { return text }
        return first.lowercased() + text.dropFirst()
    }

    public static let noSuchFile = Errno(ENOENT)
    public static let exists = Errno(EEXIST)
    public static let interrupted = Errno(EINTR)
    public static let permissionDenied = Errno(EACCES)
    public static let notPermitted = Errno(EPERM)
    public static let noSuchProcess = Errno(ESRCH)
    public static let notSupported = Errno(ENOSYS)
    public static let wouldBlock = Errno(EAGAIN)
    public static let invalidArgument = Errno(EINVAL)
    public static let notDirectory = Errno(ENOTDIR)
    public static let tooManyLinks = Errno(ELOOP)
    public static let crossDevice = Errno(EXDEV)
    public static let busy = Errno(EBUSY)
    public static let addressInUse = Errno(EADDRINUSE)
}

/// Calls `body` until it does not fail with EINTR; a -1 result becomes the
/// thrown `Errno`. The one place in berth where EINTR is retried.
@inline(__always)
public func retryOnInterrupt<T: FixedWidthInteger>(_ body: () -> T) throws(Errno) -> T {
    while true {
        let result = body()
        if result != -1 { return result }
        let error = Errno.current
        if error != .interrupted { throw error }
    }
}

/// Like `retryOnInterrupt` for calls that must not be retried (close, etc.).
@inline(__always)
public func check<T: FixedWidthInteger>(_ result: T) throws(Errno) -> T {
    if result == -1 { throw Errno.current }
    return result
}

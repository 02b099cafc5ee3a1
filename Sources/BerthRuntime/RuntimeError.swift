import BerthOS

/// berth's one error type: a code to switch on, and a message that is the
/// single line a user sees after "berth: ".
public struct RuntimeError: Error, CustomStringConvertible, Sendable {
    public enum Code: Sendable {
        case invalidArgument, notFound, exists, invalidState, unsupported, permissionDenied, timeout, failed
    }

    public let code: Code
    public let message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { message }

    /// Names the stage and the path or id in a system error.
    static func system(_ stage: String, _ error: Errno) -> RuntimeError {
        let code: Code = switch error {
        case .noSuchFile: .notFound
        case .permissionDenied, .notPermitted: .permissionDenied
        case .exists: .exists
        default: .failed
        }
        return RuntimeError(code, "\(stage): \(error)")
    }
}

/// Wraps a throwing system call so its error names the step that failed.
@inline(__always)
func step<T>(_ stage: @autoclosure () -> String, _ body: () throws(Errno) -> T) throws(RuntimeError) -> T {
    do { return try body() } catch { throw RuntimeError.system(stage(), error) }
}

/// A warning: one line on stderr, and the launch goes on.
func warn(_ message: String) {
    try? FileDescriptor.standardError.writeAll("berth: warning: \(message)\n")
}

import BerthOS

/// berth's one error type: a code to switch on, and a message that is the
/// single line a user sees after "berth: ".
public struct RuntimeError: Error, CustomStringConvertible, Sendable {
    public enum Code: String, Sendable {
        case invalidArgument, notFound, exists, invalidState, unsupported, permissionDenied, timeout, failed
        /// The container's command does not exist, or cannot be executed
        /// (podman's exit codes 127 and 126).
        case commandNotFound, commandNotExecutable
    }

    public let code: Code
    public let message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { message }

    /// As the container's init sends it to berth over the sync socket.
    var wire: String { "error:\(code.rawValue):\(message)" }

    /// The error a child sent ("error:CODE:MESSAGE"), nil for another message.
    static func fromWire(_ text: String) -> RuntimeError? {
        guard text.hasPrefix("error:") else { return nil }
        let rest = text.dropFirst(6)
        if let colon = rest.firstIndex(of: ":"), let code = Code(rawValue: String(rest[..<colon])) {
            return RuntimeError(code, String(rest[rest.index(after: colon)...]))
        }
        return RuntimeError(.failed, String(rest))
    }

    /// An execve that failed.
    static func exec(_ path: String, _ error: Errno) -> RuntimeError {
        let code: Code = error == .noSuchFile ? .commandNotFound : error == .permissionDenied ? .commandNotExecutable : .failed
        return RuntimeError(code, "exec \"\(path)\": \(error) in the container")
    }

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

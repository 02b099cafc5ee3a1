#if canImport(Glibc)
import Glibc
#endif
import BerthOS

/// A fresh directory under /tmp for one test, removed by `remove()`.
/// Every test (and every argument of a parameterised test) makes its own,
/// so tests can run in parallel.
public struct TemporaryDirectory: Sendable {
    public let path: String

    public init(_ label: String = "test") {
        var template = Array("/tmp/berth-test-\(label)-XXXXXX".utf8CString)
        let made = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }
        precondition(made != nil, "mkdtemp failed: \(Errno.current)")
        path = template.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
    }

    public func remove() { Files.removeTree(path) }

    public func subpath(_ relative: String) -> String { relative.isEmpty ? path : path + "/" + relative }
}

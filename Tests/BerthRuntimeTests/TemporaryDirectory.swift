#if canImport(Glibc)
import Glibc
#endif
import BerthOS

/// A fresh directory under /tmp for one test, removed by `remove()`.
struct TemporaryDirectory {
    let path: String

    init(_ label: String = "runtime") {
        var template = Array("/tmp/berth-test-\(label)-XXXXXX".utf8CString)
        let made = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }
        precondition(made != nil, "mkdtemp failed: \(Errno.current)")
        path = template.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
    }

    func remove() { Files.removeTree(path) }

    func subpath(_ relative: String) -> String { relative.isEmpty ? path : path + "/" + relative }
}

#if canImport(Glibc)
import Glibc
#endif
import Testing
import BerthOS
@testable import BerthRuntime

@Suite("RuntimeError")
struct RuntimeErrorTests {
    @Test("an error crosses the sync socket with its code; a failed execve says whether the command is missing or not executable")
    func wire() {
        let sent = RuntimeError.exec("/bin/x", .noSuchFile)
        #expect(sent.code == .commandNotFound)
        let received = RuntimeError.fromWire(sent.wire)
        #expect(received?.code == .commandNotFound && received?.message == sent.message)
        #expect(RuntimeError.exec("/etc/passwd", .permissionDenied).code == .commandNotExecutable)
        #expect(RuntimeError.exec("/bin/x", .invalidArgument).code == .failed)
        // A message with colons keeps them; an older form without a code is a plain failure.
        #expect(RuntimeError.fromWire(RuntimeError(.invalidState, "a: b: c").wire)?.message == "a: b: c")
        #expect(RuntimeError.fromWire("error:just text")?.code == .failed)
        #expect(RuntimeError.fromWire("ready") == nil)
    }

    @Test("a system error names the stage and maps errno to a code", arguments: [
        (Errno.noSuchFile, RuntimeError.Code.notFound, "no such file or directory"),
        (.permissionDenied, .permissionDenied, "permission denied"),
        (.notPermitted, .permissionDenied, "operation not permitted"),
        (.exists, .exists, "file exists"),
        (.invalidArgument, .failed, "invalid argument"),
        (Errno(EBUSY), .failed, "device or resource busy"),
    ] as [(Errno, RuntimeError.Code, String)])
    func system(error: Errno, code: RuntimeError.Code, text: String) {
        let runtimeError = RuntimeError.system("mount /proc", error)
        #expect(runtimeError.code == code)
        #expect(runtimeError.message == "mount /proc: \(text)")
        #expect(runtimeError.description == runtimeError.message)
    }

    @Test("step() wraps an Errno with the stage name")
    func stepWraps() {
        do {
            _ = try step("open config") { () throws(Errno) -> Int in throw Errno.noSuchFile }
            Issue.record("no error")
        } catch {
            #expect(error.code == .notFound)
            #expect(error.message == "open config: no such file or directory")
        }
    }
}

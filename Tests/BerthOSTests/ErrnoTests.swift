#if canImport(Glibc)
import Glibc
#endif
import Testing
import BerthOS

@Suite("Errno and the system-call helpers")
struct ErrnoTests {
    @Test("named errors are the C errno values", arguments: [
        (Errno.noSuchFile, ENOENT), (.exists, EEXIST), (.interrupted, EINTR), (.permissionDenied, EACCES),
        (.notPermitted, EPERM), (.noSuchProcess, ESRCH), (.notSupported, ENOSYS), (.wouldBlock, EAGAIN),
        (.invalidArgument, EINVAL), (.notDirectory, ENOTDIR), (.tooManyLinks, ELOOP), (.crossDevice, EXDEV),
    ] as [(Errno, Int32)])
    func values(error: Errno, raw: Int32) {
        #expect(error.rawValue == raw)
        #expect(error == Errno(raw))
    }

    @Test("description is strerror's text, lowercased the way runc prints it", arguments: [
        (Errno.noSuchFile, "no such file or directory"), (.permissionDenied, "permission denied"),
        (.notPermitted, "operation not permitted"), (Errno(EEXIST), "file exists"), (Errno(EBUSY), "device or resource busy"),
    ])
    func description(error: Errno, text: String) {
        #expect(error.description == text)
        #expect("\(error)" == text)
    }

    @Test("a failed system call reports its errno")
    func current() {
        #expect(open("/nonexistent/berth-errno-test", O_RDONLY) == -1)
        #expect(Errno.current == .noSuchFile)
    }

    @Test("retryOnInterrupt retries EINTR and returns the first real result")
    func retriesInterrupts() throws {
        var calls = 0
        let value = try retryOnInterrupt { () -> Int32 in
            calls += 1
            if calls < 3 { errno = EINTR; return -1 }
            return 42
        }
        #expect(value == 42)
        #expect(calls == 3)
    }

    @Test("retryOnInterrupt throws any other errno at once")
    func throwsOtherErrors() {
        var calls = 0
        #expect(throws: Errno.noSuchFile) {
            try retryOnInterrupt { () -> Int in
                calls += 1
                errno = ENOENT
                return -1
            }
        }
        #expect(calls == 1)
    }

    @Test("retryOnInterrupt passes through results other than -1", arguments: [0, 1, -2, Int.max])
    func passesResults(result: Int) throws {
        #expect(try retryOnInterrupt { result } == result)
    }

    @Test("check throws on -1 only, without retrying")
    func checkHelper() throws {
        #expect(try check(Int32(0)) == 0)
        #expect(try check(Int64(7)) == 7)
        errno = EINTR
        #expect(throws: Errno.interrupted) { try check(Int32(-1)) }
    }
}

import Testing
import BerthOS

// swift-testing has an ExitStatus of its own (for exit tests): always qualify.
@Suite("ExitStatus")
struct ExitStatusTests {
    @Test("shellCode is the exit code, or 128+N for signal N", arguments: [
        (BerthOS.ExitStatus.exited(0), 0), (.exited(1), 1), (.exited(255), 255),
        (.signaled(9), 137), (.signaled(15), 143), (.signaled(2), 130), (.signaled(64), 192),
    ] as [(BerthOS.ExitStatus, Int32)])
    func shellCode(status: BerthOS.ExitStatus, code: Int32) {
        #expect(status.shellCode == code)
    }

    @Test("decodes raw wait(2) statuses", arguments: [
        (0x0000, BerthOS.ExitStatus.exited(0)),
        (0x0300, .exited(3)),
        (0xff00, .exited(255)),
        (0x0009, .signaled(9)),
        (0x000f, .signaled(15)),
        (0x008b, .signaled(11)), // SIGSEGV with the core-dump bit
    ] as [(Int32, BerthOS.ExitStatus)])
    func waitStatus(raw: Int32, status: BerthOS.ExitStatus) {
        #expect(BerthOS.ExitStatus(waitStatus: raw) == status)
    }

    @Test("a real child's exit code and killing signal come back through Subprocess", arguments: [
        ("exit 0", BerthOS.ExitStatus.exited(0)),
        ("exit 7", .exited(7)),
        ("kill -TERM $$", .signaled(15)),
        ("kill -KILL $$", .signaled(9)),
    ])
    func realChild(script: String, status: BerthOS.ExitStatus) throws {
        let result = try Subprocess.run("/bin/sh", arguments: ["sh", "-c", script], environment: [])
        #expect(result.status == status)
        #expect(!result.timedOut)
    }
}

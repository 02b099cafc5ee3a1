import Testing
import BerthOS

@Suite("Subprocess.run")
struct SubprocessTests {
    @Test("captures standard error and feeds standard input")
    func captureAndInput() throws {
        let result = try Subprocess.run(
            "/bin/sh", arguments: ["sh", "-c", "read line; echo \"got $line\" >&2; exit 3"],
            environment: [], input: Array("hello\n".utf8), captureStandardError: true)
        #expect(result.status == .exited(3))
        #expect(result.standardError.trimmed == "got hello")
    }

    @Test("passes exactly the given environment")
    func environment() throws {
        let result = try Subprocess.run(
            "/bin/sh", arguments: ["sh", "-c", "echo \"$BERTH_TEST_VAR|${HOME-unset}\" >&2"],
            environment: ["BERTH_TEST_VAR=42"], captureStandardError: true)
        #expect(result.standardError.trimmed == "42|unset")
    }

    @Test("kills a child that outlives its timeout")
    func timeout() throws {
        let start = ContinuousClock.now
        let result = try Subprocess.run("/bin/sh", arguments: ["sh", "-c", "exec sleep 30"], environment: [], timeout: 1)
        #expect(result.timedOut)
        #expect(result.status == .signaled(9))
        #expect(ContinuousClock.now - start < .seconds(10))
    }

    @Test("kills a child that outlives its timeout while its stderr is captured")
    func timeoutWhileCapturing() throws {
        let start = ContinuousClock.now
        let result = try Subprocess.run("/bin/sh", arguments: ["sh", "-c", "echo started >&2; exec sleep 3"], environment: [],
                                        timeout: 1, captureStandardError: true)
        #expect(result.timedOut)
        #expect(result.status == .signaled(9))
        #expect(ContinuousClock.now - start < .milliseconds(2500))
        #expect(result.standardError.trimmed == "started")
    }

    @Test("a missing program is an error, not a child that exits 127")
    func missingProgram() {
        #expect(throws: Errno.noSuchFile) {
            try Subprocess.run("/nonexistent/berth-no-such-program", arguments: ["x"], environment: [])
        }
    }
}

import BerthEngine
import BerthOCI
import Testing

@Suite struct HealthCheckTests {
    @Test(arguments: [
        ("0", Int64(0)), ("30s", 30_000_000_000), ("1m30s", 90_000_000_000), ("1.5s", 1_500_000_000),
        ("500ms", 500_000_000), ("2h", 7_200_000_000_000), ("10us", 10_000), (".5s", 500_000_000),
    ])
    func goDurations(text: String, nanoseconds: Int64) {
        #expect(GoDuration.parse(text) == nanoseconds)
    }

    @Test(arguments: ["", "5", "s", "-1s", "1x", "1s5", "disable", "1.2.3s"])
    func notGoDurations(text: String) {
        #expect(GoDuration.parse(text) == nil)
    }

    @Test func durationsPrintAsGo() {
        #expect(GoDuration.format(30_000_000_000) == "30s")
        #expect(GoDuration.format(90_000_000_000) == "1m30s")
        #expect(GoDuration.format(3_600_000_000_000) == "1h0m0s")
        #expect(GoDuration.format(1_500_000_000) == "1.5s")
        #expect(GoDuration.format(500_000_000) == "500ms")
        #expect(GoDuration.format(0) == "0s")
    }

    @Test func healthCommandForms() throws {
        #expect(try SpecBuilder.healthTest("curl -f http://x/") == ["CMD-SHELL", "curl -f http://x/"])
        #expect(try SpecBuilder.healthTest("true") == ["CMD-SHELL", "true"])
        #expect(try SpecBuilder.healthTest(#"["/bin/test","-e","/x"]"#) == ["CMD", "/bin/test", "-e", "/x"])
        #expect(try SpecBuilder.healthTest(#"["/bin/true"]"#) == ["CMD-SHELL", "/bin/true"])
        #expect(try SpecBuilder.healthTest("CMD /bin/test -e /x") == ["CMD", "/bin/test", "-e", "/x"])
        #expect(try SpecBuilder.healthTest(#"["CMD-SHELL","exit 0"]"#) == ["CMD-SHELL", "exit 0"])
        #expect(try SpecBuilder.healthTest("none") == nil)
        #expect(try SpecBuilder.healthTest("NONE") == nil)
        #expect(throws: EngineError.self) { try SpecBuilder.healthTest("") }
        #expect(throws: EngineError.self) { try SpecBuilder.healthTest("[]") }
        #expect(throws: EngineError.self) { try SpecBuilder.healthTest("CMD") }
    }

    @Test func whatAHealthConfigRuns() {
        #expect(HealthConfig(Test: ["CMD-SHELL", "test -e /x"]).command == ["/bin/sh", "-c", "test -e /x"])
        #expect(HealthConfig(Test: ["CMD", "/bin/true", "a"]).command == ["/bin/true", "a"])
        #expect(HealthConfig(Test: ["NONE"]).command == nil)
        #expect(HealthConfig(Test: []).command == nil)
        #expect(HealthConfig(Test: ["CMD"]).command == nil)
        #expect(HealthConfig().command == nil)
    }

    @Test func healthStateMachine() {
        func entry(_ code: Int32) -> HealthLogEntry { HealthLogEntry(start: "s", end: "e", exitCode: code, output: "") }
        var health = HealthState(status: "starting")
        health.record(entry(1), retries: 2, inStartPeriod: true)
        #expect(health.status == "starting" && health.failingStreak == 0)
        health.record(entry(1), retries: 2, inStartPeriod: false)
        #expect(health.status == "starting" && health.failingStreak == 1)
        health.record(entry(0), retries: 2, inStartPeriod: false)
        #expect(health.status == "healthy" && health.failingStreak == 0)
        health.record(entry(1), retries: 2, inStartPeriod: false)
        #expect(health.status == "healthy" && health.failingStreak == 1)
        health.record(entry(-1), retries: 2, inStartPeriod: false)
        #expect(health.status == "unhealthy" && health.failingStreak == 2)
        for _ in 0..<5 { health.record(entry(0), retries: 2, inStartPeriod: false) }
        #expect(health.status == "healthy" && health.log.count == HealthState.keptChecks)
        #expect(health.log.allSatisfy { $0.exitCode == 0 })
    }

    @Test func notifyLinesPassedOn() {
        func pass(_ text: String) -> String? { SystemdNotify.forwarded(ArraySlice(Array(text.utf8))) }
        #expect(pass("READY=1") == "READY=1")
        #expect(pass("<13>Nov 23 root: x\nREADY=1\nSTATUS=serving\nMAINPID=1\nFDSTORE=1") == "READY=1\nSTATUS=serving")
        #expect(pass("WATCHDOG=1\r\nERRNO=2") == "WATCHDOG=1\nERRNO=2")
        #expect(pass("MAINPID=42") == nil)
        #expect(pass("READY=2\nBARRIER=1") == nil)
    }
}

#if canImport(Glibc)
import Glibc
#endif
import Testing
import BerthOS

@Suite("SignalName.parse accepts what kill(1) accepts")
struct SignalNameTests {
    @Test("names, SIG-prefixed names, numbers and real-time offsets", arguments: [
        ("TERM", 15), ("SIGTERM", 15), ("term", 15), ("sigterm", 15), ("SigTerm", 15), ("15", 15),
        ("KILL", 9), ("SIGKILL", 9), ("9", 9),
        ("HUP", 1), ("INT", 2), ("QUIT", 3), ("ABRT", 6), ("IOT", 6), ("USR1", 10), ("USR2", 12),
        ("SEGV", 11), ("PIPE", 13), ("ALRM", 14), ("CHLD", 17), ("CONT", 18), ("STOP", 19),
        ("TSTP", 20), ("WINCH", 28), ("IO", 29), ("POLL", 29), ("PWR", 30), ("SYS", 31),
        ("1", 1), ("64", 64),
        ("RTMIN", 34), ("SIGRTMIN", 34), ("RTMAX", 64), ("SIGRTMAX", 64),
        ("RTMIN+3", 37), ("SIGRTMIN+3", 37), ("rtmin+3", 37), ("RTMIN+30", 64),
        ("RTMAX-2", 62), ("RTMAX-30", 34),
    ] as [(String, Int32)])
    func known(text: String, number: Int32) {
        #expect(SignalName.parse(text) == number)
    }

    @Test("agrees with the C library's signal numbers", arguments: [
        ("TERM", SIGTERM), ("KILL", SIGKILL), ("HUP", SIGHUP), ("USR1", SIGUSR1), ("CHLD", SIGCHLD),
        ("STOP", SIGSTOP), ("CONT", SIGCONT), ("WINCH", SIGWINCH), ("STKFLT", SIGSTKFLT), ("XFSZ", SIGXFSZ),
    ] as [(String, Int32)])
    func matchesGlibc(text: String, number: Int32) {
        #expect(SignalName.parse(text) == number)
    }

    @Test("unknown names and out-of-range numbers are nil", arguments: [
        "bogus", "SIGBOGUS", "", "SIG", "0", "65", "-1", "-15", "1000", "RTMIN+31", "RTMAX-31",
        "RTMIN+", "RTMIN+x", "TERM ", " 15", "15.0", "SIGSIGTERM",
    ])
    func unknown(text: String) {
        #expect(SignalName.parse(text) == nil)
    }

    @Test("negative real-time offsets are rejected", arguments: ["RTMIN+-1", "RTMAX--5", "RTMIN+-40"])
    func negativeRealTimeOffset(text: String) {
        #expect(SignalName.parse(text) == nil)
    }
}

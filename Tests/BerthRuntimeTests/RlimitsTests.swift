import Testing
@testable import BerthRuntime

@Suite("Rlimits")
struct RlimitsTests {
    /// RLIMIT_* numbers from <asm-generic/resource.h>.
    @Test("known names map to the kernel's resource numbers", arguments: [
        ("RLIMIT_CPU", 0), ("RLIMIT_FSIZE", 1), ("RLIMIT_DATA", 2), ("RLIMIT_STACK", 3), ("RLIMIT_CORE", 4),
        ("RLIMIT_RSS", 5), ("RLIMIT_NPROC", 6), ("RLIMIT_NOFILE", 7), ("RLIMIT_MEMLOCK", 8), ("RLIMIT_AS", 9),
        ("RLIMIT_LOCKS", 10), ("RLIMIT_SIGPENDING", 11), ("RLIMIT_MSGQUEUE", 12), ("RLIMIT_NICE", 13),
        ("RLIMIT_RTPRIO", 14), ("RLIMIT_RTTIME", 15),
    ] as [(String, Int32)])
    func known(name: String, resource: Int32) {
        #expect(Rlimits.resource(named: name) == resource)
    }

    @Test("anything else is unknown, as in runc", arguments: [
        "NOFILE", "rlimit_nofile", "RLIMIT_BOGUS", "", "RLIMIT_", "RLIMIT_NOFILE ", "RLIMIT_OFILE",
    ])
    func unknown(name: String) {
        #expect(Rlimits.resource(named: name) == nil)
    }
}

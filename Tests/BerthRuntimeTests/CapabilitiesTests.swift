import Testing
import BerthOCI
import BerthOS
@testable import BerthRuntime

@Suite("Capabilities")
struct CapabilitiesTests {
    /// Capability numbers from <linux/capability.h>.
    static let kernelNumbers: [String: Int] = [
        "CAP_CHOWN": 0, "CAP_DAC_OVERRIDE": 1, "CAP_DAC_READ_SEARCH": 2, "CAP_FOWNER": 3, "CAP_FSETID": 4,
        "CAP_KILL": 5, "CAP_SETGID": 6, "CAP_SETUID": 7, "CAP_SETPCAP": 8, "CAP_LINUX_IMMUTABLE": 9,
        "CAP_NET_BIND_SERVICE": 10, "CAP_NET_BROADCAST": 11, "CAP_NET_ADMIN": 12, "CAP_NET_RAW": 13,
        "CAP_IPC_LOCK": 14, "CAP_IPC_OWNER": 15, "CAP_SYS_MODULE": 16, "CAP_SYS_RAWIO": 17,
        "CAP_SYS_CHROOT": 18, "CAP_SYS_PTRACE": 19, "CAP_SYS_PACCT": 20, "CAP_SYS_ADMIN": 21,
        "CAP_SYS_BOOT": 22, "CAP_SYS_NICE": 23, "CAP_SYS_RESOURCE": 24, "CAP_SYS_TIME": 25,
        "CAP_SYS_TTY_CONFIG": 26, "CAP_MKNOD": 27, "CAP_LEASE": 28, "CAP_AUDIT_WRITE": 29,
        "CAP_AUDIT_CONTROL": 30, "CAP_SETFCAP": 31, "CAP_MAC_OVERRIDE": 32, "CAP_MAC_ADMIN": 33,
        "CAP_SYSLOG": 34, "CAP_WAKE_ALARM": 35, "CAP_BLOCK_SUSPEND": 36, "CAP_AUDIT_READ": 37,
        "CAP_PERFMON": 38, "CAP_BPF": 39, "CAP_CHECKPOINT_RESTORE": 40,
    ]

    @Test("every capability name has the kernel's number")
    func table() {
        #expect(Capabilities.names.count == Self.kernelNumbers.count)
        for (name, number) in Self.kernelNumbers {
            #expect(Capabilities.number(of: name) == number, "\(name)")
        }
    }

    @Test("names are accepted with or without CAP_, in any case", arguments: [
        ("CAP_CHOWN", 0), ("chown", 0), ("CHOWN", 0), ("cap_chown", 0), ("Cap_Kill", 5),
        ("SYS_ADMIN", 21), ("cap_sys_admin", 21), ("net_bind_service", 10), ("checkpoint_restore", 40),
    ] as [(String, Int)])
    func spellings(name: String, number: Int) {
        #expect(Capabilities.number(of: name) == number)
    }

    @Test("unknown names are nil", arguments: ["CAP_BOGUS", "bogus", "", "CAP_", "CAP_CAP_CHOWN", " CAP_CHOWN", "CAP_CHOWN ", "ALL", "0"])
    func unknown(name: String) {
        #expect(Capabilities.number(of: name) == nil)
    }

    @Test("every default capability of `berth spec` is known")
    func defaultsAreKnown() {
        for name in Spec.defaultCapabilities {
            #expect(Capabilities.number(of: name) != nil, "\(name)")
        }
    }

    @Test("the kernel's last capability matches /proc, and features lists exactly those")
    func lastCap() throws {
        let text = try Files.readString("/proc/sys/kernel/cap_last_cap")
        let last = try #require(Int(text.trimmed))
        #expect(Capabilities.lastCap == last)
        #expect(RuntimeInfo.capabilities == Array(Capabilities.names.prefix(last + 1)))
        #expect(RuntimeInfo.capabilities.first == "CAP_CHOWN")
    }
}

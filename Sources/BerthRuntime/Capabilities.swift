#if canImport(Glibc)
import Glibc
#endif
import BerthOCI
import BerthOS
import CBerth
import CCap

/// Linux capabilities through libcap: the five sets of process.capabilities.
package enum Capabilities {
    static let names = [
        "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL",
        "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE",
        "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK", "CAP_IPC_OWNER",
        "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE", "CAP_SYS_PACCT",
        "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE", "CAP_SYS_RESOURCE", "CAP_SYS_TIME",
        "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE", "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL",
        "CAP_SETFCAP", "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM",
        "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE",
    ]

    /// The canonical CAP_ name, nil for a name no kernel has.
    package static func canonical(_ name: String) -> String? {
        number(of: name).map { names[$0] }
    }

    /// Every capability this kernel has that berth itself may still grant
    /// (its bounding set): what --privileged and --cap-add ALL give.
    package static var all: [String] {
        var bounding = UInt64.max
        if let status = try? Files.readString("/proc/self/status"),
           let line = status.split(separator: "\n").first(where: { $0.hasPrefix("CapBnd:") }),
           let mask = UInt64(String(line.dropFirst(7)).trimmed, radix: 16) {
            bounding = mask
        }
        return names.prefix(lastCap + 1).enumerated().filter { bounding & (1 << UInt64($0.offset)) != 0 }.map(\.element)
    }

    static func number(of name: String) -> Int? {
        let upper = name.uppercased()
        return names.firstIndex(of: upper.hasPrefix("CAP_") ? upper : "CAP_" + upper)
    }

    /// The highest capability this kernel knows.
    static let lastCap: Int = {
        if let text = try? Files.readString("/proc/sys/kernel/cap_last_cap"),
           let value = Int(text.trimmed) { return value }
        return Int(berth_cap_last_cap())
    }()

    /// Whether capability `cap` is in this process's effective set.
    static func callerHasEffective(_ cap: Int) -> Bool {
        guard let status = try? Files.readString("/proc/self/status"),
              let line = status.split(separator: "\n").first(where: { $0.hasPrefix("CapEff:") }),
              let mask = UInt64(String(line.dropFirst(7)).trimmed, radix: 16) else { return false }
        return mask & (1 << UInt64(cap)) != 0
    }

    /// Drops what the bounding set does not keep. Before the uid change.
    static func limitBoundingSet(_ caps: LinuxCapabilities) throws(RuntimeError) {
        guard let bounding = caps.bounding else { return }
        let keep = Set(bounding.compactMap(number(of:)))
        for cap in 0...lastCap where !keep.contains(cap) {
            if berth_prctl(BERTH_PR_CAPBSET_DROP, UInt(cap), 0, 0, 0) != 0 && Errno.current != .invalidArgument {
                throw RuntimeError.system("drop \(cap < names.count ? names[cap] : "capability \(cap)") from the bounding set", Errno.current)
            }
        }
    }

    /// Sets effective, permitted and inheritable, then raises ambient. After the uid change.
    static func apply(_ caps: LinuxCapabilities, warn: (String) -> Void) throws(RuntimeError) {
        guard let state = cap_init() else { throw RuntimeError.system("cap_init", Errno.current) }
        defer { cap_free(UnsafeMutableRawPointer(state)) }
        func set(_ list: [String]?, _ flag: cap_flag_t) {
            var values: [cap_value_t] = []
            for name in list ?? [] {
                guard let n = number(of: name) else { continue }
                if n > lastCap { warn("\(name) is not known to this kernel: dropped"); continue }
                values.append(cap_value_t(n))
            }
            if !values.isEmpty { cap_set_flag(state, flag, Int32(values.count), &values, CAP_SET) }
        }
        set(caps.effective, CAP_EFFECTIVE)
        set(caps.permitted, CAP_PERMITTED)
        set(caps.inheritable, CAP_INHERITABLE)
        if cap_set_proc(state) != 0 {
            throw RuntimeError.system("set capabilities", Errno.current)
        }
        for name in caps.ambient ?? [] {
            guard let n = number(of: name), n <= lastCap else { continue }
            // The kernel raises an ambient capability only if it is permitted
            // and inheritable; like runc, berth skips the others (runc's own
            // `spec` lists ambient capabilities without inheritable ones).
            _ = berth_prctl(BERTH_PR_CAP_AMBIENT, UInt(BERTH_PR_CAP_AMBIENT_RAISE), UInt(n), 0, 0)
        }
    }
}

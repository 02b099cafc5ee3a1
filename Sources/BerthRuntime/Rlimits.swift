#if canImport(Glibc)
import Glibc
#endif
import BerthOCI
import BerthOS

/// process.rlimits: names to resources, and clamping to what the caller may set.
enum Rlimits {
    static let table: [String: Int32] = [
        "RLIMIT_CPU": 0, "RLIMIT_FSIZE": 1, "RLIMIT_DATA": 2, "RLIMIT_STACK": 3, "RLIMIT_CORE": 4,
        "RLIMIT_RSS": 5, "RLIMIT_NPROC": 6, "RLIMIT_NOFILE": 7, "RLIMIT_MEMLOCK": 8, "RLIMIT_AS": 9,
        "RLIMIT_LOCKS": 10, "RLIMIT_SIGPENDING": 11, "RLIMIT_MSGQUEUE": 12, "RLIMIT_NICE": 13,
        "RLIMIT_RTPRIO": 14, "RLIMIT_RTTIME": 15,
    ]

    static func resource(named name: String) -> Int32? { table[name] }

    /// Limits above the caller's hard limit can only be set with
    /// CAP_SYS_RESOURCE in the initial user namespace. Without it, the limit
    /// is clamped to the caller's hard limit and a warning names it, instead
    /// of a bare EPERM from inside the container.
    static func clamped(_ limits: [POSIXRlimit], warn: (String) -> Void) -> [POSIXRlimit] {
        let mayRaise = Capabilities.callerHasEffective(24 /* CAP_SYS_RESOURCE */) && !RuntimePaths.isRootless
        return limits.map { limit in
            guard !mayRaise, let resource = table[limit.type] else { return limit }
            var current = rlimit()
            guard getrlimit(__rlimit_resource_t(UInt32(resource)), &current) == 0 else { return limit }
            let hardMax = UInt64(current.rlim_max)
            guard limit.hard > hardMax else { return limit }
            warn("\(limit.type) hard limit \(limit.hard) is above the caller's hard limit \(hardMax) and berth lacks CAP_SYS_RESOURCE: clamped to \(hardMax)")
            return POSIXRlimit(type: limit.type, hard: hardMax, soft: min(limit.soft, hardMax))
        }
    }

    /// setrlimit for each limit; runs in the container's init before exec.
    static func apply(_ limits: [POSIXRlimit]) throws(RuntimeError) {
        for limit in limits {
            guard let resource = table[limit.type] else { continue }
            var value = rlimit(rlim_cur: rlim_t(limit.soft), rlim_max: rlim_t(limit.hard))
            if setrlimit(__rlimit_resource_t(UInt32(resource)), &value) != 0 {
                throw RuntimeError.system("set \(limit.type) to soft \(limit.soft) hard \(limit.hard)", Errno.current)
            }
        }
    }
}

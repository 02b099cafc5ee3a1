#if canImport(Glibc)
import Glibc
#endif

/// A Spec mount's `options`, split the way mount(2) wants them: flags to
/// set, flags to clear, propagation changes applied afterwards, and the
/// rest as the file system's data string.
struct MountOptions: Equatable, Sendable {
    var flags: UInt = 0
    var cleared: UInt = 0
    var propagation: [UInt] = []
    var data: [String] = []
    var isBind = false
    var isRecursive = false

    static let flagTable: [String: (set: Bool, flag: UInt)] = [
        "ro": (true, UInt(MS_RDONLY)), "rw": (false, UInt(MS_RDONLY)),
        "nosuid": (true, UInt(MS_NOSUID)), "suid": (false, UInt(MS_NOSUID)),
        "nodev": (true, UInt(MS_NODEV)), "dev": (false, UInt(MS_NODEV)),
        "noexec": (true, UInt(MS_NOEXEC)), "exec": (false, UInt(MS_NOEXEC)),
        "sync": (true, UInt(MS_SYNCHRONOUS)), "async": (false, UInt(MS_SYNCHRONOUS)),
        "dirsync": (true, UInt(MS_DIRSYNC)),
        "remount": (true, UInt(MS_REMOUNT)),
        "mand": (true, UInt(MS_MANDLOCK)), "nomand": (false, UInt(MS_MANDLOCK)),
        "atime": (false, UInt(MS_NOATIME)), "noatime": (true, UInt(MS_NOATIME)),
        "diratime": (false, UInt(MS_NODIRATIME)), "nodiratime": (true, UInt(MS_NODIRATIME)),
        "relatime": (true, UInt(MS_RELATIME)), "norelatime": (false, UInt(MS_RELATIME)),
        "strictatime": (true, UInt(MS_STRICTATIME)), "nostrictatime": (false, UInt(MS_STRICTATIME)),
        "silent": (true, UInt(MS_SILENT)), "loud": (false, UInt(MS_SILENT)),
        "iversion": (true, UInt(MS_I_VERSION)), "noiversion": (false, UInt(MS_I_VERSION)),
        "lazytime": (true, UInt(MS_LAZYTIME)), "nolazytime": (false, UInt(MS_LAZYTIME)),
        "defaults": (false, 0),
    ]

    static let propagationTable: [String: UInt] = [
        "private": UInt(MS_PRIVATE), "rprivate": UInt(MS_PRIVATE | MS_REC),
        "shared": UInt(MS_SHARED), "rshared": UInt(MS_SHARED | MS_REC),
        "slave": UInt(MS_SLAVE), "rslave": UInt(MS_SLAVE | MS_REC),
        "unbindable": UInt(MS_UNBINDABLE), "runbindable": UInt(MS_UNBINDABLE | MS_REC),
    ]

    /// Options berth understands besides file-system data (for `features`).
    static var known: [String] {
        (Array(flagTable.keys) + Array(propagationTable.keys) + ["bind", "rbind", "tmpcopyup"]).sorted()
    }

    init(_ options: [String]) {
        for option in options {
            if option == "bind" {
                isBind = true
            } else if option == "rbind" {
                isBind = true
                isRecursive = true
            } else if option == "tmpcopyup" || option == "idmap" || option == "ridmap" || option == "z" || option == "Z" {
                continue // handled by callers or not applicable here
            } else if let entry = Self.flagTable[option] {
                if entry.set { flags |= entry.flag; cleared &= ~entry.flag } else { flags &= ~entry.flag; cleared |= entry.flag }
            } else if let value = Self.propagationTable[option] {
                propagation.append(value)
            } else {
                data.append(option)
            }
        }
    }

    var dataString: String? { data.isEmpty ? nil : data.joined(separator: ",") }

    /// Flags that need a second, remounting call on a bind mount (the kernel
    /// ignores them on the initial MS_BIND).
    var bindRemountFlags: UInt {
        flags & (UInt(MS_RDONLY) | UInt(MS_NOSUID) | UInt(MS_NODEV) | UInt(MS_NOEXEC) | UInt(MS_NOATIME) |
                 UInt(MS_NODIRATIME) | UInt(MS_RELATIME) | UInt(MS_STRICTATIME))
    }
}

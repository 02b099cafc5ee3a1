#if canImport(Glibc)
import Glibc
#endif
import BerthOCI
import BerthOS

/// process.apparmorProfile, process.selinuxLabel and linux.mountLabel:
/// applied when the host runs that LSM, refused with a clear error when it
/// does not (never silently ignored).
enum LinuxSecurityModules {
    static var appArmorEnabled: Bool {
        ((try? Files.readString("/sys/module/apparmor/parameters/enabled"))?.trimmed ?? "") == "Y"
    }

    static var selinuxEnabled: Bool { Files.exists("/sys/fs/selinux/enforce") }

    static func check(process: BerthOCI.Process, linux: Linux?) throws(RuntimeError) {
        if let profile = process.apparmorProfile, !profile.isEmpty, !appArmorEnabled {
            throw RuntimeError(.unsupported, "process.apparmorProfile \"\(profile)\" is set, but AppArmor is not enabled on this host")
        }
        if let label = process.selinuxLabel, !label.isEmpty, !selinuxEnabled {
            throw RuntimeError(.unsupported, "process.selinuxLabel \"\(label)\" is set, but SELinux is not enabled on this host")
        }
        if let label = linux?.mountLabel, !label.isEmpty, !selinuxEnabled {
            throw RuntimeError(.unsupported, "linux.mountLabel \"\(label)\" is set, but SELinux is not enabled on this host")
        }
        if let label = linux?.mountLabel, !label.isEmpty {
            throw RuntimeError(.unsupported, "linux.mountLabel is not supported by berth yet")
        }
    }

    /// The labels for the next execve, written through the verified procfs.
    static func applyForExec(_ process: BerthOCI.Process) throws(RuntimeError) {
        // Single-threaded here: the one task's id is the pid.
        let task = "\(getpid())/task/\(getpid())/attr"
        if let profile = process.apparmorProfile, !profile.isEmpty {
            try ProcFS.write(task + "/apparmor/exec", "exec " + profile)
        }
        if let label = process.selinuxLabel, !label.isEmpty {
            try ProcFS.write(task + "/exec", label)
        }
    }
}

#if canImport(Glibc)
import Glibc
#endif
import BerthOCI
import BerthOS
import CBerth

/// The last line of the CVE-2019-5736 defense. berth's processes that
/// enter a container are not dumpable, which closes /proc/<pid>/exe to
/// processes in it, unless they hold CAP_SYS_PTRACE in the initial user
/// namespace: a root container without a user namespace whose config grants
/// that capability. For such a container berth first re-executes itself
/// from a sealed memfd copy, so a handle on its exe can never write the
/// binary on the host. It costs a copy of the binary, so it is done only then.
enum SealedExecutable {
    static let marker = "_BERTH_SEALED"


    /// Whether processes in a container with these settings could ptrace
    /// berth's (host user namespace) processes.
    static func containerCanPtraceHost(capabilities: LinuxCapabilities?, extra: [String] = [], ownUserNamespace: Bool) -> Bool {
        if ownUserNamespace { return false }
        guard let capabilities else { return true } // no capabilities given: nothing is dropped
        let names = (capabilities.bounding ?? []) + (capabilities.effective ?? []) + (capabilities.permitted ?? []) + extra
        return names.contains { Capabilities.number(of: $0) == 19 } // CAP_SYS_PTRACE
    }

    /// Re-executes berth from a sealed copy when `needed` and not done yet.
    /// Returns only if no re-exec happens.
    static func reexecuteIfNeeded(_ needed: Bool) throws(RuntimeError) {
        if getenv(marker) != nil {
            // Re-executed: execveat names the process after the descriptor ("3").
            _ = "berth".withCString { berth_prctl(BERTH_PR_SET_NAME, UInt(bitPattern: $0), 0, 0, 0) }
            return
        }
        guard needed else { return }
        let fd = berth_sealed_self_copy()
        if fd < 0 { throw RuntimeError.system("copy berth into a sealed memfd", Errno.current) }
        setenv(marker, "1", 1)
        var argv: [UnsafeMutablePointer<CChar>?] = CommandLine.arguments.map { strdup($0) } + [nil]
        _ = berth_execute_fd(fd, &argv, berth_environ())
        let error = Errno.current
        Glibc.close(fd)
        throw RuntimeError.system("re-execute berth from its sealed copy", error)
    }
}

#if canImport(Glibc)
import Glibc
#endif
import BerthOCI
import BerthOS
import CBerth

/// The last steps before execve, shared by a container's init and by
/// `exec`: terminal, rlimits, credentials, capabilities, cwd, command
/// lookup. Runs in the child, inside the container's namespaces and root.
struct ProcessSetup {
    let process: BerthOCI.Process
    let rlimits: [POSIXRlimit]
    let channel: SyncChannel
    let seccomp: CompiledSeccomp?
    let warn: (String) -> Void

    struct Prepared {
        let path: String
        let arguments: [String]
        let environment: [String]
    }

    func prepare(bindConsole: Bool) throws(RuntimeError) -> Prepared {
        if process.terminal == true {
            try openTerminal(bindConsole: bindConsole)
        }
        try Rlimits.apply(rlimits)
        if process.noNewPrivileges != true {
            // Without no_new_privs, loading a filter needs CAP_SYS_ADMIN:
            // load it while berth still has it, before the uid changes.
            try loadSeccomp()
        }
        try switchUser()
        umask(mode_t(process.user.umask ?? 0o022))
        var environment = process.env ?? []
        if !environment.contains(where: { $0.hasPrefix("HOME=") }) {
            environment.append("HOME=" + homeDirectory(uid: process.user.uid))
        }
        try changeDirectory(process.cwd)
        let arguments = process.args ?? []
        let path = try Self.lookUp(arguments[0], environment: environment)
        try LinuxSecurityModules.applyForExec(process)
        if process.noNewPrivileges == true {
            if berth_prctl(BERTH_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 {
                throw RuntimeError.system("set no_new_privs", Errno.current)
            }
        }
        return Prepared(path: path, arguments: arguments, environment: environment)
    }

    /// process.oomScoreAdj, set on berth itself before it forks: the child
    /// inherits it, and its own /proc entry is closed to it once it is not
    /// dumpable. Raising it needs no privilege; lowering it does.
    static func applyOOMScoreAdjustment(_ process: BerthOCI.Process?) throws(RuntimeError) {
        guard let adjust = process?.oomScoreAdj else { return }
        guard (-1000...1000).contains(adjust) else {
            throw RuntimeError(.invalidArgument, "process.oomScoreAdj \(adjust) is outside -1000...1000")
        }
        do {
            try Files.write("/proc/self/oom_score_adj", String(adjust), flags: O_WRONLY)
        } catch {
            throw RuntimeError(.permissionDenied, "set process.oomScoreAdj \(adjust): \(error) (lowering it needs CAP_SYS_RESOURCE)")
        }
    }

    /// Loads the filter now if it waits for no_new_privs (the last step
    /// before the process runs); a no-op when it is loaded already.
    func finishSeccomp() throws(RuntimeError) {
        if process.noNewPrivileges == true { try loadSeccomp() }
    }

    private func loadSeccomp() throws(RuntimeError) {
        guard let seccomp else { return }
        if let listener = try seccomp.load() {
            try step("send the seccomp listener to berth") { () throws(Errno) in try channel.send("seccomp", passing: listener) }
            listener.close()
        }
    }

    /// A new pty from the container's devpts; the master goes to the
    /// parent (which relays it or hands it to the console socket), the
    /// slave becomes stdio and the controlling terminal.
    func openTerminal(bindConsole: Bool) throws(RuntimeError) {
        let master = try step("open /dev/ptmx in the container") { () throws(Errno) in try FileDescriptor.open("/dev/ptmx", O_RDWR | O_NOCTTY) }
        let number = berth_pty_unlock_and_number(master.rawValue)
        if number < 0 { throw RuntimeError.system("unlock pty", Errno.current) }
        let slavePath = "/dev/pts/\(number)"
        let slave = try step("open \(slavePath)") { () throws(Errno) in try FileDescriptor.open(slavePath, O_RDWR | O_NOCTTY) }
        if let size = process.consoleSize {
            _ = berth_tty_set_size(slave.rawValue, size.height, size.width)
        }
        if bindConsole {
            try bindTerminalToConsole(slave, name: slavePath)
        }
        try step("send the terminal to berth") { () throws(Errno) in try channel.send("pty:" + slavePath, passing: master) }
        master.close()
        _ = setsid()
        if berth_tty_set_controlling(slave.rawValue) != 0 {
            throw RuntimeError.system("make \(slavePath) the controlling terminal", Errno.current)
        }
        for target in [FileDescriptor.standardInput, .standardOutput, .standardError] {
            try step("dup terminal") { () throws(Errno) in try slave.duplicate(as: target) }
        }
        if slave.rawValue > 2 { slave.close() }
    }

    /// /dev/console becomes the pty: created if missing (never through a
    /// link), refused if it is a link, and mounted through descriptors so
    /// nothing swapped in between can redirect it (the CVE-2025-52565 class).
    func bindTerminalToConsole(_ slave: FileDescriptor, name: String) throws(RuntimeError) {
        if let created = try? FileDescriptor.open("/dev/console", O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, mode: 0o600) {
            created.close()
        }
        let console = try step("open /dev/console") { () throws(Errno) in try FileDescriptor.open("/dev/console", BERTH_O_PATH | O_NOFOLLOW) }
        defer { console.close() }
        let type = ((try? console.stat())?.st_mode ?? 0) & S_IFMT
        guard type == S_IFREG || type == S_IFCHR else {
            throw RuntimeError(.permissionDenied, "refusing to bind the terminal to /dev/console: it is not a file or character device")
        }
        try step("bind \(name) to /dev/console") { () throws(Errno) in
            try mount(source: slave.procPath, target: console.procPath, type: nil, flags: UInt(MS_BIND))
        }
    }

    func switchUser() throws(RuntimeError) {
        let user = process.user
        if let caps = process.capabilities {
            try Capabilities.limitBoundingSet(caps)
            _ = berth_prctl(BERTH_PR_SET_KEEPCAPS, 1, 0, 0, 0)
        }
        let groups = user.additionalGids ?? []
        let setgroupsAllowed = (try? Files.readString("/proc/self/setgroups"))?.trimmed != "deny"
        if setgroupsAllowed {
            var list = groups.map { gid_t($0) }
            if setgroups(list.count, &list) != 0 && !groups.isEmpty {
                throw RuntimeError.system("setgroups \(groups)", Errno.current)
            }
        } else if !groups.isEmpty {
            throw RuntimeError(.permissionDenied, "additionalGids \(groups) need setgroups, which this user namespace denies (map more than one gid)")
        }
        if berth_setresgid(user.gid, user.gid, user.gid) != 0 {
            throw RuntimeError(.permissionDenied, "setgid \(user.gid): \(Errno.current) (is gid \(user.gid) mapped in the user namespace?)")
        }
        if berth_setresuid(user.uid, user.uid, user.uid) != 0 {
            throw RuntimeError(.permissionDenied, "setuid \(user.uid): \(Errno.current) (is uid \(user.uid) mapped in the user namespace?)")
        }
        if let caps = process.capabilities {
            _ = berth_prctl(BERTH_PR_SET_KEEPCAPS, 0, 0, 0, 0)
            try Capabilities.apply(caps, warn: warn)
        }
    }

    /// chdir to `cwd` resolved inside the container's root with no magic
    /// links: a cwd like /proc/self/fd/N can never reach a directory of the
    /// host through a descriptor berth holds (the CVE-2024-21626 class).
    func changeDirectory(_ cwd: String) throws(RuntimeError) {
        do {
            let root = try SecureRoot(path: "/")
            defer { root.close() }
            let directory = try root.open(cwd, BERTH_O_PATH | O_DIRECTORY)
            defer { directory.close() }
            _ = try check(fchdir(directory.rawValue))
        } catch {
            throw RuntimeError(.notFound, "chdir to cwd \"\(cwd)\" set in config.json failed: \(error)")
        }
    }

    func homeDirectory(uid: UInt32) -> String {
        guard let passwd = try? Files.readString("/etc/passwd") else { return "/" }
        for line in passwd.split(separator: "\n") {
            let fields = line.split(separator: ":", omittingEmptySubsequences: false)
            if fields.count >= 6, UInt32(fields[2]) == uid { return String(fields[5]) }
        }
        return "/"
    }

    /// Resolves the command as execvp would, in the container's PATH.
    static func lookUp(_ command: String, environment: [String]) throws(RuntimeError) -> String {
        if command.contains("/") {
            var st = Glibc.stat()
            guard fstatat(AT_FDCWD, command, &st, 0) == 0 else {
                throw RuntimeError.exec(command, Errno.current)
            }
            guard (st.st_mode & S_IFMT) != S_IFDIR, access(command, X_OK) == 0 else {
                throw RuntimeError(.commandNotExecutable, "exec \"\(command)\": permission denied in the container")
            }
            return command
        }
        let pathVariable = environment.last(where: { $0.hasPrefix("PATH=") }).map { String($0.dropFirst(5)) }
            ?? "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
        for directory in pathVariable.split(separator: ":", omittingEmptySubsequences: false) {
            let candidate = (directory.isEmpty ? "." : String(directory)) + "/" + command
            var st = Glibc.stat()
            if fstatat(AT_FDCWD, candidate, &st, 0) == 0, (st.st_mode & S_IFMT) == S_IFREG, access(candidate, X_OK) == 0 {
                return candidate
            }
        }
        throw RuntimeError(.commandNotFound, "exec \"\(command)\": executable file not found in $PATH in the container")
    }

    /// Closes (on exec) every descriptor above stdio and the preserved ones.
    static func closeInheritedDescriptors(preserving count: Int) {
        _ = berth_cloexec_from(Int32(3 + count))
    }

    /// Restores default signal handling and execs; only returns the error.
    static func exec(_ prepared: Prepared) -> Errno {
        _ = berth_reset_signal_handlers()
        _ = berth_unblock_all_signals()
        return execute(path: prepared.path, arguments: prepared.arguments, environment: prepared.environment)
    }
}

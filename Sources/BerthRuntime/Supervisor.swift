#if canImport(Glibc)
import Glibc
#endif
import BerthOS
import CBerth

/// The foreground parent while a container (or exec'd process) runs:
/// forwards every signal to it, relays the pty when there is one, and
/// returns how it ended. Signals were blocked before clone(), so none is
/// lost between clone() and here.
struct Supervisor {
    let pid: pid_t
    let master: FileDescriptor?

    func wait() -> ExitStatus {
        let signals = FileDescriptor(rawValue: berth_signalfd_all())
        defer { signals.close() }
        var savedTerminal: UnsafeMutableRawPointer? = nil
        let stdinIsTerminal = FileDescriptor.standardInput.isTerminal
        if let master {
            try? master.setNonBlocking(true)
            if stdinIsTerminal {
                copyWindowSize(to: master)
                _ = berth_tty_make_raw(0, &savedTerminal)
            }
        }
        defer { if savedTerminal != nil { _ = berth_tty_restore(0, savedTerminal) } }
        var readStdin = master != nil
        var readMaster = master != nil
        var buffer = [UInt8](repeating: 0, count: 32768)
        while true {
            var fds = [pollfd(fd: signals.rawValue, events: Int16(POLLIN), revents: 0)]
            if readStdin { fds.append(pollfd(fd: 0, events: Int16(POLLIN), revents: 0)) }
            if readMaster, let master { fds.append(pollfd(fd: master.rawValue, events: Int16(POLLIN), revents: 0)) }
            let ready = poll(&fds, nfds_t(fds.count), -1)
            if ready < 0 { if Errno.current == .interrupted { continue }; break }
            for entry in fds where entry.revents != 0 {
                if entry.fd == signals.rawValue {
                    while true {
                        let signal = berth_signalfd_read(signals.rawValue)
                        if signal <= 0 { break }
                        if signal == SIGCHLD { continue }
                        if signal == SIGWINCH, let master, stdinIsTerminal { copyWindowSize(to: master); continue }
                        _ = Glibc.kill(pid, signal)
                    }
                    if let status = reap() {
                        if let master { drain(master, &buffer) }
                        return status
                    }
                } else if entry.fd == 0 {
                    let n = buffer.withUnsafeMutableBytes { Glibc.read(0, $0.baseAddress, $0.count) }
                    if n <= 0 { readStdin = false; continue }
                    try? master?.writeAll(buffer[0..<n])
                } else if let master, entry.fd == master.rawValue {
                    let n = buffer.withUnsafeMutableBytes { Glibc.read(master.rawValue, $0.baseAddress, $0.count) }
                    if n <= 0 {
                        if n < 0 && Errno.current == .wouldBlock { continue }
                        readMaster = false
                        continue
                    }
                    try? FileDescriptor.standardOutput.writeAll(buffer[0..<n])
                }
            }
        }
        return (try? waitForProcess(pid))??.status ?? .exited(255)
    }

    /// Reaps any exited children; returns the status once `pid` has exited.
    private func reap() -> ExitStatus? {
        var result: ExitStatus? = nil
        while let (child, status) = (try? waitForProcess(-1, options: WNOHANG)) ?? nil {
            if child == pid { result = status }
        }
        return result
    }

    private func drain(_ master: FileDescriptor, _ buffer: inout [UInt8]) {
        while true {
            let n = buffer.withUnsafeMutableBytes { Glibc.read(master.rawValue, $0.baseAddress, $0.count) }
            if n <= 0 { return }
            try? FileDescriptor.standardOutput.writeAll(buffer[0..<n])
        }
    }

    private func copyWindowSize(to master: FileDescriptor) {
        var rows: UInt16 = 0, cols: UInt16 = 0
        if berth_tty_get_size(0, &rows, &cols) == 0 { _ = berth_tty_set_size(master.rawValue, rows, cols) }
    }
}

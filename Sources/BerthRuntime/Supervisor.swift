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
    /// Pipes of the process's stdout and stderr, relayed to the observer.
    var outputs: [FileDescriptor] = []
    var observer: (any LaunchObserver)? = nil
    /// Copy berth's stdin to the terminal (off for -t without -i).
    var forwardStdin = true

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
        var readStdin = master != nil && forwardStdin
        var readMaster = master != nil
        var openOutputs = outputs
        var buffer = [UInt8](repeating: 0, count: 32768)
        while true {
            var fds = [pollfd(fd: signals.rawValue, events: Int16(POLLIN), revents: 0)]
            if readStdin { fds.append(pollfd(fd: 0, events: Int16(POLLIN), revents: 0)) }
            if readMaster, let master { fds.append(pollfd(fd: master.rawValue, events: Int16(POLLIN), revents: 0)) }
            for output in openOutputs { fds.append(pollfd(fd: output.rawValue, events: Int16(POLLIN), revents: 0)) }
            let extra = observer?.descriptors() ?? []
            for fd in extra { fds.append(pollfd(fd: fd, events: Int16(POLLIN), revents: 0)) }
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
                        observer?.forwarded(signal: signal)
                    }
                    if let status = reap() {
                        if let master { drain(master, stream: 1, &buffer) }
                        for output in openOutputs { drain(output, stream: stream(of: output), &buffer) }
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
                    emit(1, buffer[0..<n])
                } else if extra.contains(entry.fd) {
                    if let input = observer?.ready(entry.fd), let master { try? master.writeAll(input) }
                } else if let output = openOutputs.first(where: { $0.rawValue == entry.fd }) {
                    let n = buffer.withUnsafeMutableBytes { Glibc.read(output.rawValue, $0.baseAddress, $0.count) }
                    if n < 0 && (Errno.current == .interrupted || Errno.current == .wouldBlock) { continue }
                    if n <= 0 {
                        openOutputs.removeAll { $0.rawValue == output.rawValue }
                        continue
                    }
                    emit(stream(of: output), buffer[0..<n])
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

    private func stream(of output: FileDescriptor) -> Int {
        outputs.first?.rawValue == output.rawValue ? 1 : 2
    }

    private func emit(_ stream: Int, _ bytes: ArraySlice<UInt8>) {
        if let observer {
            observer.output(stream: stream, bytes: bytes)
        } else {
            try? FileDescriptor.standardOutput.writeAll(bytes)
        }
    }

    /// What is still buffered once the process has exited (non-blocking:
    /// a pipe another process still holds open must not stall the exit).
    private func drain(_ fd: FileDescriptor, stream: Int, _ buffer: inout [UInt8]) {
        try? fd.setNonBlocking(true)
        while true {
            let n = buffer.withUnsafeMutableBytes { Glibc.read(fd.rawValue, $0.baseAddress, $0.count) }
            if n <= 0 { return }
            emit(stream, buffer[0..<n])
        }
    }

    private func copyWindowSize(to master: FileDescriptor) {
        var rows: UInt16 = 0, cols: UInt16 = 0
        if berth_tty_get_size(0, &rows, &cols) == 0 { _ = berth_tty_set_size(master.rawValue, rows, cols) }
    }
}

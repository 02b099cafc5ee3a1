#if canImport(Glibc)
import Glibc
#endif
import BerthOS
import CBerth

/// `--init`: berth itself as the container's pid 1. The container's init
/// forks just before execve: the child goes on to exec the process, the
/// parent stays as pid 1 — already in memory, so the image needs no init
/// binary — forwarding every signal to the process, reaping orphaned
/// zombies, and exiting as the process did.
package enum ContainerInitProcess {
    /// config.json annotation that asks for it ("true").
    package static let annotation = "run.berth.init"

    /// Returns in the child only; the parent never returns.
    static func fork(channel: SyncChannel) {
        _ = berth_block_all_signals(nil)
        let child = Glibc.fork()
        if child == 0 { return } // ProcessSetup.exec unblocks signals
        if child < 0 { _exit(126) }
        // The launcher learns the process exec'd when every copy of the channel is closed.
        channel.close()
        for fd in 0..<1024 { _ = Glibc.close(Int32(fd)) }
        // It holds nothing of the host now. Made non-dumpable before, it
        // never execs, so it would stay that way and its /proc/<pid>/ns
        // closed to a rootless user: `exec` joins the container through them.
        _ = berth_prctl(BERTH_PR_SET_DUMPABLE, 1, 0, 0, 0)
        let signals = berth_signalfd_all()
        while true {
            var entry = pollfd(fd: signals, events: Int16(POLLIN), revents: 0)
            if poll(&entry, 1, -1) < 0 { continue }
            while true {
                let signal = berth_signalfd_read(signals)
                if signal <= 0 { break }
                if signal != SIGCHLD { _ = Glibc.kill(child, signal) }
            }
            // Reap everything; leave when the process itself has gone.
            while let (pid, status) = (try? waitForProcess(-1, options: WNOHANG)) ?? nil {
                if pid == child { _exit(status.shellCode) }
            }
        }
    }
}

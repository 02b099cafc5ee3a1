#if canImport(Glibc)
import Glibc
#endif
import FoundationEssentials
import BerthOS
import BerthRuntime
import CBerth

/// Bridge networks for rootless containers, as rootless podman has them:
/// one network namespace per user (per runroot) that holds the bridges,
/// veths and firewall rules, owned by a user namespace that maps the user's
/// subordinate ids. A detached holder process keeps both alive; pasta
/// connects it to the host; netavark (`--rootless true`) and aardvark-dns
/// run inside it. The containers join the holder's user namespace (so they
/// may join network namespaces it owns), each with its own network
/// namespace, bind-mounted in the holder's mount namespace and reached from
/// outside through `/proc/<holder>/root`. Published ports are podman's
/// rootlessport, listening on the host and connecting from inside.
/// The last container's teardown stops the holder, pasta and aardvark-dns.
package struct RootlessNetns: Sendable {
    /// `<runroot>/@rootless-netns`.
    let directory: String

    struct Holder: Codable, Sendable {
        var pid: Int32
        var startTime: UInt64
        var pastaPid: Int32 = 0
        var pastaStartTime: UInt64 = 0
    }

    var holderFile: String { directory + "/holder.json" }
    /// Each active container's network namespace file (the bind mount is
    /// in the holder's mount namespace; here it is an empty file).
    var namespaces: String { directory + "/ns" }
    var netavarkConfig: String { directory + "/netavark" }

    func namespacePath(_ id: String) -> String { namespaces + "/" + id }

    /// The same namespace as seen from the host's mount namespace.
    static func joinPath(holder: Int32, namespace: String) -> String { "/proc/\(holder)/root" + namespace }

    /// Runs `body` under the rootless network's lock (holder start and stop,
    /// namespace files).
    func locked<T>(_ body: () throws(EngineError) -> T) throws(EngineError) -> T {
        for path in [namespaces, netavarkConfig] {
            do { try Files.makeDirectories(path, mode: 0o700) } catch {
                throw EngineError(.failed, "create \(path): \(error)")
            }
        }
        let lock: FileDescriptor
        do { lock = try FileDescriptor.open(directory + "/lock", O_RDWR | O_CREAT | O_CLOEXEC, mode: 0o600) } catch {
            throw EngineError(.failed, "open \(directory)/lock: \(error)")
        }
        defer { lock.close() }
        while flock(lock.rawValue, LOCK_EX) != 0 && Errno.current == .interrupted {}
        return try body()
    }

    /// The holder, if it still runs.
    func current() -> Holder? {
        guard let bytes = try? Files.read(holderFile),
              let holder = try? JSONDecoder().decode(Holder.self, from: Data(bytes)),
              holder.pid > 0, processStartTime(holder.pid) == holder.startTime, processState(holder.pid) != "Z" else { return nil }
        return holder
    }

    /// The running holder, started (with pasta) when there is none. Under the lock.
    func ensure() throws(EngineError) -> Holder {
        if let holder = current() { return holder }
        // A holder that died (or a reboot) leaves namespace files whose mounts are gone.
        for name in Files.list(namespaces) { _ = unlink(namespacePath(name)) }
        let ids = SubordinateIDs.current()
        guard !ids.uids.isEmpty, !ids.gids.isEmpty else {
            throw EngineError(.invalidArgument, "rootless bridge networks need subordinate ids for \(getuid()) in /etc/subuid and /etc/subgid")
        }
        let maps = ids.mappings(ownUID: getuid(), ownGID: getgid())
        let (ours, theirs): (FileDescriptor, FileDescriptor)
        do { (ours, theirs) = try makeSocketPair() } catch { throw EngineError(.failed, "create a socket pair: \(error)") }
        defer { ours.close() }
        let pid = berth_holder_start(theirs.rawValue, ours.rawValue)
        theirs.close()
        guard pid > 0 else { throw EngineError(.failed, "start the rootless network's holder: \(Errno.current)") }
        var holder = Holder(pid: pid, startTime: 0)
        do throws(EngineError) {
            try expect("u", from: ours)
            do { try IDMapper.write(pid: pid, uidMappings: maps.uid, gidMappings: maps.gid) } catch {
                throw EngineError(.failed, "rootless network: \(error.message)")
            }
            do { try ours.writeAll([UInt8(ascii: "m")]) } catch { throw EngineError(.failed, "rootless network: \(error)") }
            try expect("r", from: ours)
            holder.startTime = processStartTime(pid) ?? 0
            if EtcFiles.hostHasDefaultRoute() { (holder.pastaPid, holder.pastaStartTime) = try startPasta(holder: pid) }
            let encoded: [UInt8]
            do { encoded = Array(try JSONEncoder().encode(holder)) } catch { throw EngineError(.failed, "encode \(holderFile): \(error)") }
            do { try Files.writeAtomically(holderFile, encoded, mode: 0o600) } catch {
                throw EngineError(.failed, "write \(holderFile): \(error)")
            }
        } catch {
            if holder.pastaPid > 0 { _ = Glibc.kill(holder.pastaPid, SIGKILL) }
            _ = Glibc.kill(pid, SIGKILL)
            throw error
        }
        return holder
    }

    /// The holder's next message: `what`, or 'e' with an errno.
    private func expect(_ what: Unicode.Scalar, from socket: FileDescriptor) throws(EngineError) {
        var message = [UInt8](repeating: 0, count: 1 + MemoryLayout<Int32>.size)
        var entry = pollfd(fd: socket.rawValue, events: Int16(POLLIN), revents: 0)
        var count = 0
        if poll(&entry, 1, 10_000) > 0 {
            count = message.withUnsafeMutableBytes { Glibc.read(socket.rawValue, $0.baseAddress, $0.count) }
        }
        guard count == message.count else { throw EngineError(.failed, "the rootless network's holder did not answer") }
        if message[0] == UInt8(ascii: "e") {
            let code = message[1...].withUnsafeBytes { $0.loadUnaligned(as: Int32.self) }
            throw EngineError(.failed, "rootless network namespace: \(Errno(code))")
        }
        guard message[0] == UInt8(ascii: what) else { throw EngineError(.failed, "the rootless network's holder answered \(message[0])") }
    }

    /// pasta gives the namespace the host's addresses and routes, and its
    /// traffic a way out; it runs as a daemon until the holder is stopped.
    private func startPasta(holder: Int32) throws(EngineError) -> (Int32, UInt64) {
        guard let pasta = Tools.pasta else { throw EngineError(.failed, "pasta is not installed (Debian package passt): rootless bridge networks need it") }
        let pidFile = directory + "/pasta.pid"
        _ = unlink(pidFile)
        let arguments = [pasta, "--config-net", "--quiet", "--pid", pidFile, "-t", "none", "-u", "none", "-T", "none", "-U", "none",
                         "--userns", "/proc/\(holder)/ns/user", "--netns", "/proc/\(holder)/ns/net"]
        let result: Subprocess.Result
        do {
            result = try Subprocess.run(pasta, arguments: arguments, environment: Engine.environment(), timeout: 20,
                                        captureStandardError: true)
        } catch {
            throw EngineError(.failed, "run \(pasta): \(error)")
        }
        guard result.status == .exited(0), let text = try? Files.readString(pidFile), let pid = Int32(text.trimmed) else {
            let reason = result.standardError.split(separator: "\n").filter { !$0.contains("syslog") }.last.map(String.init) ?? "\(result.status)"
            throw EngineError(.failed, "pasta, for the rootless network: \(reason)")
        }
        return (pid, processStartTime(pid) ?? 0)
    }

    /// With no container left in it: stops pasta, aardvark-dns and the holder. Under the lock.
    func stopIfUnused() {
        guard Files.list(namespaces).isEmpty else { return }
        guard let bytes = try? Files.read(holderFile), let holder = try? JSONDecoder().decode(Holder.self, from: Data(bytes)) else { return }
        let holderAlive = holder.pid > 0 && processStartTime(holder.pid) == holder.startTime
        if holder.pastaPid > 0, processStartTime(holder.pastaPid) == holder.pastaStartTime {
            _ = Glibc.kill(holder.pastaPid, SIGTERM)
        }
        // netavark stops aardvark-dns with the last container of a network;
        // one that is still there (in the holder's namespace) goes too.
        if holderAlive, let text = try? Files.readString(netavarkConfig + "/aardvark-dns/aardvark.pid"), let pid = Int32(text.trimmed),
           let theirs = Files.readLink("/proc/\(pid)/ns/net"), theirs == Files.readLink("/proc/\(holder.pid)/ns/net") {
            _ = Glibc.kill(pid, SIGTERM)
        }
        if holderAlive { _ = Glibc.kill(holder.pid, SIGKILL) }
        _ = unlink(holderFile)
        _ = unlink(directory + "/pasta.pid")
        _ = rmdir(directory + "/rp")
    }
}

extension Engine {
    var rootlessNetns: RootlessNetns { RootlessNetns(directory: runtime.stateRoot + "/@rootless-netns") }
}

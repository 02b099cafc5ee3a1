#if canImport(Glibc)
import Glibc
#endif
import BerthOCI
import BerthOS

/// systemd's readiness protocol (sd_notify): one datagram of `KEY=VALUE`
/// lines to the unix socket named by `$NOTIFY_SOCKET` (a path, or an
/// abstract name written with a leading `@`). `--sdnotify` says who
/// speaks it for a container (Specs/containers.md, "sdnotify and health
/// checks").
package enum SystemdNotify {
    /// podman's modes; `container` is the default.
    package static let modes = ["container", "conmon", "healthy", "ignore"]

    /// Where a container with `--sdnotify container` finds its socket
    /// (podman's path), bound from `notify/` in the container's directory.
    package static let containerDirectory = "/run/notify"
    package static let containerSocket = "/run/notify/notify.sock"
    /// The proxy socket's directory and name inside the container's directory.
    package static let directoryName = "notify"
    package static let socketName = "notify.sock"

    /// Sends `message` as one datagram to `path`; false if it could not
    /// be sent (no listener, no such socket: systemd is then not waiting).
    @discardableResult
    package static func send(_ message: String, to path: String) -> Bool {
        let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        let bytes = Array(message.utf8)
        let sent = withAddress(path) { address, length in
            bytes.withUnsafeBytes { sendto(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL), address, length) }
        }
        return sent == bytes.count
    }

    /// The lines of a container's datagram that are passed on (conmon's
    /// list); the rest are dropped, MAINPID among them: systemd watches
    /// the berth that supervises the container, which said so itself.
    package static func forwarded(_ datagram: ArraySlice<UInt8>) -> String? {
        let exact: Set<Substring> = ["READY=1", "RELOADING=1", "STOPPING=1", "WATCHDOG=1", "WATCHDOG=trigger"]
        let prefixes = ["STATUS=", "ERRNO=", "BUSERROR=", "MONOTONIC_USEC="]
        // By bytes: "\r\n" is one Character to Swift.
        let lines = datagram.split(whereSeparator: { $0 == 10 || $0 == 13 }).map { Substring(decoding: $0, as: UTF8.self) }.filter { line in
            exact.contains(line) || prefixes.contains { line.hasPrefix($0) }
        }
        return lines.isEmpty ? nil : lines.joined(separator: "\n")
    }

    /// Calls `body` with the sockaddr_un of `path`. A path too long for
    /// sun_path is reached through its directory's /proc/self/fd entry.
    static func withAddress(_ path: String, _ body: (UnsafePointer<sockaddr>, socklen_t) -> Int) -> Int {
        var bytes = Array(path.utf8)
        let abstract = bytes.first == UInt8(ascii: "@")
        if abstract { bytes[0] = 0 }
        var address = sockaddr_un()
        let capacity = MemoryLayout.size(ofValue: address.sun_path)
        if !abstract && bytes.count >= capacity {
            // A long path: its directory, opened, names it in a few bytes.
            guard let slash = path.lastIndex(of: "/") else { return -1 }
            let directory = open(String(path[..<slash].isEmpty ? "/" : path[..<slash]), O_RDONLY | O_DIRECTORY | O_CLOEXEC)
            guard directory >= 0 else { return -1 }
            defer { close(directory) }
            return withAddress("/proc/self/fd/\(directory)/" + String(path[path.index(after: slash)...]), body)
        }
        guard bytes.count <= capacity, !bytes.isEmpty else { return -1 }
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: bytes) }
        let length = socklen_t(MemoryLayout<sa_family_t>.size + bytes.count + (abstract ? 0 : 1))
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, length) }
        }
    }

    /// The proxy's socket, `notify/notify.sock` in the container's
    /// directory, made anew (non-blocking, close-on-exec) and writable by
    /// every user of the container, as conmon makes it. -1 on failure.
    static func bindProxy(directory: String) -> Int32 {
        let notifyDirectory = directory + "/" + directoryName
        if mkdir(notifyDirectory, 0o755) != 0 && Errno.current != .exists { return -1 }
        let dir = open(notifyDirectory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard dir >= 0 else { return -1 }
        defer { close(dir) }
        _ = fchmod(dir, 0o755)
        _ = unlinkat(dir, socketName, 0)
        let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return -1 }
        let bound = withAddress("/proc/self/fd/\(dir)/\(socketName)") { address, length in Int(bind(fd, address, length)) }
        guard bound == 0, fchmodat(dir, socketName, 0o777, 0) == 0 else {
            close(fd)
            return -1
        }
        return fd
    }

    static func unlinkProxy(directory: String) {
        _ = unlink(directory + "/" + directoryName + "/" + socketName)
    }
}

extension SpecBuilder {
    /// --health-* (or the image's HEALTHCHECK) and --sdnotify: the
    /// container's health check, and with `container` (the default) while
    /// $NOTIFY_SOCKET is set, the proxy socket's directory bound at
    /// /run/notify and NOTIFY_SOCKET in the container's environment.
    func applyHealthAndNotify(_ spec: inout Spec, config: inout ContainerConfig, image: HealthConfig?, directory: String) throws(EngineError) {
        config.healthcheck = try resolveHealthcheck(image: image)
        let mode = options.sdnotify ?? "container"
        guard SystemdNotify.modes.contains(mode) else {
            throw EngineError(.invalidArgument, "--sdnotify \"\(mode)\": expected container, conmon, healthy or ignore")
        }
        if mode == "healthy" && config.healthcheck == nil {
            throw EngineError(.invalidArgument, "--sdnotify healthy needs a health check: give --health-cmd, or use an image with a HEALTHCHECK")
        }
        // Recorded as given: nil is the default (container), which generate
        // systemd --new turns into the unit's conmon.
        config.sdNotifyMode = options.sdnotify
        guard mode != "ignore", let value = getenv("NOTIFY_SOCKET"), case let socket = String(cString: value), !socket.isEmpty else { return }
        config.sdNotifySocket = socket
        guard mode == "container" else { return }
        let entry = "NOTIFY_SOCKET=" + SystemdNotify.containerSocket
        config.env = config.env.filter { !$0.hasPrefix("NOTIFY_SOCKET=") } + [entry]
        let processEnv = spec.process?.env ?? []
        spec.process?.env = processEnv.filter { !$0.hasPrefix("NOTIFY_SOCKET=") } + [entry]
        spec.mounts = (spec.mounts ?? []) + [Mount(destination: SystemdNotify.containerDirectory, type: "bind",
                                                   source: directory + "/" + SystemdNotify.directoryName, options: ["rbind", "rprivate"])]
    }
}

#if canImport(Glibc)
import Glibc
#endif
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import BerthOCI
import BerthOS

/// A container as the engine keeps it: what was asked for (config) and
/// what became of it (state). Stored as `containers/<id>/container.json`
/// in the store, next to its overlay directories, config.json and log.
package struct Container: Codable, Sendable {
    package var id: String
    package var name: String
    /// RFC 3339 with nanoseconds, UTC.
    package var created: String
    /// The image as the user named it, and its id (config digest).
    package var image: String
    package var imageID: String
    package var config: ContainerConfig
    package var state: ContainerState
    package var restartCount = 0

    package init(id: String, name: String, created: String, image: String, imageID: String,
                 config: ContainerConfig, state: ContainerState) {
        self.id = id
        self.name = name
        self.created = created
        self.image = image
        self.imageID = imageID
        self.config = config
        self.state = state
    }

    package var shortID: String { String(id.prefix(12)) }
}

package struct RestartPolicy: Codable, Sendable, Equatable {
    /// no, on-failure, always, unless-stopped
    package var name: String
    package var maximumRetryCount: Int

    package init(name: String = "no", maximumRetryCount: Int = 0) {
        self.name = name
        self.maximumRetryCount = maximumRetryCount
    }

    /// `no`, `on-failure[:N]`, `always`, `unless-stopped`.
    package static func parse(_ text: String) throws(EngineError) -> RestartPolicy {
        let parts = text.split(separator: ":", maxSplits: 1).map(String.init)
        switch parts.first ?? "" {
        case "no" where parts.count == 1, "always" where parts.count == 1, "unless-stopped" where parts.count == 1:
            return RestartPolicy(name: parts[0])
        case "on-failure":
            if parts.count == 1 { return RestartPolicy(name: "on-failure") }
            guard let count = Int(parts[1]), count >= 0 else {
                throw EngineError(.invalidArgument, "--restart \"\(text)\": the retry count must be a number ≥ 0")
            }
            return RestartPolicy(name: "on-failure", maximumRetryCount: count)
        default:
            throw EngineError(.invalidArgument, "--restart \"\(text)\": expected no, on-failure[:N], always or unless-stopped")
        }
    }

    /// Whether a container that exited with `code` (nil: killed by berth
    /// stop) is started again, having been restarted `count` times.
    package func restarts(exitCode: Int32, count: Int) -> Bool {
        switch name {
        case "always", "unless-stopped": return true
        case "on-failure": return exitCode != 0 && (maximumRetryCount == 0 || count < maximumRetryCount)
        default: return false
        }
    }
}

/// One mount of a container, as `inspect` shows it.
package struct ContainerMount: Codable, Sendable, Equatable {
    /// bind, volume or tmpfs
    package var type: String
    /// Host path (bind), volume name (volume), empty (tmpfs).
    package var source: String
    package var destination: String
    package var options: [String]
    package var readOnly: Bool
    /// An anonymous volume (from the image's VOLUME or `-v /path`): removed with the container by --rm or rm -v.
    package var anonymous = false

    package init(type: String, source: String, destination: String, options: [String] = [], readOnly: Bool = false, anonymous: Bool = false) {
        self.type = type
        self.source = source
        self.destination = destination
        self.options = options
        self.readOnly = readOnly
        self.anonymous = anonymous
    }
}

/// What the container was created with, beyond the Spec in config.json.
package struct ContainerConfig: Codable, Sendable {
    package var entrypoint: [String] = []
    package var cmd: [String] = []
    package var env: [String] = []
    package var workingDir = "/"
    package var user = ""
    package var hostname = ""
    package var labels: [String: String] = [:]
    package var stopSignal = "SIGTERM"
    package var stopTimeout = 10
    /// --timeout: seconds the container may run before it is stopped (nil: no limit).
    package var timeout: Int? = nil
    /// run/create --cgroups: enabled, disabled or split (nil: the global --cgroups).
    package var cgroups: String? = nil
    /// --sdnotify: container, conmon, healthy or ignore (nil: container); see ContainerReadiness.
    package var sdNotifyMode: String? = nil
    /// $NOTIFY_SOCKET when the container was created (nil: unset, or --sdnotify ignore).
    package var sdNotifySocket: String? = nil
    /// --health-* or the image's HEALTHCHECK, defaults filled in (nil: no check).
    package var healthcheck: HealthConfig? = nil
    package var tty = false
    package var interactive = false
    package var autoRemove = false
    package var initProcess = false
    package var readOnly = false
    /// none, host, bridge (the networks below), container:<id>, ns:<path>, pasta or slirp4netns.
    package var network = "none"
    /// bridge: the networks joined, in order (eth0, eth1, ...).
    package var networks: [NetworkRequest] = []
    /// pasta:OPTIONS and slirp4netns:OPTIONS, passed on.
    package var networkOptions: [String] = []
    package var ports: [PortMapping] = []
    package var dns: [String] = []
    package var dnsSearch: [String] = []
    package var dnsOptions: [String] = []
    /// --add-host HOST:IP entries.
    package var addHosts: [String] = []
    package var restartPolicy = RestartPolicy()
    package var mounts: [ContainerMount] = []
    package var exposedPorts: [String] = []
    /// Log rotation size in bytes (nil: unlimited).
    package var logMaxSize: Int64? = nil
    /// --log-driver: k8s-file, journald, passthrough, passthrough-tty or none (nil: k8s-file).
    package var logDriver: String? = nil
    /// --log-opt tag=TAG (journald), its templates not yet filled in.
    package var logTag: String? = nil

    package init() {}

    package var command: [String] { entrypoint + cmd }
}

package struct ContainerState: Codable, Sendable {
    /// created, running, stopping, restarting (between two runs of its
    /// restart policy), paused, exited, removing
    package var status = "created"
    package var pid: Int32 = 0
    /// Start time of `pid` in clock ticks (a recycled pid is never taken for it).
    package var startTime: UInt64 = 0
    /// The process that waits for it: the monitor of a detached container,
    /// or the berth that runs it in the foreground.
    package var monitorPid: Int32 = 0
    package var monitorStartTime: UInt64 = 0
    package var startedAt: String? = nil
    package var finishedAt: String? = nil
    /// nil once it has exited: the exit code is unknown (its monitor died).
    package var exitCode: Int32? = nil
    package var oomKilled = false
    package var error: String? = nil
    /// `berth stop`/`kill` asked for it to end: no restart.
    package var stopRequested = false
    /// Set while its network is set up (netns, netavark, pasta), cleared by teardown.
    package var network: NetworkState? = nil
    /// The health check's results (containers with one, once started).
    package var health: HealthState? = nil
    /// --sdnotify healthy: READY=1 went out in this run (its first healthy check).
    package var readyNotified: Bool? = nil

    package init() {}
}

/// A network a container joins, as asked for.
package struct NetworkRequest: Codable, Sendable, Equatable {
    package var name: String
    package var aliases: [String] = []
    package var ips: [String] = []
    package var mac: String?

    package init(name: String) { self.name = name }
}

/// What a container's network setup made, for its teardown and for inspect.
package struct NetworkState: Codable, Sendable {
    /// The bind-mounted network namespace (bridge networks).
    package var netns: String?
    /// netavark's --config directory used.
    package var netavarkConfig: String?
    package var interfaces: [Interface] = []
    /// pasta or slirp4netns, tied to the process that runs the container.
    package var helperPid: Int32 = 0
    package var helperStartTime: UInt64 = 0
    /// The berth that set it up (foreground run or monitor): while it
    /// lives, the network is its to undo; after, anyone's.
    package var ownerPid: Int32 = 0
    package var ownerStartTime: UInt64 = 0
    /// Rootless bridge networks: the holder of the user's rootless network
    /// namespace, in whose mount namespace `netns` is bound.
    package var holderPid: Int32?
    package var holderStartTime: UInt64?

    /// `netns` as a path this process can open.
    package var joinPath: String? {
        guard let netns else { return nil }
        guard let holderPid else { return netns }
        return RootlessNetns.joinPath(holder: holderPid, namespace: netns)
    }

    package struct Interface: Codable, Sendable {
        package var network: String
        package var name: String
        /// CIDR form, such as 10.88.0.2/16.
        package var addresses: [String] = []
        package var gateways: [String] = []
        package var mac: String = ""
    }

    package init() {}
}

extension ContainerState {
    /// Someone (its monitor or foreground berth) is running it or about to run it again.
    package var isActive: Bool { status == "running" || status == "stopping" || status == "restarting" }
}

extension Container {
    /// Whether its process still lives (same pid, same start time, not a zombie).
    package var processAlive: Bool {
        state.pid > 0 && processStartTime(state.pid) == state.startTime && processState(state.pid) != "Z"
    }

    package var monitorAlive: Bool {
        state.monitorPid > 0 && processStartTime(state.monitorPid) == state.monitorStartTime && processState(state.monitorPid) != "Z"
    }

    /// podman's STATUS column: "Created", "Up 3 seconds", "Exited (0) 2 minutes ago".
    package func statusText(now: Int64 = Timestamps.nowSeconds()) -> String {
        switch state.status {
        case "created":
            return "Created"
        case "running":
            let started = state.startedAt.flatMap(Timestamps.seconds(of:)) ?? now
            return "Up " + Timestamps.humanDuration(now - started) + (state.health.map { " (\($0.status))" } ?? "")
        case "paused":
            return "Paused"
        case "restarting":
            return "Restarting (\(state.exitCode.map(String.init) ?? "unknown"))"
        case "removing":
            return "Removing"
        default:
            let code = state.exitCode.map(String.init) ?? "unknown"
            guard let finished = state.finishedAt.flatMap(Timestamps.seconds(of:)) else { return "Exited (\(code))" }
            return "Exited (\(code)) \(Timestamps.humanDuration(now - finished)) ago"
        }
    }
}

/// RFC 3339 times as the records keep them (UTC, nanoseconds: the log's `Timestamp`).
package enum Timestamps {
    package static func now() -> String { Timestamp.now().rfc3339Nano }

    package static func nowSeconds() -> Int64 { Int64(time(nil)) }

    package static func format(seconds: Int64, nanoseconds: Int) -> String {
        Timestamp(seconds: seconds, nanoseconds: Int32(nanoseconds)).rfc3339Nano
    }

    /// Seconds since the epoch of a time this file wrote.
    package static func seconds(of text: String) -> Int64? { Timestamp(rfc3339: text)?.seconds }

    /// "3 seconds", "About a minute", "5 minutes", "2 hours", "3 days" (docker's wording).
    package static func humanDuration(_ seconds: Int64) -> String {
        let s = max(0, seconds)
        if s < 1 { return "Less than a second" }
        if s == 1 { return "1 second" }
        if s < 60 { return "\(s) seconds" }
        let minutes = s / 60
        if minutes == 1 { return "About a minute" }
        if minutes < 60 { return "\(minutes) minutes" }
        let hours = minutes / 60
        if hours == 1 { return "About an hour" }
        if hours < 48 { return "\(hours) hours" }
        let days = hours / 24
        if days < 14 { return "\(days) days" }
        if days < 60 { return "\(days / 7) weeks" }
        if days < 730 { return "\(days / 30) months" }
        return "\(days / 365) years"
    }
}

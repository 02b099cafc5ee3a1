#if canImport(Glibc)
import Glibc
#endif
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import BerthImage
import BerthOCI
import BerthOS
import BerthRuntime
import CBerth

/// What `run` and `create` were asked for, as the flags gave it (strings
/// are checked here, so every front end reports the same errors).
package struct CreateOptions: Sendable {
    package var name: String?
    package var image = ""
    package var command: [String] = []
    /// --entrypoint: nil keeps the image's; "" clears it.
    package var entrypoint: String?
    /// -e and --env-file, in order: KEY=VALUE, or KEY to take it from berth's environment.
    package var env: [String] = []
    package var workdir: String?
    package var user: String?
    package var hostname: String?
    package var readOnly = false
    package var tty = false
    package var interactive = false
    package var initProcess = false
    package var tmpfs: [String] = []
    package var volumes: [String] = []
    package var mounts: [String] = []
    package var labels: [String] = []
    package var stopSignal: String?
    package var stopTimeout: Int?
    /// --timeout SECONDS (0: none).
    package var timeout: Int?
    /// --cgroups enabled|disabled|split|no-conmon.
    package var cgroups: String?
    /// --sdnotify container|conmon|healthy|ignore, and the --health-* flags (Notify.swift, HealthCheck.swift).
    package var sdnotify: String?
    package var health = HealthOptions()
    package var capAdd: [String] = []
    package var capDrop: [String] = []
    package var privileged = false
    package var securityOpts: [String] = []
    package var memory: String?
    package var cpus: String?
    package var pidsLimit: String?
    package var ulimits: [String] = []
    package var userns: String?
    /// --network, each possibly NAME,NAME (empty: bridge as root, pasta rootless).
    package var networks: [String] = []
    package var ip: String?
    package var mac: String?
    package var aliases: [String] = []
    package var dns: [String] = []
    package var dnsSearch: [String] = []
    package var dnsOptions: [String] = []
    package var addHosts: [String] = []
    package var publish: [String] = []
    package var publishAll = false
    package var expose: [String] = []
    package var restart = "no"
    package var autoRemove = false
    package var logOpts: [String] = []
    /// --log-driver k8s-file|journald|passthrough|passthrough-tty|none (nil: k8s-file).
    package var logDriver: String?

    package init() {}
}

/// Image config + flags → the OCI Spec (config.json) and the engine's record.
package struct SpecBuilder {
    package let id: String
    package let options: CreateOptions
    package let image: ImageRecord
    package let imageConfig: ImageConfiguration
    package let store: ImageStore
    package let rootless: Bool

    package struct Result {
        package var spec: Spec
        package var config: ContainerConfig
        /// Named and anonymous volumes this container mounts (created by now).
        package var volumes: [String]
    }

    /// The image's layer directories, topmost first.
    var layerDirectories: [String] { image.layers.reversed().map { store.layerDiffPath($0.chainID) } }

    package func build(directory: String) throws(EngineError) -> Result {
        let inner = imageConfig.config ?? ImageConfiguration.Config()
        var config = ContainerConfig()

        // The command: docker's rules for --entrypoint and trailing arguments.
        if let entrypoint = options.entrypoint {
            config.entrypoint = entrypoint.isEmpty ? [] : [entrypoint]
            config.cmd = options.command
        } else {
            config.entrypoint = inner.Entrypoint ?? []
            config.cmd = options.command.isEmpty ? inner.Cmd ?? [] : options.command
        }
        guard !config.command.isEmpty else {
            throw EngineError(.invalidArgument, "no command: the image has no Entrypoint or Cmd, give one after the image name")
        }

        // User namespace and base Spec.
        let keepID = try parseUserns()
        var spec: Spec
        if rootless {
            spec = Spec.rootless(uid: getuid(), gid: getgid())
            let ids = SubordinateIDs.current()
            if keepID {
                guard let uidRange = ids.uids.first, let gidRange = ids.gids.first else {
                    throw EngineError(.invalidArgument, "--userns=keep-id needs subordinate ids for \(getuid()) in /etc/subuid and /etc/subgid")
                }
                spec.linux?.uidMappings = Self.keepIDMappings(own: getuid(), range: uidRange)
                spec.linux?.gidMappings = Self.keepIDMappings(own: getgid(), range: gidRange)
            } else if !ids.uids.isEmpty, !ids.gids.isEmpty {
                let maps = ids.mappings(ownUID: getuid(), ownGID: getgid())
                spec.linux?.uidMappings = maps.uid
                spec.linux?.gidMappings = maps.gid
            }
        } else {
            spec = Spec.default()
        }
        // docker and podman do not set no_new_privs unless asked.
        spec.process?.noNewPrivileges = false

        // Environment: the image's, then the flags'.
        var env = inner.Env ?? ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]
        func setEnv(_ entry: String) {
            let key = String(entry.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)[0])
            env.removeAll { $0.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)[0] == key }
            env.append(entry)
        }
        let hostname = options.hostname ?? String(id.prefix(12))
        guard hostname.utf8.count <= 64, !hostname.isEmpty, !hostname.contains("/") else {
            throw EngineError(.invalidArgument, "--hostname \"\(hostname)\": expected a host name of 1 to 64 characters")
        }
        if !env.contains(where: { $0.hasPrefix("HOSTNAME=") }) { env.append("HOSTNAME=\(hostname)") }
        for item in options.env {
            let parts = item.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            guard let key = parts.first, !key.isEmpty else {
                throw EngineError(.invalidArgument, "environment variable \"\(item)\": expected KEY=VALUE or KEY")
            }
            if parts.count == 2 { setEnv(item) } else if let value = getenv(String(key)) { setEnv("\(key)=\(String(cString: value))") }
        }
        if options.tty, !env.contains(where: { $0.hasPrefix("TERM=") }) { env.append("TERM=xterm") }
        config.env = env

        config.hostname = hostname
        spec.hostname = hostname
        spec.process?.args = config.command
        spec.process?.env = env
        spec.process?.terminal = options.tty
        config.tty = options.tty
        config.interactive = options.interactive

        let workdir = options.workdir ?? (inner.WorkingDir.flatMap { $0.isEmpty ? nil : $0 } ?? "/")
        guard workdir.hasPrefix("/") else {
            throw EngineError(.invalidArgument, "--workdir \"\(workdir)\": the working directory must be an absolute path")
        }
        config.workingDir = workdir
        spec.process?.cwd = workdir

        // User: names are looked up in the image's /etc/passwd and /etc/group.
        config.user = options.user ?? inner.User ?? ""
        if !config.user.isEmpty {
            spec.process?.user = try resolveUser(config.user)
        }
        if keepID && options.user == nil {
            spec.process?.user = User(uid: getuid(), gid: getgid())
        }

        // Labels, stop signal and timeout.
        config.labels = inner.Labels ?? [:]
        for label in options.labels {
            let parts = label.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
            guard let key = parts.first, !key.isEmpty else {
                throw EngineError(.invalidArgument, "--label \"\(label)\": expected KEY=VALUE")
            }
            config.labels[key] = parts.count > 1 ? parts[1] : ""
        }
        let stopSignal = options.stopSignal ?? inner.StopSignal ?? "SIGTERM"
        guard SignalName.parse(stopSignal) != nil else {
            throw EngineError(.invalidArgument, "--stop-signal \"\(stopSignal)\": not a signal name or number")
        }
        config.stopSignal = stopSignal
        if let timeout = options.stopTimeout {
            guard timeout >= 0 else { throw EngineError(.invalidArgument, "--stop-timeout \(timeout): expected seconds ≥ 0") }
            config.stopTimeout = timeout
        }
        if let mode = options.cgroups {
            // berth has no conmon: its monitor (or the foreground berth)
            // stays in the caller's group, which is podman's no-conmon.
            let known = ["enabled", "disabled", "split", "no-conmon"]
            guard known.contains(mode) else {
                throw EngineError(.invalidArgument, "--cgroups \"\(mode)\": expected enabled, disabled, split or no-conmon")
            }
            config.cgroups = mode == "no-conmon" ? "enabled" : mode
        }
        if let timeout = options.timeout {
            guard timeout >= 0 else { throw EngineError(.invalidArgument, "--timeout \(timeout): expected seconds ≥ 0") }
            config.timeout = timeout > 0 ? timeout : nil
        }
        config.exposedPorts = (inner.ExposedPorts ?? [:]).keys.sorted()
        config.restartPolicy = try RestartPolicy.parse(options.restart)
        if options.autoRemove && config.restartPolicy.name != "no" {
            throw EngineError(.invalidArgument, "--rm and --restart \(options.restart) conflict: a removed container cannot be restarted")
        }
        config.autoRemove = options.autoRemove
        config.initProcess = options.initProcess
        config.readOnly = options.readOnly
        try applyLogOptions(to: &config)

        // Security.
        try applySecurity(&spec)
        try applyResources(&spec)
        try applyHealthAndNotify(&spec, config: &config, image: inner.Healthcheck, directory: directory)

        // Root file system: the image's layers under an overlay.
        spec.root = Root(path: "rootfs", readonly: options.readOnly)
        var mounts = try MountSpecs.parse(volumes: options.volumes, mounts: options.mounts, tmpfs: options.tmpfs)
        // The image's VOLUMEs not covered by a flag become anonymous volumes.
        for path in (inner.Volumes ?? [:]).keys.sorted() where !mounts.contains(where: { $0.destination == Self.clean(path) }) {
            mounts.append(ContainerMount(type: "volume", source: "", destination: Self.clean(path), anonymous: true))
        }
        let (specMounts, copyUps, volumes, resolved) = try realise(mounts, spec: spec, directory: directory)
        config.mounts = resolved
        spec.mounts = (spec.mounts ?? []).filter { base in !specMounts.contains { $0.destination == base.destination } } + specMounts

        // Network: the namespace (its path is set at each start), and the
        // files the engine writes for it.
        try NetworkPlan.resolve(options, config: &config, rootless: rootless, store: store)
        if config.network == "host" {
            spec.linux?.namespaces?.removeAll { $0.type == "network" }
            if rootless, let index = spec.mounts?.firstIndex(where: { $0.destination == "/sys" }) {
                spec.mounts?[index] = Mount(destination: "/sys", type: "none", source: "/sys", options: ["rbind", "nosuid", "noexec", "nodev", "ro"])
            }
        } else if !(spec.linux?.namespaces?.contains { $0.type == "network" } ?? false) {
            spec.linux?.namespaces?.append(LinuxNamespace(type: "network"))
        }
        // A rootless bridge container's network namespace belongs to the user
        // namespace it runs in (the rootless network's): it may mount its own
        // sysfs, so /sys/class/net shows its interfaces, not the host's. The
        // cgroup tree is bound in as for other rootless containers.
        if rootless && config.network == "bridge", let index = spec.mounts?.firstIndex(where: { $0.destination == "/sys" }) {
            spec.mounts?[index] = Mount(destination: "/sys", type: "sysfs", source: "sysfs", options: ["nosuid", "noexec", "nodev", "ro"])
            spec.mounts?.insert(Mount(destination: "/sys/fs/cgroup", type: "none", source: "/sys/fs/cgroup",
                                      options: ["rbind", "nosuid", "noexec", "nodev", "ro"]), at: index + 1)
        }
        spec.mounts = (spec.mounts ?? []) + NetworkPlan.etcMounts(directory: directory, mounts: specMounts)

        let driver = RootfsDriver.detect(rootless: rootless, upperOn: directory)
        var overlay = RootfsOverlay(
            driver: driver == .fuseOverlayfs ? .fuseOverlayfs : driver == .copy ? .copy : .overlay,
            layersDirectory: store.layersDirectory,
            lower: image.layers.reversed().map { "\($0.chainID.hex)/diff" },
            upper: directory + "/upper", work: directory + "/work", userxattr: rootless)
        overlay.copyUp = copyUps.isEmpty ? nil : copyUps
        if driver == .fuseOverlayfs { Self.allowDevice(&spec, type: "c", major: 10, minor: 229) }
        var annotations = spec.annotations ?? [:]
        do {
            annotations[RootfsOverlay.annotation] = String(decoding: try JSONEncoder().encode(overlay), as: UTF8.self)
        } catch {
            throw EngineError(.failed, "encode the root file system: \(error)")
        }
        annotations["run.berth.image"] = image.id.description
        if options.initProcess { annotations[ContainerInitProcess.annotation] = "true" }
        spec.annotations = annotations
        return Result(spec: spec, config: config, volumes: volumes)
    }

    static func clean(_ path: String) -> String {
        let parts = path.split(separator: "/").filter { $0 != "." }
        return "/" + parts.joined(separator: "/")
    }

    /// --userns: "" or host (the default mapping), keep-id (rootless).
    func parseUserns() throws(EngineError) -> Bool {
        guard let userns = options.userns, !userns.isEmpty, userns != "host" else { return false }
        guard userns == "keep-id" else {
            throw EngineError(.invalidArgument, "--userns \"\(userns)\": berth supports keep-id (rootless) and host")
        }
        guard rootless else {
            throw EngineError(.invalidArgument, "--userns=keep-id is for rootless containers: as root the container's users are the host's")
        }
        return true
    }

    /// keep-id: the user is the same uid inside; the subordinate range fills the rest.
    static func keepIDMappings(own: UInt32, range: ClosedRange<UInt32>) -> [LinuxIDMapping] {
        let size = range.upperBound - range.lowerBound + 1
        var maps: [LinuxIDMapping] = []
        let below = min(own, size)
        if below > 0 { maps.append(LinuxIDMapping(containerID: 0, hostID: range.lowerBound, size: below)) }
        maps.append(LinuxIDMapping(containerID: own, hostID: own, size: 1))
        if size > below { maps.append(LinuxIDMapping(containerID: own + 1, hostID: range.lowerBound + below, size: size - below)) }
        return maps
    }

    // MARK: users

    /// USER[:GROUP], each a name or a number; a user without a group gets
    /// their passwd group, and the groups /etc/group lists them in.
    func resolveUser(_ text: String) throws(EngineError) -> User {
        let passwd = LayerFiles.read("etc/passwd", layers: layerDirectories).map { String(decoding: $0, as: UTF8.self) } ?? ""
        let group = LayerFiles.read("etc/group", layers: layerDirectories).map { String(decoding: $0, as: UTF8.self) } ?? ""
        return try Self.resolveUser(text, passwd: passwd, group: group)
    }

    /// USER[:GROUP] against the text of /etc/passwd and /etc/group.
    package static func resolveUser(_ text: String, passwd: String, group: String) throws(EngineError) -> User {
        let parts = text.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
        let userPart = parts[0]
        let groupPart = parts.count > 1 ? parts[1] : nil
        let passwdEntries = passwd.split(separator: "\n").map { $0.split(separator: ":", omittingEmptySubsequences: false).map(String.init) }.filter { $0.count >= 4 }
        let groupEntries = group.split(separator: "\n").map { $0.split(separator: ":", omittingEmptySubsequences: false).map(String.init) }.filter { $0.count >= 3 }
        var uid: UInt32
        var gid: UInt32 = 0
        var userName: String? = nil
        if let number = UInt32(userPart) {
            uid = number
            if let entry = passwdEntries.first(where: { UInt32($0[2]) == number }) {
                gid = UInt32(entry[3]) ?? 0
                userName = entry[0]
            }
        } else if let entry = passwdEntries.first(where: { $0[0] == userPart }), let number = UInt32(entry[2]) {
            uid = number
            gid = UInt32(entry[3]) ?? 0
            userName = userPart
        } else {
            throw EngineError(.invalidArgument, "user \"\(userPart)\": no such user in the image's /etc/passwd")
        }
        if let groupPart {
            if let number = UInt32(groupPart) {
                gid = number
            } else if let entry = groupEntries.first(where: { $0[0] == groupPart }), let number = UInt32(entry[2]) {
                gid = number
            } else {
                throw EngineError(.invalidArgument, "group \"\(groupPart)\": no such group in the image's /etc/group")
            }
        }
        var user = User(uid: uid, gid: gid)
        if let userName {
            let extra = groupEntries.filter { $0.count >= 4 && $0[3].split(separator: ",").contains(Substring(userName)) }
                .compactMap { UInt32($0[2]) }.filter { $0 != gid }
            if !extra.isEmpty { user.additionalGids = extra }
        }
        return user
    }

    // MARK: security

    func applySecurity(_ spec: inout Spec) throws(EngineError) {
        var caps = Set(spec.process?.capabilities?.bounding ?? Spec.defaultCapabilities)
        if options.privileged {
            caps = Set(Capabilities.all)
            spec.linux?.seccomp = nil
            spec.linux?.maskedPaths = []
            spec.linux?.readonlyPaths = []
            spec.mounts = spec.mounts?.map { mount in
                var mount = mount
                if mount.destination == "/sys" || mount.destination == "/sys/fs/cgroup" { mount.options = mount.options?.filter { $0 != "ro" } }
                return mount
            }
            Self.allowDevice(&spec, type: "a", major: nil, minor: nil)
        }
        for name in options.capDrop {
            if name.uppercased() == "ALL" { caps = []; continue }
            guard let canonical = Capabilities.canonical(name) else {
                throw EngineError(.invalidArgument, "--cap-drop \"\(name)\": unknown capability")
            }
            caps.remove(canonical)
        }
        for name in options.capAdd {
            if name.uppercased() == "ALL" { caps = Set(Capabilities.all); continue }
            guard let canonical = Capabilities.canonical(name) else {
                throw EngineError(.invalidArgument, "--cap-add \"\(name)\": unknown capability")
            }
            caps.insert(canonical)
        }
        let list = caps.sorted()
        spec.process?.capabilities = LinuxCapabilities(bounding: list, effective: list, permitted: list)
        for option in options.securityOpts {
            let parts = option.split(separator: "=", maxSplits: 1).map(String.init)
            let key = parts[0]
            switch (key, parts.count > 1 ? parts[1] : nil) {
            case ("no-new-privileges", nil), ("no-new-privileges", "true"):
                spec.process?.noNewPrivileges = true
            case ("no-new-privileges", "false"):
                spec.process?.noNewPrivileges = false
            case ("seccomp", "unconfined"?):
                spec.linux?.seccomp = nil
            case ("seccomp", let path?):
                guard let bytes = try? Files.read(path) else {
                    throw EngineError(.invalidArgument, "--security-opt seccomp=\(path): cannot read the profile")
                }
                guard let profile = try? JSONDecoder().decode(LinuxSeccomp.self, from: Data(bytes)) else {
                    throw EngineError(.invalidArgument, "--security-opt seccomp=\(path): not a seccomp profile (the runtime-spec linux.seccomp format)")
                }
                spec.linux?.seccomp = profile
            case ("label", _), ("apparmor", _):
                continue // accepted: no SELinux or AppArmor here
            default:
                throw EngineError(.invalidArgument, "--security-opt \"\(option)\": berth knows no-new-privileges, seccomp=unconfined|PROFILE.json, label=… and apparmor=…")
            }
        }
        // Ulimits: docker's NAME=SOFT[:HARD].
        for ulimit in options.ulimits {
            let parts = ulimit.split(separator: "=", maxSplits: 1).map(String.init)
            let limits = parts.count == 2 ? parts[1].split(separator: ":").map(String.init) : []
            func value(_ text: String) -> UInt64? { text == "-1" || text == "unlimited" ? UInt64.max : UInt64(text) }
            guard parts.count == 2, (1...2).contains(limits.count), let soft = value(limits[0]),
                  let hard = value(limits.count == 2 ? limits[1] : limits[0]), soft <= hard,
                  let type = Self.rlimitNames[parts[0].lowercased()] else {
                throw EngineError(.invalidArgument, "--ulimit \"\(ulimit)\": expected NAME=SOFT[:HARD] with soft ≤ hard, such as nofile=1024:2048")
            }
            var rlimits = spec.process?.rlimits ?? []
            rlimits.removeAll { $0.type == type }
            rlimits.append(POSIXRlimit(type: type, hard: hard, soft: soft))
            spec.process?.rlimits = rlimits
        }
    }

    static let rlimitNames: [String: String] = [
        "core": "RLIMIT_CORE", "cpu": "RLIMIT_CPU", "data": "RLIMIT_DATA", "fsize": "RLIMIT_FSIZE",
        "locks": "RLIMIT_LOCKS", "memlock": "RLIMIT_MEMLOCK", "msgqueue": "RLIMIT_MSGQUEUE", "nice": "RLIMIT_NICE",
        "nofile": "RLIMIT_NOFILE", "nproc": "RLIMIT_NPROC", "rss": "RLIMIT_RSS", "rtprio": "RLIMIT_RTPRIO",
        "rttime": "RLIMIT_RTTIME", "sigpending": "RLIMIT_SIGPENDING", "stack": "RLIMIT_STACK", "as": "RLIMIT_AS",
    ]

    func applyResources(_ spec: inout Spec) throws(EngineError) {
        var flags = ResourceFlags()
        flags.memory = options.memory
        flags.cpus = options.cpus
        flags.pidsLimit = options.pidsLimit
        guard flags.memory != nil || flags.cpus != nil || flags.pidsLimit != nil else { return }
        do {
            let base = spec.linux?.resources ?? .null
            let merged = try flags.merged(into: base)
            spec.linux?.resources = merged
        } catch {
            throw EngineError(.invalidArgument, error.message)
        }
    }

    static func allowDevice(_ spec: inout Spec, type: String, major: Int64?, minor: Int64?) {
        var resources: [String: JSONValue] = [:]
        if case let .object(existing)? = spec.linux?.resources { resources = existing }
        var devices: [JSONValue] = []
        if case let .array(existing)? = resources["devices"] { devices = existing }
        var rule: [String: JSONValue] = ["allow": .bool(true), "type": .string(type), "access": .string("rwm")]
        if let major { rule["major"] = .integer(major) }
        if let minor { rule["minor"] = .integer(minor) }
        devices.append(.object(rule))
        resources["devices"] = .array(devices)
        spec.linux?.resources = .object(resources)
    }

    // MARK: mounts

    /// Turns the parsed mounts into Spec mounts: volumes are created (named
    /// ones on first use, anonymous ones always), bind sources checked.
    /// Overlay volumes keep their changes under `directory` (see OverlayVolume).
    func realise(_ mounts: [ContainerMount], spec: Spec, directory: String) throws(EngineError)
        -> ([Mount], [RootfsOverlay.CopyUp], [String], [ContainerMount]) {
        var result: [Mount] = []
        var copyUps: [RootfsOverlay.CopyUp] = []
        var volumes: [String] = []
        var resolved: [ContainerMount] = []
        let volumeStore = VolumeStore(storeRoot: store.root)
        // Checked before any volume is made, so a refused run leaves none behind.
        var seen = Set<String>()
        for mount in mounts {
            guard seen.insert(mount.destination).inserted else {
                throw EngineError(.invalidArgument, "\(mount.destination) is mounted twice: give each container path one mount")
            }
            var st = stat()
            if mount.type == "bind", stat(mount.source, &st) != 0 {
                throw EngineError(.invalidArgument, "bind mount source \"\(mount.source)\" does not exist on the host")
            }
            if mount.type == "overlay" {
                guard stat(mount.source, &st) == 0, (st.st_mode & S_IFMT) == S_IFDIR else {
                    throw EngineError(.invalidArgument, "overlay volume source \"\(mount.source)\" is not a directory on the host")
                }
                // Rootless, the kernel's overlay is mounted in the user namespace (Linux 5.11 and later).
                if rootless && !RootfsDriver.kernelAtLeast(5, 11) {
                    throw EngineError(.invalidArgument, "overlay volume on \(mount.destination): rootless, overlay volumes need Linux 5.11 or later")
                }
            }
        }
        var anonymous: [String] = []
        do {
            for (index, var mount) in mounts.enumerated() {
                let readOnly = mount.readOnly ? ["ro"] : ["rw"]
                let propagation = mount.options.filter { ["shared", "rshared", "slave", "rslave", "private", "rprivate"].contains($0) }
                switch mount.type {
                case "bind":
                    if mount.options.contains("U") { try chownForContainer(mount.source, spec: spec) }
                    result.append(Mount(destination: mount.destination, type: "bind", source: mount.source,
                                        options: ["rbind"] + readOnly + (propagation.isEmpty ? ["rprivate"] : propagation)))
                case "volume":
                    let record = try volumeStore.create(name: mount.source.isEmpty ? nil : mount.source, anonymous: mount.anonymous,
                                                        ignoreIfExists: !mount.anonymous)
                    mount.source = record.name
                    volumes.append(record.name)
                    if mount.anonymous { anonymous.append(record.name) }
                    if let tmpfs = volumeStore.mountSpec(for: record) {
                        result.append(Mount(destination: mount.destination, type: tmpfs.type, source: tmpfs.source,
                                            options: ["nosuid", "nodev"] + readOnly + tmpfs.options))
                    } else {
                        let data = volumeStore.dataPath(record.name)
                        result.append(Mount(destination: mount.destination, type: "bind", source: data,
                                            options: ["rbind"] + readOnly + (propagation.isEmpty ? ["rprivate"] : propagation)))
                        if !mount.options.contains("nocopy") {
                            copyUps.append(RootfsOverlay.CopyUp(path: mount.destination, volume: data))
                        }
                    }
                case "overlay":
                    // The upper and work directories are made anew at each start (Engine.resetOverlayVolumes).
                    let changes = OverlayVolume.directory(container: directory, index: index)
                    result.append(Mount(destination: mount.destination, type: "overlay", source: "overlay",
                                        options: ["lowerdir=\(mount.source)", "upperdir=\(changes)/upper", "workdir=\(changes)/work"]
                                            + (rootless ? ["userxattr"] : [])))
                default: // tmpfs
                    let extra = mount.options.filter { $0 != "ro" && $0 != "rw" }
                    result.append(Mount(destination: mount.destination, type: "tmpfs", source: "tmpfs",
                                        options: ["nosuid", "nodev"] + readOnly + (extra.isEmpty ? ["mode=1777"] : extra)))
                }
                resolved.append(mount)
            }
        } catch {
            // A refused mount leaves no anonymous volume made for this container.
            for name in anonymous { _ = try? volumeStore.remove(name, inUseBy: []) }
            throw error
        }
        return (result, copyUps, volumes, resolved)
    }

    /// The `U` option: the bind source (recursively) is given to the
    /// container's user, as the host sees that user.
    func chownForContainer(_ path: String, spec: Spec) throws(EngineError) {
        let uid = spec.process?.user.uid ?? 0
        let gid = spec.process?.user.gid ?? 0
        if rootless {
            let result = try? Subprocess.run("/proc/self/exe", arguments: ["berth", "unshare", "chown", "-R", "\(uid):\(gid)", "--", path],
                                             environment: Engine.environment(), captureStandardError: true)
            guard result?.status == .exited(0) else {
                throw EngineError(.failed, "chown \(path) to the container's user \(uid):\(gid): \(result?.standardError.trimmed ?? "failed")")
            }
        } else {
            let result = try? Subprocess.run("/bin/chown", arguments: ["chown", "-R", "\(uid):\(gid)", "--", path], environment: [], captureStandardError: true)
            guard result?.status == .exited(0) else {
                throw EngineError(.failed, "chown \(path) to the container's user \(uid):\(gid): \(result?.standardError.trimmed ?? "failed")")
            }
        }
    }
}

/// -v, --mount and --tmpfs, parsed.
package enum MountSpecs {
    package static func parse(volumes: [String], mounts: [String], tmpfs: [String]) throws(EngineError) -> [ContainerMount] {
        var result: [ContainerMount] = []
        for text in volumes { result.append(try volume(text)) }
        for text in mounts { result.append(try mount(text)) }
        for text in tmpfs {
            let parts = text.split(separator: ":", maxSplits: 1).map(String.init)
            guard let destination = parts.first, destination.hasPrefix("/") else {
                throw EngineError(.invalidArgument, "--tmpfs \"\(text)\": expected an absolute container path, then :OPTIONS")
            }
            let options = parts.count > 1 ? parts[1].split(separator: ",").map(String.init) : []
            result.append(ContainerMount(type: "tmpfs", source: "", destination: SpecBuilder.clean(destination),
                                         options: options, readOnly: options.contains("ro")))
        }
        return result
    }

    /// `-v [SOURCE:]DEST[:OPTIONS]`: SOURCE a host path (absolute, or ./…)
    /// for a bind, or a volume name; none: an anonymous volume.
    package static func volume(_ text: String) throws(EngineError) -> ContainerMount {
        let parts = text.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
        guard (1...3).contains(parts.count), !parts.contains(where: \.isEmpty) else {
            throw EngineError(.invalidArgument, "-v \"\(text)\": expected [SOURCE:]DESTINATION[:OPTIONS]")
        }
        if parts.count == 1 {
            guard parts[0].hasPrefix("/") else {
                throw EngineError(.invalidArgument, "-v \"\(text)\": the container path must be absolute")
            }
            return ContainerMount(type: "volume", source: "", destination: SpecBuilder.clean(parts[0]), anonymous: true)
        }
        let source = parts[0]
        let destination = parts[1]
        guard destination.hasPrefix("/") else {
            throw EngineError(.invalidArgument, "-v \"\(text)\": the container path \"\(destination)\" must be absolute")
        }
        let options = parts.count == 3 ? parts[2].split(separator: ",").map(String.init) : []
        let known: Set<String> = ["ro", "rw", "z", "Z", "U", "O", "nocopy", "shared", "rshared", "slave", "rslave", "private", "rprivate", "bind", "rbind"]
        if let unknown = options.first(where: { !known.contains($0) }) {
            throw EngineError(.invalidArgument, "-v \"\(text)\": unknown option \"\(unknown)\" (known: ro, rw, z, Z, U, O, nocopy and propagation)")
        }
        if options.contains("ro") && options.contains("rw") {
            throw EngineError(.invalidArgument, "-v \"\(text)\": ro and rw conflict")
        }
        let isPath = source.hasPrefix("/") || source.hasPrefix("./") || source.hasPrefix("../") || source == "." || source == ".."
        if options.contains("O") {
            // An overlay volume: the host directory is the lower layer of an
            // overlay whose changes are the container's own (see OverlayVolume).
            guard isPath else {
                throw EngineError(.invalidArgument, "-v \"\(text)\": O (an overlay volume) needs a host directory as SOURCE, not the volume \"\(source)\"")
            }
            if options.contains("ro") {
                throw EngineError(.invalidArgument, "-v \"\(text)\": O and ro conflict: an overlay volume is writable, its changes are discarded")
            }
            if let other = options.first(where: { !["O", "rw", "z", "Z"].contains($0) }) {
                throw EngineError(.invalidArgument, "-v \"\(text)\": O cannot be combined with \"\(other)\" (an overlay volume takes rw, z and Z)")
            }
            let host = Files.absolute(source)
            guard !host.contains(",") && !host.contains(":") && !host.contains("\\") else {
                throw EngineError(.invalidArgument, "-v \"\(text)\": an overlay volume's host directory \"\(host)\" cannot contain ',', ':' or '\\' (the overlay file system's option syntax)")
            }
            return ContainerMount(type: "overlay", source: host, destination: SpecBuilder.clean(destination), options: options)
        }
        if isPath {
            return ContainerMount(type: "bind", source: Files.absolute(source), destination: SpecBuilder.clean(destination),
                                  options: options, readOnly: options.contains("ro"))
        }
        try VolumeStore.validate(name: source)
        return ContainerMount(type: "volume", source: source, destination: SpecBuilder.clean(destination),
                              options: options, readOnly: options.contains("ro"))
    }

    /// `--mount type=bind|volume|tmpfs,source=…,target=…[,readonly][,…]`.
    package static func mount(_ text: String) throws(EngineError) -> ContainerMount {
        var fields: [String: String] = [:]
        var flags: Set<String> = []
        for item in text.split(separator: ",").map(String.init) {
            let parts = item.split(separator: "=", maxSplits: 1).map(String.init)
            if parts.count == 2 { fields[parts[0]] = parts[1] } else { flags.insert(parts[0]) }
        }
        let type = fields["type"] ?? "volume"
        guard let target = fields["target"] ?? fields["destination"] ?? fields["dst"], target.hasPrefix("/") else {
            throw EngineError(.invalidArgument, "--mount \"\(text)\": target=ABSOLUTE-PATH is required")
        }
        let source = fields["source"] ?? fields["src"] ?? ""
        let readOnly = flags.contains("readonly") || flags.contains("ro") || fields["readonly"] == "true" || fields["ro"] == "true"
        switch type {
        case "bind":
            guard !source.isEmpty else { throw EngineError(.invalidArgument, "--mount \"\(text)\": a bind needs source=HOST-PATH") }
            var options: [String] = []
            if let propagation = fields["bind-propagation"] { options.append(propagation) }
            return ContainerMount(type: "bind", source: Files.absolute(source), destination: SpecBuilder.clean(target), options: options, readOnly: readOnly)
        case "volume":
            if !source.isEmpty { try VolumeStore.validate(name: source) }
            let options = flags.contains("volume-nocopy") ? ["nocopy"] : []
            return ContainerMount(type: "volume", source: source, destination: SpecBuilder.clean(target), options: options,
                                  readOnly: readOnly, anonymous: source.isEmpty)
        case "tmpfs":
            var options: [String] = []
            if let size = fields["tmpfs-size"] {
                guard let bytes = ResourceFlags.parseBytes(size), bytes > 0 else {
                    throw EngineError(.invalidArgument, "--mount \"\(text)\": tmpfs-size \"\(size)\" is not a size")
                }
                options.append("size=\(bytes)")
            }
            if let mode = fields["tmpfs-mode"] {
                guard UInt32(mode, radix: 8) != nil else {
                    throw EngineError(.invalidArgument, "--mount \"\(text)\": tmpfs-mode \"\(mode)\" is not an octal mode")
                }
                options.append("mode=\(mode)")
            }
            return ContainerMount(type: "tmpfs", source: "", destination: SpecBuilder.clean(target), options: options, readOnly: readOnly)
        default:
            throw EngineError(.invalidArgument, "--mount \"\(text)\": type must be bind, volume or tmpfs")
        }
    }
}

/// Reads a file of an image from its layer directories (topmost first):
/// the first layer that has it wins, a whiteout hides it. Each layer is
/// walked as a root of its own, so no link leads out of it.
package enum LayerFiles {
    package static func read(_ path: String, layers: [String], limit: Int = 4 << 20) -> [UInt8]? {
        for layer in layers {
            guard let root = try? SecureRoot(path: layer) else { continue }
            defer { root.close() }
            if let found = try? root.open(path, BERTH_O_PATH) {
                var st = stat()
                let ok = fstat(found.rawValue, &st) == 0
                found.close()
                guard ok else { return nil }
                if (st.st_mode & S_IFMT) == S_IFCHR && st.st_rdev == 0 { return nil } // whiteout
                guard (st.st_mode & S_IFMT) == S_IFREG, st.st_size <= limit,
                      let fd = try? root.open(path, O_RDONLY | O_NONBLOCK) else { return nil }
                defer { fd.close() }
                return try? fd.readAll()
            }
        }
        return nil
    }
}

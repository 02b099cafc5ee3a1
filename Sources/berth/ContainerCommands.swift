#if canImport(Glibc)
import Glibc
#endif
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import ArgumentParser
import BerthEngine
import BerthImage
import BerthOCI
import BerthOS
import BerthRuntime

/// The engine as the commands see it: the store (--root), the runtime
/// state (--runroot).
enum EngineContext {
    static var engine: Engine {
        var engine = Engine(store: ImageContext.store, runtime: RuntimePaths(root: globalOptions.runroot), rootless: ImageContext.rootless)
        engine.cgroupMode = globalOptions.cgroups
        return engine
    }

    static func lookup(_ name: String) throws -> Container { try engine.lookup(name) }
}

/// Thrown to leave with a container's (or podman's) exit code after a message.
struct CommandFailure: Error {
    let code: Int32
    let message: String
}

/// run and create: podman's flags.
struct ContainerCreateFlags: ParsableArguments {
    @Flag(name: .shortAndLong, help: "Run in the background and print the container id.") var detach = false
    @Flag(help: "Remove the container when it exits.") var rm = false
    @Option(help: "Name of the container.") var name: String?
    @Option(name: .shortAndLong, help: "Set an environment variable: KEY=VALUE, or KEY to pass berth's.") var env: [String] = []
    @Option(name: .customLong("env-file"), help: "Read KEY=VALUE lines from a file.") var envFile: [String] = []
    @Flag(name: .shortAndLong, help: "Keep standard input open.") var interactive = false
    @Flag(name: .shortAndLong, help: "Allocate a pseudo-terminal.") var tty = false
    @Option(name: .shortAndLong, help: "USER[:GROUP], names or numbers.") var user: String?
    @Option(name: .shortAndLong, help: "Working directory inside the container.") var workdir: String?
    @Option(help: "Override the image's entrypoint (\"\" clears it).") var entrypoint: String?
    @Option(help: "Container host name (default: the short id).") var hostname: String?
    @Flag(name: .customLong("read-only"), help: "Mount the root file system read-only.") var readOnly = false
    @Flag(help: "Run berth as a tiny init (pid 1) that forwards signals and reaps zombies.") var `init` = false
    @Option(help: "Mount a tmpfs: PATH[:OPTIONS].") var tmpfs: [String] = []
    @Option(name: [.short, .customLong("volume")], help: "Bind or volume mount: [SOURCE:]DEST[:ro|rw|z|Z|U|nocopy].") var volume: [String] = []
    @Option(help: "Mount: type=bind|volume|tmpfs,source=…,target=…[,readonly].") var mount: [String] = []
    @Option(name: [.short, .customLong("label")], help: "Set a label KEY=VALUE.") var label: [String] = []
    @Option(name: .customLong("stop-signal"), help: "Signal that stops the container (default: the image's, or SIGTERM).") var stopSignal: String?
    @Option(name: .customLong("stop-timeout"), help: "Seconds to wait after the stop signal before SIGKILL (default 10).") var stopTimeout: Int?
    @Option(help: "cgroups: enabled (a group per container), disabled, split (under berth's own delegated group, as in a Delegate=yes unit), no-conmon (= enabled).") var cgroups: String?
    @Option(help: "Seconds the container may run: then the stop signal, SIGKILL after --stop-timeout; a foreground run exits 124 (default 0: no limit).") var timeout: Int?
    @Option(help: "$NOTIFY_SOCKET: container (default: the container gets a proxy socket), conmon (READY=1 once it runs), healthy (READY=1 once its check passes) or ignore.") var sdnotify: String?
    @Option(name: .customLong("health-cmd"), help: "Health check: a shell command, a JSON array, or none.") var healthCmd: String?
    @Option(name: .customLong("health-interval"), help: "Time between checks (default 30s), or disable.") var healthInterval: String?
    @Option(name: .customLong("health-retries"), help: "Failed checks in a row that make it unhealthy (default 3).") var healthRetries: String?
    @Option(name: .customLong("health-start-period"), help: "Time after the start when failed checks do not count (default 0s).") var healthStartPeriod: String?
    @Option(name: .customLong("health-timeout"), help: "Time a check may take (default 30s).") var healthTimeout: String?
    @Flag(name: .customLong("no-healthcheck"), help: "No health check, not even the image's.") var noHealthcheck = false
    @Option(help: "Pull the image: always, missing (default) or never.") var pull: String = "missing"
    @Option(name: .customLong("tls-verify"), help: "For a pull: require HTTPS with a verified certificate.") var tlsVerify: Bool?
    @Option(help: "For a pull: OS/ARCH[/VARIANT].") var platform: String?
    @Option(help: "For a pull: USER[:PASSWORD].") var creds: String?
    @Option(name: .customLong("cap-add"), help: "Add a capability.") var capAdd: [String] = []
    @Option(name: .customLong("cap-drop"), help: "Drop a capability (ALL for every one).") var capDrop: [String] = []
    @Flag(help: "All capabilities, no seccomp filter, no masked paths, all devices allowed.") var privileged = false
    @Option(name: .customLong("security-opt"), help: "no-new-privileges, seccomp=unconfined|PROFILE.json.") var securityOpt: [String] = []
    @Option(name: .shortAndLong, help: "Memory limit, such as 512m.") var memory: String?
    @Option(help: "CPU limit, such as 1.5.") var cpus: String?
    @Option(name: .customLong("pids-limit"), help: "Limit on the number of processes.") var pidsLimit: String?
    @Option(help: "Resource limit NAME=SOFT[:HARD], such as nofile=1024:2048.") var ulimit: [String] = []
    @Option(help: "User namespace: keep-id (rootless: your uid inside too).") var userns: String?
    @Option(name: [.customLong("network"), .customLong("net")],
            help: "bridge (root's default), NETWORK[,NETWORK], pasta[:OPTIONS] (rootless default), slirp4netns, none, host, container:NAME or ns:PATH.")
    var network: [String] = []
    @Option(name: .customLong("ip"), help: "IPv4 address on the (first) bridge network.") var ip: String?
    @Option(name: .customLong("mac-address"), help: "MAC address on the (first) bridge network.") var macAddress: String?
    @Option(name: .customLong("network-alias"), help: "Another DNS name on user networks.") var networkAlias: [String] = []
    @Option(help: "DNS server for /etc/resolv.conf.") var dns: [String] = []
    @Option(name: .customLong("dns-search"), help: "DNS search domain (. for none).") var dnsSearch: [String] = []
    @Option(name: .customLong("dns-option"), help: "Option line for /etc/resolv.conf.") var dnsOption: [String] = []
    @Option(name: .customLong("add-host"), help: "HOST:IP line for /etc/hosts.") var addHost: [String] = []
    @Option(name: [.short, .customLong("publish")], help: "Publish a port: [HOSTIP:][HOSTPORT:]CONTAINERPORT[/tcp|udp].") var publish: [String] = []
    @Flag(name: [.customShort("P"), .customLong("publish-all")], help: "Publish every exposed port on a random host port.") var publishAll = false
    @Option(help: "Expose a port (or range) for -P: PORT[/PROTOCOL].") var expose: [String] = []
    @Option(help: "Write the container id to this file.") var cidfile: String?
    @Flag(help: "Replace a container of the same --name.") var replace = false
    @Option(help: "Restart policy: no, on-failure[:N], always, unless-stopped.") var restart: String = "no"
    @Option(name: .customLong("log-opt"), help: "Log option: max-size=SIZE (k8s-file: rotates), tag=TAG (journald).") var logOpt: [String] = []
    @Option(name: .customLong("log-driver"), help: "Where the output goes: k8s-file (default), journald, passthrough, passthrough-tty or none.") var logDriver: String?
    @Argument(help: "The image.") var image: String
    @Argument(parsing: .captureForPassthrough, help: "Command and arguments (default: the image's).") var command: [String] = []

    /// The parsed flags as the engine's request.
    func request() -> CreateRequest {
        var options = CreateOptions()
        options.name = name
        options.image = image
        options.command = command.first == "--" ? Array(command.dropFirst()) : command
        options.entrypoint = entrypoint
        options.env = env
        options.workdir = workdir
        options.user = user
        options.hostname = hostname
        options.readOnly = readOnly
        options.tty = tty
        options.interactive = interactive
        options.initProcess = `init`
        options.tmpfs = tmpfs
        options.volumes = volume
        options.mounts = mount
        options.labels = label
        options.stopSignal = stopSignal
        options.stopTimeout = stopTimeout
        options.timeout = timeout
        options.cgroups = cgroups
        options.sdnotify = sdnotify
        options.health.command = healthCmd
        options.health.interval = healthInterval
        options.health.retries = healthRetries
        options.health.startPeriod = healthStartPeriod
        options.health.timeout = healthTimeout
        options.health.disabled = noHealthcheck
        options.capAdd = capAdd
        options.capDrop = capDrop
        options.privileged = privileged
        options.securityOpts = securityOpt
        options.memory = memory
        options.cpus = cpus
        options.pidsLimit = pidsLimit
        options.ulimits = ulimit
        options.userns = userns
        options.networks = network
        options.ip = ip
        options.mac = macAddress
        options.aliases = networkAlias
        options.dns = dns
        options.dnsSearch = dnsSearch
        options.dnsOptions = dnsOption
        options.addHosts = addHost
        options.publish = publish
        options.publishAll = publishAll
        options.expose = expose
        options.restart = restart
        options.autoRemove = rm
        options.logOpts = logOpt
        options.logDriver = logDriver
        var request = CreateRequest(options: options)
        request.detach = detach
        request.envFiles = envFile
        request.pull = pull
        request.tlsVerify = tlsVerify
        request.platform = platform
        request.creds = creds
        request.cidfile = cidfile
        request.replace = replace
        return request
    }
}

/// What `run`/`create` were asked, however the command line was read
/// (swift-argument-parser, or `CreateRequest.scan` on the hot path).
struct CreateRequest {
    var options: CreateOptions
    var detach = false
    var envFiles: [String] = []
    var pull = "missing"
    var tlsVerify: Bool? = nil
    var platform: String? = nil
    var creds: String? = nil
    var cidfile: String? = nil
    var replace = false

    /// The run/create command line without swift-argument-parser (whose
    /// parser costs ~2 ms per run here): flags then IMAGE then the command.
    /// Nil for anything it does not know (combined short flags, help,
    /// unknown flags), which then goes to the full parser and its messages.
    static func scan(_ arguments: [String]) -> CreateRequest? {
        let valued: Set<String> = [
            "name", "e", "env", "env-file", "u", "user", "w", "workdir", "entrypoint", "hostname", "tmpfs", "v", "volume",
            "mount", "l", "label", "stop-signal", "stop-timeout", "timeout", "cgroups", "pull", "tls-verify", "platform", "creds", "cap-add", "cap-drop",
            "security-opt", "m", "memory", "cpus", "pids-limit", "ulimit", "userns", "network", "net", "cidfile", "restart", "log-opt", "log-driver",
            "ip", "mac-address", "network-alias", "dns", "dns-search", "dns-option", "add-host", "p", "publish", "expose",
            "sdnotify", "health-cmd", "health-interval", "health-retries", "health-start-period", "health-timeout",
        ]
        let switches: Set<String> = ["d", "detach", "rm", "i", "interactive", "t", "tty", "read-only", "init", "privileged", "replace",
                                     "P", "publish-all", "no-healthcheck"]
        var scanner = FlagScanner(arguments)
        guard let flags = scanner.scan(valued: valued, switches: switches, stopAtFirstPositional: true),
              let image = scanner.positional.first else { return nil }
        var options = CreateOptions()
        options.image = image
        options.command = Array(scanner.positional.dropFirst())
        if options.command.first == "--" { options.command.removeFirst() }
        options.name = flags.value("name")
        options.entrypoint = flags.value("entrypoint")
        options.env = flags.values("e", "env")
        options.workdir = flags.value("w", "workdir")
        options.user = flags.value("u", "user")
        options.hostname = flags.value("hostname")
        options.readOnly = flags.has("read-only")
        options.tty = flags.has("t", "tty")
        options.interactive = flags.has("i", "interactive")
        options.initProcess = flags.has("init")
        options.tmpfs = flags.values("tmpfs")
        options.volumes = flags.values("v", "volume")
        options.mounts = flags.values("mount")
        options.labels = flags.values("l", "label")
        options.stopSignal = flags.value("stop-signal")
        if let timeout = flags.value("stop-timeout") {
            guard let seconds = Int(timeout) else { return nil }
            options.stopTimeout = seconds
        }
        options.cgroups = flags.value("cgroups")
        if let timeout = flags.value("timeout") {
            guard let seconds = Int(timeout) else { return nil }
            options.timeout = seconds
        }
        options.sdnotify = flags.value("sdnotify")
        options.health.command = flags.value("health-cmd")
        options.health.interval = flags.value("health-interval")
        options.health.retries = flags.value("health-retries")
        options.health.startPeriod = flags.value("health-start-period")
        options.health.timeout = flags.value("health-timeout")
        options.health.disabled = flags.has("no-healthcheck")
        options.capAdd = flags.values("cap-add")
        options.capDrop = flags.values("cap-drop")
        options.privileged = flags.has("privileged")
        options.securityOpts = flags.values("security-opt")
        options.memory = flags.value("m", "memory")
        options.cpus = flags.value("cpus")
        options.pidsLimit = flags.value("pids-limit")
        options.ulimits = flags.values("ulimit")
        options.userns = flags.value("userns")
        options.networks = flags.values("network", "net")
        options.ip = flags.value("ip")
        options.mac = flags.value("mac-address")
        options.aliases = flags.values("network-alias")
        options.dns = flags.values("dns")
        options.dnsSearch = flags.values("dns-search")
        options.dnsOptions = flags.values("dns-option")
        options.addHosts = flags.values("add-host")
        options.publish = flags.values("p", "publish")
        options.publishAll = flags.has("P", "publish-all")
        options.expose = flags.values("expose")
        options.restart = flags.value("restart") ?? "no"
        options.autoRemove = flags.has("rm")
        options.logOpts = flags.values("log-opt")
        options.logDriver = flags.value("log-driver")
        var request = CreateRequest(options: options)
        request.detach = flags.has("d", "detach")
        request.envFiles = flags.values("env-file")
        request.pull = flags.value("pull") ?? "missing"
        if let tls = flags.value("tls-verify") {
            guard let value = Bool(tls) else { return nil }
            request.tlsVerify = value
        }
        request.platform = flags.value("platform")
        request.creds = flags.value("creds")
        request.cidfile = flags.value("cidfile")
        request.replace = flags.has("replace")
        return request
    }

    /// --env-file lines come before -e, as podman reads them.
    func resolvedOptions() throws -> CreateOptions {
        var resolved = options
        var fromFiles: [String] = []
        for file in envFiles {
            guard let text = try? Files.readString(file) else {
                throw CommandFailure(code: 125, message: "--env-file \(file): cannot read it")
            }
            for line in text.split(separator: "\n") {
                let trimmed = line.trimmingCharacters(in: " ")
                if trimmed.isEmpty || trimmed.hasPrefix("#") { continue }
                fromFiles.append(trimmed)
            }
        }
        resolved.env = fromFiles + options.env
        return resolved
    }

    /// The image, pulled first if --pull says so (by a child berth: a
    /// rootless pull needs the store's user namespace).
    func resolveImage() throws -> (ImageRecord, ImageConfiguration) {
        guard ["always", "missing", "never"].contains(pull) else {
            throw CommandFailure(code: 125, message: "--pull \"\(pull)\": expected always, missing or never")
        }
        let image = options.image
        var record = try? ImageContext.lookup(image)
        if pull == "always" || (record == nil && pull == "missing") {
            var arguments = ["berth"]
            if let root = globalOptions.root { arguments += ["--root", root] }
            arguments += ["pull"]
            if let tlsVerify { arguments += ["--tls-verify=\(tlsVerify)"] }
            if let platform { arguments += ["--platform", platform] }
            if let creds { arguments += ["--creds", creds] }
            arguments += [options.image]
            let result = try Subprocess.run("/proc/self/exe", arguments: arguments, environment: Engine.environment())
            guard result.status == .exited(0) else { throw ExitCode_(code: 125) }
            record = try ImageContext.lookup(image)
        }
        guard let record else {
            throw CommandFailure(code: 125, message: "\(image): image not known (--pull never)")
        }
        let bytes = try ImageContext.store.readBlob(record.id)
        guard let config = try? JSONDecoder().decode(ImageConfiguration.self, from: Data(bytes)) else {
            throw CommandFailure(code: 125, message: "image \(record.id.short) has an invalid config")
        }
        return (record, config)
    }

    /// Creates the container (after --replace and --cidfile checks).
    func create() throws -> Container {
        let engine = EngineContext.engine
        if let cidfile, Files.exists(cidfile) {
            throw CommandFailure(code: 125, message: "--cidfile \(cidfile) already exists: remove it or choose another file")
        }
        if replace {
            guard let name = options.name else { throw CommandFailure(code: 125, message: "--replace needs --name") }
            if let existing = try? engine.containers.lookup(name), existing.name == name {
                try engine.remove(existing, force: true, volumes: true)
            }
        }
        let (record, config) = try resolveImage()
        let container = try engine.create(try resolvedOptions(), image: record, imageConfig: config)
        if let cidfile {
            do { try Files.writeAtomically(cidfile, Array(container.id.utf8), mode: 0o644) } catch {
                try? engine.remove(container, force: true, volumes: true)
                throw CommandFailure(code: 125, message: "--cidfile \(cidfile): \(error)")
            }
        }
        return container
    }
}

struct EngineRunCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "run", abstract: "Run a command in a new container from an image.")
    @OptionGroup var flags: ContainerCreateFlags

    func run() throws { try Self.run(flags.request()) }

    static func run(_ request: CreateRequest) throws {
        let container = try request.create()
        let engine = EngineContext.engine
        do {
            if request.detach {
                try engine.startDetached(container)
                // As podman: with passthrough this stdout is the container's output, not for its id.
                if !container.config.loggingDriver.isPassthrough { printOut(container.id) }
                return
            }
            let code = try engine.runForeground(container)
            if code != 0 { throw ExitCode_(code: code) }
        } catch let error as Engine.StartError {
            if request.options.autoRemove { try? engine.remove(engine.containers.load(container.id) ?? container, force: true, volumes: true) }
            throw CommandFailure(code: error.code, message: error.message)
        }
    }
}

struct EngineCreateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "create", abstract: "Create a container from an image; start runs it.")
    @OptionGroup var flags: ContainerCreateFlags

    func run() throws { try Self.run(flags.request()) }

    static func run(_ request: CreateRequest) throws {
        printOut(try request.create().id)
    }
}

struct EngineStartCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "start", abstract: "Start created or stopped containers.")
    @Flag(name: .shortAndLong, help: "Attach: run in the foreground, with the container's output and exit code.") var attach = false
    @Flag(name: .shortAndLong, help: "Keep standard input attached (with --attach).") var interactive = false
    @Argument(help: "Containers (name or id).") var containers: [String]

    func validate() throws {
        if attach && containers.count > 1 { throw ValidationError("--attach takes one container") }
        if containers.isEmpty { throw ValidationError("start needs at least one container") }
    }

    func run() throws {
        let engine = EngineContext.engine
        var failure: CommandFailure? = nil
        for name in containers {
            do {
                let container = try engine.lookup(name)
                if attach {
                    let code = try engine.runForeground(container)
                    if code != 0 { throw ExitCode_(code: code) }
                    return
                }
                if container.state.status == "running" { printOut(name); continue }
                try engine.startDetached(container)
                printOut(name)
            } catch let error as Engine.StartError {
                failure = CommandFailure(code: error.code, message: error.message)
                globalOptions.report(error.message)
            } catch let error as EngineError {
                failure = CommandFailure(code: 125, message: error.message)
                globalOptions.report(error.message)
            }
        }
        if let failure { throw ExitCode_(code: failure.code) }
    }
}

/// Runs `body` for each named container, reporting each failure and
/// exiting 125 (podman: 1 for "no such container", berth keeps 125) after all.
func forEachContainer(_ names: [String], _ body: (Container) throws -> Void) throws {
    var failed = false
    for name in names {
        do {
            try body(try EngineContext.lookup(name))
        } catch let error as EngineError {
            globalOptions.report(error.message)
            failed = true
        }
    }
    if failed { throw ExitCode_(code: 125) }
}

func allOrNamed(_ all: Bool, _ names: [String]) throws -> [String] {
    if all { return EngineContext.engine.containers.list().map(\.id) }
    guard !names.isEmpty else { throw CommandFailure(code: 125, message: "give at least one container, or --all") }
    return names
}

struct StopCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "stop", abstract: "Stop running containers: the stop signal, then SIGKILL after the timeout.")
    @Option(name: [.short, .customLong("time"), .customLong("timeout")], help: "Seconds to wait before SIGKILL (default: the container's stop timeout, 10).") var time: Int?
    @Flag(name: .shortAndLong, help: "Stop every running container.") var all = false
    @Argument(help: "Containers (name or id).") var containers: [String] = []

    func run() throws {
        let names = try allOrNamed(all, containers)
        try forEachContainer(names) { container in
            try EngineContext.engine.stop(container, timeout: time)
            printOut(all ? container.id : names.first { $0 == container.name || container.id.hasPrefix($0) } ?? container.id)
        }
    }
}

struct EngineKillCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "kill", abstract: "Send a signal (default SIGKILL) to running containers.")
    @Option(name: .shortAndLong, help: "Signal name or number.") var signal: String = "SIGKILL"
    @Flag(name: .shortAndLong, help: "Every running container.") var all = false
    @Argument(help: "Containers (name or id).") var containers: [String] = []

    func run() throws {
        guard let number = SignalName.parse(signal) else {
            throw CommandFailure(code: 125, message: "invalid signal \"\(signal)\"")
        }
        let engine = EngineContext.engine
        let names = all ? engine.list(all: false).map(\.id) : try allOrNamed(false, containers)
        try forEachContainer(names) { container in
            try engine.kill(container, signal: number)
            printOut(names.first { $0 == container.name } ?? container.id)
        }
    }
}

struct RestartCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "restart", abstract: "Stop (if running) and start containers again.")
    @Option(name: [.short, .customLong("time")], help: "Seconds to wait before SIGKILL.") var time: Int?
    @Argument(help: "Containers (name or id).") var containers: [String]

    func run() throws {
        let engine = EngineContext.engine
        try forEachContainer(containers) { container in
            try engine.stop(container, timeout: time)
            do {
                try engine.startDetached(try engine.lookup(container.id))
            } catch let error as Engine.StartError {
                throw CommandFailure(code: error.code, message: error.message)
            }
            printOut(container.id)
        }
    }
}

struct RmCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "rm", abstract: "Remove containers.")
    @Flag(name: .shortAndLong, help: "Kill running containers first.") var force = false
    @Flag(name: .shortAndLong, help: "Remove the containers' anonymous volumes too.") var volumes = false
    @Flag(name: .shortAndLong, help: "Every container.") var all = false
    @Argument(help: "Containers (name or id).") var containers: [String] = []

    func run() throws {
        let names = try allOrNamed(all, containers)
        let engine = EngineContext.engine
        var failed = false
        for name in names {
            do {
                let container = try engine.lookup(name)
                try engine.remove(container, force: force, volumes: volumes)
                printOut(all ? container.id : name)
            } catch {
                // rm -f of a container that does not exist is not an error (as podman).
                if force && error.kind == .notFound { continue }
                globalOptions.report(error.message)
                failed = true
            }
        }
        if failed { throw ExitCode_(code: 125) }
    }
}

struct WaitCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "wait", abstract: "Wait for containers to exit and print their exit codes.")
    @Argument(help: "Containers (name or id).") var containers: [String]

    func run() throws {
        let engine = EngineContext.engine
        try forEachContainer(containers) { container in
            guard let done = engine.waitForExit(container) else {
                printOut("-1") // removed (--rm) before its code could be read
                return
            }
            printOut(done.state.exitCode.map(String.init) ?? "-1")
        }
    }
}

struct RenameCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "rename", abstract: "Rename a container.")
    @Argument(help: "The container (name or id).") var container: String
    @Argument(help: "Its new name.") var newName: String

    func run() throws {
        let engine = EngineContext.engine
        try ContainerStore.validate(name: newName)
        let found = try engine.lookup(container)
        try engine.containers.locked { () throws(EngineError) in
            if let other = engine.containers.list().first(where: { $0.name == newName }), other.id != found.id {
                throw EngineError(.exists, "the container name \"\(newName)\" is already in use by \(other.shortID)")
            }
            guard var record = engine.containers.load(found.id) else {
                throw EngineError(.notFound, "no container with name or ID \"\(container)\" found")
            }
            record.name = newName
            try engine.containers.save(record)
        }
    }
}

struct PortCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "port", abstract: "List a container's published ports.")
    @Argument(help: "The container (name or id).") var container: String
    @Argument(help: "PORT[/PROTO] to show.") var port: String?

    func run() throws {
        let record = try EngineContext.lookup(container)
        let singles = record.config.ports.flatMap(\.singles)
        func host(_ mapping: PortMapping) -> String {
            let ip = mapping.hostIP.isEmpty ? "0.0.0.0" : (mapping.hostIP.contains(":") ? "[\(mapping.hostIP)]" : mapping.hostIP)
            return "\(ip):\(mapping.hostPort)"
        }
        guard let port else {
            for mapping in singles { print("\(mapping.containerPort)/\(mapping.proto) -> \(host(mapping))") }
            return
        }
        let parts = port.split(separator: "/")
        let proto = parts.count > 1 ? String(parts[1]) : "tcp"
        guard let number = UInt16(parts.first ?? ""),
              case let found = singles.filter({ $0.containerPort == number && $0.proto == proto }), !found.isEmpty else {
            throw CommandFailure(code: 125, message: "no public port \(port.contains("/") ? port : port + "/tcp") published for \(container)")
        }
        for mapping in found { print(host(mapping)) }
    }
}

struct EnginePsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "ps", abstract: "List containers.", aliases: ["ls", "list"])
    @Flag(name: .shortAndLong, help: "All containers (default: running ones).") var all = false
    @Flag(name: .shortAndLong, help: "Only ids.") var quiet = false
    @Flag(name: .customLong("no-trunc"), help: "Full ids and commands.") var noTrunc = false
    @Flag(name: .shortAndLong, help: "The latest created container only.") var latest = false
    @Option(name: .shortAndLong, help: "Filter: id=, name=, status=, label=KEY[=VALUE], exited=CODE, ancestor=IMAGE.") var filter: [String] = []
    @Option(help: "json, table, or a Go template ({{.ID}} {{.Names}} {{.Status}} …).") var format: String?

    func run() throws {
        let engine = EngineContext.engine
        var list = engine.list(all: all || !filter.isEmpty || latest)
        for item in filter {
            let parts = item.split(separator: "=", maxSplits: 1).map(String.init)
            guard parts.count == 2 else { throw CommandFailure(code: 125, message: "--filter \"\(item)\": expected KEY=VALUE") }
            let value = parts[1]
            switch parts[0] {
            case "id": list = list.filter { $0.id.hasPrefix(value) }
            case "name": list = list.filter { $0.name.contains(value) }
            case "status":
                let known = ["created", "running", "restarting", "exited", "paused", "removing"]
                guard known.contains(value) else {
                    throw CommandFailure(code: 125, message: "--filter status=\(value): expected one of \(known.joined(separator: ", "))")
                }
                list = list.filter { $0.state.status == value }
            case "label":
                let kv = value.split(separator: "=", maxSplits: 1).map(String.init)
                list = list.filter { kv.count == 2 ? $0.config.labels[kv[0]] == kv[1] : $0.config.labels[kv[0]] != nil }
            case "exited":
                guard let code = Int32(value) else { throw CommandFailure(code: 125, message: "--filter exited=\(value): expected an exit code") }
                list = list.filter { $0.state.status == "exited" && $0.state.exitCode == code }
            case "ancestor":
                list = list.filter { $0.image == value || $0.imageID.hasPrefix(value) || $0.imageID.dropFirst(7).hasPrefix(value) }
            default:
                throw CommandFailure(code: 125, message: "--filter \"\(item)\": berth filters by id, name, status, label, exited and ancestor")
            }
        }
        if latest, let last = list.last { list = [last] }
        if quiet {
            for container in list { printOut(noTrunc ? container.id : container.shortID) }
            return
        }
        let now = Timestamps.nowSeconds()
        let rows: [OutputFormat.Row] = list.reversed().map { container in
            var command = container.config.command.joined(separator: " ")
            if !noTrunc && command.count > 20 { command = String(command.prefix(17)) + "..." }
            return [
                ("ID", .string(noTrunc || format == "json" ? container.id : container.shortID)),
                ("Image", .string(container.image)),
                ("Command", .string(format == "json" ? container.config.command.joined(separator: " ") : "\"\(command)\"")),
                ("CreatedAt", .string(container.created)),
                ("Created", .string(humanSince(container.created))),
                ("Status", .string(container.statusText(now: now))),
                ("Ports", .string(container.config.ports.map(\.display).joined(separator: ", "))),
                ("Names", .string(container.name)),
                ("State", .string(container.state.status)),
                ("ExitCode", container.state.exitCode.map { .integer(Int64($0)) } ?? .null),
                ("Pid", .integer(Int64(container.state.pid))),
                ("Labels", .of(container.config.labels)),
                ("Mounts", .array(container.config.mounts.map { .string($0.destination) })),
                ("ImageID", .string(container.imageID)),
            ]
        }
        let header = ["ID": "CONTAINER ID", "Image": "IMAGE", "Command": "COMMAND", "Created": "CREATED", "CreatedAt": "CREATED AT",
                      "Status": "STATUS", "Ports": "PORTS", "Names": "NAMES", "State": "STATE", "ExitCode": "EXIT CODE"]
        do {
            let text = try OutputFormat.render(format, rows: rows, defaultTemplate: "{{.ID}}\t{{.Image}}\t{{.Command}}\t{{.Created}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}", header: header)
            if !text.isEmpty { printOut(text) }
        } catch {
            throw CommandFailure(code: 125, message: error.message)
        }
    }
}

struct InspectCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "inspect", abstract: "Show containers' or images' details as JSON.")
    @Option(name: .shortAndLong, help: "A Go template ({{.State.Status}}, {{json .Config}}) or json.") var format: String?
    @Option(name: .customLong("type"), help: "container, image, or all (default: containers first, then images).") var type: String = "all"
    @Flag(name: .shortAndLong, help: "Add the size of the container's changes.") var size = false
    @Argument(help: "Containers or images (name or id).") var names: [String]

    func run() throws {
        guard ["all", "container", "image"].contains(type) else {
            throw CommandFailure(code: 125, message: "--type \"\(type)\": expected container, image or all")
        }
        var rows: [OutputFormat.Row] = []
        var failed = false
        for name in names {
            if type != "image", let container = try? EngineContext.lookup(name) {
                rows.append(ContainerDetails.inspect(container, engine: EngineContext.engine, size: size))
                continue
            }
            if type != "container", let image = try? ImageContext.lookup(name), let row = try? ImageDetails.inspect(image, store: ImageContext.store) {
                rows.append(row)
                continue
            }
            globalOptions.report("no such \(type == "all" ? "object" : type): \"\(name)\"")
            failed = true
        }
        try printInspect(rows, format: format)
        if failed { throw ExitCode_(code: 125) }
    }
}

func printInspect(_ rows: [OutputFormat.Row], format: String?) throws {
    if let format, format != "json" {
        do {
            let text = try OutputFormat.render(format, rows: rows, defaultTemplate: "", header: [:])
            if !text.isEmpty { printOut(text) }
        } catch {
            throw CommandFailure(code: 125, message: error.message)
        }
    } else {
        printOut(JSONValue.array(rows.map(OutputFormat.object)).jsonText(pretty: true))
    }
}

enum ContainerDetails {
    /// docker-like `inspect` JSON for a container.
    static func inspect(_ container: Container, engine: Engine, size: Bool) -> OutputFormat.Row {
        let state = container.state
        let running = state.status == "running"
        var stateObject: [String: JSONValue] = [
            "Status": .string(state.status), "Running": .bool(running), "Paused": .bool(state.status == "paused"),
            "Restarting": .bool(false), "OOMKilled": .bool(state.oomKilled), "Dead": .bool(false),
            "Pid": .integer(Int64(running ? state.pid : 0)), "ExitCode": .integer(Int64(state.exitCode ?? -1)),
            "Error": .string(state.error ?? ""), "StartedAt": .string(state.startedAt ?? "0001-01-01T00:00:00Z"),
            "FinishedAt": .string(state.finishedAt ?? "0001-01-01T00:00:00Z"),
            "ConmonPid": .integer(Int64(running ? state.monitorPid : 0)),
        ]
        if state.status == "exited" && state.exitCode == nil { stateObject["ExitCodeUnknown"] = .bool(true) }
        if container.config.healthcheck != nil { stateObject["Health"] = .of(state.health ?? HealthState(status: "")) }
        let config = container.config
        let mounts: [JSONValue] = config.mounts.map { mount in
            var object: [String: JSONValue] = [
                "Type": .string(mount.type), "Destination": .string(mount.destination), "RW": .bool(!mount.readOnly),
                "Mode": .string(mount.options.filter { $0 == "z" || $0 == "Z" }.joined(separator: ",")),
                "Propagation": .string(mount.options.first { $0.hasSuffix("shared") || $0.hasSuffix("slave") || $0.hasSuffix("private") } ?? (mount.type == "tmpfs" || mount.type == "overlay" ? "" : "rprivate")),
                "Options": .of(mount.options),
            ]
            switch mount.type {
            case "volume":
                object["Name"] = .string(mount.source)
                object["Source"] = .string(engine.volumes.dataPath(mount.source))
                object["Driver"] = .string("local")
            case "bind", "overlay":
                object["Source"] = .string(mount.source)
            default:
                object["Source"] = .string("tmpfs")
            }
            return .object(object)
        }
        // Only k8s-file has a file (podman's LogPath is empty for the others).
        let logPath = config.loggingDriver == .k8sFile ? engine.containers.logPath(container.id) : ""
        var row: OutputFormat.Row = [
            ("Id", .string(container.id)),
            ("Created", .string(container.created)),
            ("Path", .string(config.command.first ?? "")),
            ("Args", .of(Array(config.command.dropFirst()))),
            ("State", .object(stateObject)),
            ("Image", .string(container.imageID)),
            ("ImageName", .string(container.image)),
            ("Name", .string(container.name)),
            ("RestartCount", .integer(Int64(container.restartCount))),
            ("Driver", .string(RootfsDriver.detect(rootless: engine.rootless, upperOn: engine.containers.path(container.id)).rawValue)),
            ("LogPath", .string(logPath)),
            ("Mounts", .array(mounts)),
            ("Config", .object([
                "Hostname": .string(config.hostname), "User": .string(config.user), "Env": .of(config.env),
                "Cmd": .of(config.cmd), "Entrypoint": .of(config.entrypoint), "WorkingDir": .string(config.workingDir),
                "Labels": .of(config.labels), "StopSignal": .string(config.stopSignal), "StopTimeout": .integer(Int64(config.stopTimeout)), "Timeout": .integer(Int64(config.timeout ?? 0)),
                "Tty": .bool(config.tty), "OpenStdin": .bool(config.interactive), "Image": .string(container.image),
                "SdNotifyMode": .string(config.sdNotifyMode ?? "container"), "SdNotifySocket": .string(config.sdNotifySocket ?? ""),
                "Healthcheck": config.healthcheck.map { .of($0) } ?? .null,
                "ExposedPorts": .object(Dictionary(uniqueKeysWithValues: config.exposedPorts.map { ($0, JSONValue.object([:])) })),
            ])),
            ("HostConfig", .object([
                "AutoRemove": .bool(config.autoRemove), "ReadonlyRootfs": .bool(config.readOnly),
                "NetworkMode": .string(config.network),
                "PortBindings": portBindings(config.ports), "Dns": .of(config.dns), "DnsSearch": .of(config.dnsSearch),
                "DnsOptions": .of(config.dnsOptions), "ExtraHosts": .of(config.addHosts),
                "RestartPolicy": .object(["Name": .string(config.restartPolicy.name), "MaximumRetryCount": .integer(Int64(config.restartPolicy.maximumRetryCount))]),
                "Init": .bool(config.initProcess),
                "LogConfig": .object(["Type": .string(config.loggingDriver.rawValue), "Path": .string(logPath),
                                      "Tag": .string(config.logTag ?? ""), "Size": .string(config.logMaxSize.map { String($0) } ?? "")]),
            ])),
            ("NetworkSettings", networkSettings(container)),
        ]
        if size {
            row.append(("SizeRw", .integer(DiskUsage.size(of: engine.containers.path(container.id) + "/upper"))))
        }
        return row
    }

    /// docker's shape: "80/tcp": [{"HostIp": "", "HostPort": "8080"}].
    static func portBindings(_ ports: [PortMapping]) -> JSONValue {
        var result: [String: JSONValue] = [:]
        for mapping in ports.flatMap(\.singles) {
            let key = "\(mapping.containerPort)/\(mapping.proto)"
            var list: [JSONValue] = []
            if case .array(let existing)? = result[key] { list = existing }
            list.append(.object(["HostIp": .string(mapping.hostIP), "HostPort": .string(String(mapping.hostPort))]))
            result[key] = .array(list)
        }
        return .object(result)
    }

    static func networkSettings(_ container: Container) -> JSONValue {
        let interfaces = container.state.network?.interfaces ?? []
        func split(_ cidr: String?) -> (String, Int64) {
            guard let cidr else { return ("", 0) }
            let parts = cidr.split(separator: "/")
            return (String(parts[0]), parts.count > 1 ? Int64(parts[1]) ?? 0 : 0)
        }
        var networks: [String: JSONValue] = [:]
        for request in container.config.networks {
            let interface = interfaces.first { $0.network == request.name }
            let v4 = interface?.addresses.first { !$0.contains(":") }
            let (ip, prefix) = split(v4)
            networks[request.name] = .object([
                "NetworkID": .string((try? EngineContext.engine.networks.load(request.name))?.id ?? ""),
                "IPAddress": .string(ip), "IPPrefixLen": .integer(prefix),
                "Gateway": .string(interface?.gateways.first { !$0.contains(":") } ?? ""),
                "MacAddress": .string(interface?.mac ?? ""), "Aliases": .of(request.aliases),
                "InterfaceName": .string(interface?.name ?? ""),
            ])
        }
        let first = interfaces.first
        let (ip, prefix) = split(first?.addresses.first { !$0.contains(":") })
        var ports: [String: JSONValue] = [:]
        if case .object(let bound) = portBindings(container.config.ports) { ports = bound }
        for exposed in container.config.exposedPorts where ports[exposed] == nil { ports[exposed] = .null }
        return .object([
            "IPAddress": .string(ip), "IPPrefixLen": .integer(prefix),
            "Gateway": .string(first?.gateways.first { !$0.contains(":") } ?? ""),
            "MacAddress": .string(first?.mac ?? ""),
            "Ports": .object(ports), "Networks": .object(networks),
            "SandboxKey": .string(container.state.network?.netns ?? ""),
        ])
    }
}

struct ContainerCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "container", abstract: "Manage containers.",
        subcommands: [ContainerPruneCommand.self, EnginePsCommand.self, RmCommand.self, InspectCommand.self, StopCommand.self,
                      RenameCommand.self, WaitCommand.self, RestartCommand.self, PortCommand.self, LogsCommand.self,
                      DiffCommand.self]
    )
}

struct ContainerPruneCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "prune", abstract: "Remove every stopped container.")
    @Flag(name: .shortAndLong, help: "Do not ask (berth never asks).") var force = false

    func run() throws {
        let engine = EngineContext.engine
        for container in engine.list(all: true) where container.state.status != "running" && container.state.status != "paused" {
            if (try? engine.remove(container, force: false, volumes: false)) != nil { printOut(container.id) }
        }
    }
}

struct EngineExecCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "exec", abstract: "Run a command in a running container.")
    @Flag(name: .shortAndLong, help: "Keep standard input open.") var interactive = false
    @Flag(name: .shortAndLong, help: "Allocate a pseudo-terminal.") var tty = false
    @Flag(name: .shortAndLong, help: "Run in the background.") var detach = false
    @Option(name: .shortAndLong, help: "USER[:GROUP], names or numbers.") var user: String?
    @Option(name: .shortAndLong, help: "Working directory.") var workdir: String?
    @Option(name: .shortAndLong, help: "Set an environment variable.") var env: [String] = []
    @Option(name: .customLong("env-file"), help: "Read KEY=VALUE lines from a file.") var envFile: [String] = []
    @Flag(help: "Every capability for this process.") var privileged = false
    @Argument(help: "The container (name or id).") var container: String
    @Argument(parsing: .captureForPassthrough, help: "The command and its arguments.") var command: [String] = []

    func run() throws {
        let engine = EngineContext.engine
        let found = try engine.lookup(container)
        guard found.state.status == "running" else {
            throw CommandFailure(code: 125, message: "container \(found.name) is not running: cannot exec in it (it is \(found.state.status))")
        }
        let arguments = command.first == "--" ? Array(command.dropFirst()) : command
        guard !arguments.isEmpty else { throw CommandFailure(code: 125, message: "exec needs a command to run") }
        var options = ExecOptions(id: found.id)
        options.arguments = arguments
        options.terminal = tty
        options.detach = detach
        options.cwd = workdir
        var environment: [String] = []
        for file in envFile {
            guard let text = try? Files.readString(file) else { throw CommandFailure(code: 125, message: "--env-file \(file): cannot read it") }
            environment += text.split(separator: "\n").map { $0.trimmingCharacters(in: " ") }.filter { !$0.isEmpty && !$0.hasPrefix("#") }
        }
        for item in environment + env {
            if item.contains("=") { options.environment.append(item) }
            else if let value = getenv(item) { options.environment.append("\(item)=\(String(cString: value))") }
        }
        if let user {
            let root = "/proc/\(found.state.pid)/root"
            let passwd = LayerFiles.read("etc/passwd", layers: [root]).map { String(decoding: $0, as: UTF8.self) } ?? ""
            let group = LayerFiles.read("etc/group", layers: [root]).map { String(decoding: $0, as: UTF8.self) } ?? ""
            let resolved = try SpecBuilder.resolveUser(user, passwd: passwd, group: group)
            options.user = "\(resolved.uid):\(resolved.gid)"
            options.additionalGids = resolved.additionalGids ?? []
        }
        if privileged { options.capabilities = Capabilities.all }
        // Without -i the process reads an empty stdin, as podman gives it.
        var empty: (read: FileDescriptor, write: FileDescriptor)? = nil
        if !interactive && !tty, let pipe = try? makePipe() {
            pipe.write.close()
            empty = pipe
            options.stdio = [pipe.read.rawValue, 1, 2]
        }
        defer { empty?.read.close() }
        let code: Int32
        do {
            code = try ExecLauncher.exec(options, paths: engine.runtime)
        } catch {
            throw CommandFailure(code: Engine.exitCode(for: error), message: error.message)
        }
        if detach { return }
        if code != 0 { throw ExitCode_(code: code) }
    }
}

struct LogsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "logs", abstract: "Print a container's output (its log).")
    @Flag(name: .shortAndLong, help: "Keep printing new output until the container stops.") var follow = false
    @Option(help: "Only the last N lines (-1: all).") var tail: Int?
    @Option(help: "Only output since this time (RFC 3339, Unix seconds, or a duration such as 10m).") var since: String?
    @Option(help: "Only output before this time.") var until: String?
    @Flag(name: .shortAndLong, help: "Prefix each line with its time.") var timestamps = false
    @Argument(help: "The container (name or id).") var container: String

    func run() throws {
        let engine = EngineContext.engine
        let found = try engine.lookup(container)
        var options = LogReadOptions()
        if let tail, tail != -1 {
            // -1: every line, as podman reads it.
            guard tail >= 0 else { throw CommandFailure(code: 125, message: "--tail \(tail): expected a number of lines ≥ 0, or -1 for all") }
            options.tail = tail
        }
        let now = Timestamp.now()
        if let since {
            guard let time = Timestamp.parse(since, now: now) else {
                throw CommandFailure(code: 125, message: "--since \"\(since)\": expected an RFC 3339 time, Unix seconds or a duration such as 10m")
            }
            options.since = time
        }
        if let until {
            guard let time = Timestamp.parse(until, now: now) else {
                throw CommandFailure(code: 125, message: "--until \"\(until)\": expected an RFC 3339 time, Unix seconds or a duration such as 10m")
            }
            options.until = time
        }
        options.timestamps = timestamps
        let driver = found.config.loggingDriver
        guard driver.isReadable else {
            throw CommandFailure(code: 125, message: "this container is using the '\(driver.rawValue)' log driver, cannot read logs")
        }
        signal(SIGPIPE, SIG_IGN)
        let path = engine.containers.logPath(found.id)
        let show = { (entry: LogEntry) in
            let bytes = LogReader.render(entry, timestamps: timestamps)
            try? (entry.stream == .stderr ? FileDescriptor.standardError : FileDescriptor.standardOutput).writeAll(bytes)
        }
        let isRunning = {
            guard let record = engine.containers.load(found.id) else { return false }
            let current = engine.refresh(record)
            return current.state.status == "running" || current.state.status == "paused"
        }
        if driver == .journald {
            try JournalReader.read(containerID: found.id, options: options, follow: follow ? isRunning : nil, show)
        } else if follow {
            try LogReader.follow(path: path, options: options, isRunning: isRunning, show)
        } else {
            try LogReader.read(path: path, options: options, show)
        }
    }
}

#if canImport(Glibc)
import Glibc
#endif
import ArgumentParser
import BerthOCI
import BerthOS
import BerthRuntime
import FoundationEssentials

/// Thrown by commands to exit with a code without printing anything more.
struct ExitCode_: Error { let code: Int32 }

func encodeJSON<T: Encodable>(_ value: T, pretty: Bool = true) -> String {
    let encoder = JSONEncoder()
    encoder.outputFormatting = pretty ? [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes] : [.sortedKeys, .withoutEscapingSlashes]
    guard let data = try? encoder.encode(value) else { return "{}" }
    return String(decoding: data, as: UTF8.self)
}

func printOut(_ text: String) {
    try? FileDescriptor.standardOutput.writeAll(text + "\n")
}

struct SpecCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "spec", abstract: "Write a new config.json for a bundle.")
    @Flag(help: "Write a spec for an unprivileged user (user namespace mapping the caller to root).") var rootless = false
    @Option(name: [.short, .long], help: "The bundle directory.") var bundle: String?

    func run() throws {
        let directory = Files.absolute(bundle ?? ".")
        let path = directory + "/config.json"
        if Files.exists(path) {
            throw RuntimeError(.exists, "\(path) already exists: remove it first")
        }
        let spec = rootless ? Spec.rootless(uid: geteuid(), gid: getegid()) : Spec.default()
        do {
            try Files.writeAtomically(path, Array(encodeJSON(spec).utf8) + [0x0a], mode: 0o644)
        } catch {
            throw RuntimeError(.failed, "write \(path): \(error)")
        }
    }
}

struct CreateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "create", abstract: "Create a container from a bundle; `start` runs its process.")
    @Option(name: [.short, .long], help: "The bundle directory (default: the current directory).") var bundle: String?
    @Option(name: .customLong("pid-file"), help: "Write the init process's pid to this file.") var pidFile: String?
    @Option(name: .customLong("console-socket"), help: "Unix socket that receives the pty master when process.terminal is true.") var consoleSocket: String?
    @Flag(name: .customLong("no-pivot"), help: "Use MS_MOVE and chroot instead of pivot_root.") var noPivot = false
    @Option(name: .customLong("preserve-fds"), help: "Pass this many fds after stdio to the container.") var preserveFDs = 0
    @Flag(name: .customLong("no-new-keyring"), help: "Accepted for runc compatibility (berth creates no session keyring).") var noNewKeyring = false
    @Argument(help: "The container id.") var id: String

    func run() throws {
        var options = LaunchOptions(id: id, bundle: bundle, mode: .create)
        options.pidFile = pidFile
        options.consoleSocket = consoleSocket
        options.noPivot = noPivot
        options.cgroupMode = globalOptions.cgroups
        options.systemdCgroup = globalOptions.systemdCgroup
        options.preserveFDs = preserveFDs + listenFDs()
        _ = try Launcher.launch(options, paths: globalOptions.paths)
    }
}

/// systemd socket activation: LISTEN_FDS descriptors are passed on, as runc does.
func listenFDs() -> Int {
    guard let value = getenv("LISTEN_FDS").map({ String(cString: $0) }), let count = Int(value) else { return 0 }
    return max(0, count)
}

struct RunCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "run", abstract: "Create and start a container, and wait for it unless --detach.")
    @Option(name: [.short, .long], help: "The bundle directory (default: the current directory).") var bundle: String?
    @Option(name: .customLong("pid-file"), help: "Write the init process's pid to this file.") var pidFile: String?
    @Option(name: .customLong("console-socket"), help: "Unix socket that receives the pty master (with --detach).") var consoleSocket: String?
    @Flag(name: [.short, .long], help: "Return once the container runs.") var detach = false
    @Flag(name: .customLong("no-pivot"), help: "Use MS_MOVE and chroot instead of pivot_root.") var noPivot = false
    @Option(name: .customLong("preserve-fds"), help: "Pass this many fds after stdio to the container.") var preserveFDs = 0
    @Flag(name: .customLong("no-new-keyring"), help: "Accepted for runc compatibility.") var noNewKeyring = false
    @Flag(name: .customLong("no-subreaper"), help: "Accepted for runc compatibility.") var noSubreaper = false
    @Flag(name: .customLong("keep"), help: "Accepted for runc compatibility.") var keep = false
    @Argument(help: "The container id.") var id: String

    func run() throws {
        var options = LaunchOptions(id: id, bundle: bundle, mode: detach ? .runDetached : .runForeground)
        options.pidFile = pidFile
        options.consoleSocket = consoleSocket
        options.noPivot = noPivot
        options.cgroupMode = globalOptions.cgroups
        options.systemdCgroup = globalOptions.systemdCgroup
        options.preserveFDs = preserveFDs + listenFDs()
        let code = try Launcher.launch(options, paths: globalOptions.paths)
        if code != 0 { throw ExitCode_(code: code) }
    }
}

struct StartCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "start", abstract: "Run the process of a created container.")
    @Argument(help: "The container id.") var id: String
    func run() throws { try Operations.start(id, paths: globalOptions.paths) }
}

struct StateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "state", abstract: "Print a container's state as JSON.")
    @Argument(help: "The container id.") var id: String
    func run() throws { printOut(encodeJSON(try Operations.state(id, paths: globalOptions.paths))) }
}

struct KillCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "kill", abstract: "Send a signal (default SIGTERM) to a container's init.")
    @Flag(name: [.short, .long], help: "Signal every process of the container.") var all = false
    @Argument(help: "The container id.") var id: String
    @Argument(help: "Signal name or number.") var signal: String = "SIGTERM"

    func run() throws {
        guard let number = SignalName.parse(signal) else {
            throw RuntimeError(.invalidArgument, "unknown signal \"\(signal)\"")
        }
        try Operations.kill(id, signal: number, all: all, paths: globalOptions.paths)
    }
}

struct DeleteCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "delete", abstract: "Delete a container and what it holds.")
    @Flag(name: [.short, .long], help: "Kill a running container first.") var force = false
    @Argument(help: "The container id.") var id: String
    func run() throws {
        // runc: delete --force of a missing container succeeds.
        if force && !Operations.exists(id, paths: globalOptions.paths) { return }
        try Operations.delete(id, force: force, paths: globalOptions.paths)
    }
}

struct ListCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list", abstract: "List containers.", aliases: ["ls"])
    @Option(name: [.short, .long], help: "Output format: table or json.") var format = "table"
    @Flag(name: [.short, .long], help: "Print only ids.") var quiet = false

    func run() throws {
        let states = Operations.list(paths: globalOptions.paths)
        if quiet {
            for state in states { printOut(state.id) }
            return
        }
        switch format {
        case "json":
            printOut(encodeJSON(states, pretty: false))
        case "table":
            var rows = [["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"]]
            for s in states {
                rows.append([s.id, String(s.pid), s.status.rawValue, s.bundle, s.created ?? "", s.owner ?? ""])
            }
            printTable(rows)
        default:
            throw RuntimeError(.invalidArgument, "unknown format \"\(format)\": expected table or json")
        }
    }
}

func printTable(_ rows: [[String]]) {
    guard let columns = rows.first?.count else { return }
    var widths = [Int](repeating: 0, count: columns)
    for row in rows { for (i, cell) in row.enumerated() { widths[i] = max(widths[i], cell.count) } }
    for row in rows {
        var line = ""
        for (i, cell) in row.enumerated() {
            line += cell
            if i < columns - 1 { line += String(repeating: " ", count: widths[i] - cell.count + 3) }
        }
        printOut(line)
    }
}

struct PsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "ps", abstract: "List a container's processes.")
    @Option(name: [.short, .long], help: "Output format: table or json.") var format = "table"
    @Argument(help: "The container id.") var id: String
    @Argument(parsing: .captureForPassthrough, help: "Options for ps(1) (default -ef).") var psArguments: [String] = []

    func run() throws {
        let pids = try Operations.pids(id, paths: globalOptions.paths)
        if format == "json" {
            printOut(encodeJSON(pids.map { Int($0) }, pretty: false))
            return
        }
        guard format == "table" else { throw RuntimeError(.invalidArgument, "unknown format \"\(format)\": expected table or json") }
        var arguments = psArguments.first == "--" ? Array(psArguments.dropFirst()) : psArguments
        if arguments.isEmpty { arguments = ["-ef"] }
        let result = try captureOutput("/bin/ps", ["ps"] + arguments)
        let lines = result.split(separator: "\n", omittingEmptySubsequences: false)
        guard let header = lines.first else { return }
        guard let column = header.split(separator: " ").firstIndex(of: "PID") else {
            throw RuntimeError(.invalidArgument, "ps output has no PID column")
        }
        printOut(String(header))
        let wanted = Set(pids)
        for line in lines.dropFirst() where !line.isEmpty {
            let fields = line.split(separator: " ")
            if column < fields.count, let pid = pid_t(fields[column]), wanted.contains(pid) { printOut(String(line)) }
        }
    }
}

/// Runs a program and returns its standard output.
func captureOutput(_ path: String, _ arguments: [String]) throws -> String {
    let (readEnd, writeEnd) = try makePipe()
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    posix_spawn_file_actions_adddup2(&actions, writeEnd.rawValue, 1)
    var argv: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) } + [nil]
    defer { for p in argv { free(p) } }
    var pid: pid_t = 0
    let result = posix_spawn(&pid, path, &actions, nil, &argv, berth_environ_pointer())
    writeEnd.close()
    defer { readEnd.close() }
    guard result == 0 else { throw RuntimeError(.notFound, "run \(path): \(Errno(result))") }
    let bytes = try readEnd.readAll()
    _ = try waitForProcess(pid)
    return String(decoding: bytes, as: UTF8.self)
}

struct FeaturesCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "features", abstract: "Print what this runtime supports, as JSON.")
    func run() throws {
        printOut(encodeJSON(Features(mountOptions: RuntimeInfo.mountOptions, capabilities: RuntimeInfo.capabilities, version: Spec.version)))
    }
}

struct ExecCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "exec", abstract: "Run a new process in a running container.")
    @Option(name: [.short, .long], help: "A JSON process (runtime-spec `process`) to run instead of the arguments.") var process: String?
    @Flag(name: [.short, .long], help: "Give the process a terminal.") var tty = false
    @Flag(name: [.short, .long], help: "Return once the process runs.") var detach = false
    @Option(name: .customLong("pid-file"), help: "Write the process's pid to this file.") var pidFile: String?
    @Option(name: .customLong("console-socket"), help: "Unix socket that receives the pty master.") var consoleSocket: String?
    @Option(name: .customLong("cwd"), help: "Working directory in the container.") var cwd: String?
    @Option(name: [.short, .customLong("env")], help: "Set an environment variable (repeatable).") var env: [String] = []
    @Option(name: [.short, .long], help: "UID[:GID] to run as.") var user: String?
    @Option(name: [.short, .customLong("additional-gids")], help: "An additional group id (repeatable).") var additionalGids: [UInt32] = []
    @Flag(name: .customLong("no-new-privs"), help: "Set no_new_privs.") var noNewPrivs = false
    @Option(name: .customLong("preserve-fds"), help: "Pass this many fds after stdio.") var preserveFDs = 0
    @Option(name: [.short, .customLong("cap")], help: "Add a capability to the bounding, effective and permitted sets (repeatable).") var caps: [String] = []
    @Option(name: .customLong("process-label"), help: "Accepted for runc compatibility (no SELinux here).") var processLabel: String?
    @Option(name: .customLong("apparmor"), help: "Accepted for runc compatibility (no AppArmor here).") var apparmor: String?
    @Flag(name: .customLong("ignore-paused"), help: "Accepted for runc compatibility.") var ignorePaused = false
    @Argument(help: "The container id.") var id: String
    @Argument(parsing: .captureForPassthrough, help: "The command and its arguments.") var command: [String] = []

    func run() throws {
        var options = ExecOptions(id: id)
        options.processFile = process
        options.arguments = command.first == "--" ? Array(command.dropFirst()) : command
        options.terminal = tty
        options.detach = detach
        options.pidFile = pidFile
        options.consoleSocket = consoleSocket
        options.cwd = cwd
        options.environment = env
        options.user = user
        options.additionalGids = additionalGids
        options.noNewPrivileges = noNewPrivs
        options.preserveFDs = preserveFDs
        options.capabilities = caps
        let code = try ExecLauncher.exec(options, paths: globalOptions.paths)
        if code != 0 { throw ExitCode_(code: code) }
    }
}

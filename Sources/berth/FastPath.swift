import BerthOS
import BerthRuntime

/// The runc-compatible commands that podman, conmon and containerd run for
/// every container (create, start, run, state, kill, delete, exec), read
/// without swift-argument-parser: building its parser costs about 1 ms and
/// 2 MiB of RSS per invocation on these machines (Specs/runtime.md). Only
/// well-formed command lines are taken; anything else (help, an unknown
/// flag, a missing id) returns nil and goes to the full parser, which owns
/// usage text and error messages.
enum FastPath {
    /// Exit code, or nil to fall back to swift-argument-parser.
    static func run(_ arguments: [String]) throws(RuntimeError) -> Int32? {
        guard let command = arguments.first else { return nil }
        var scanner = FlagScanner(Array(arguments.dropFirst()))
        let paths = globalOptions.paths
        switch command {
        case "create", "run":
            let isRun = command == "run"
            guard let flags = scanner.scan(
                valued: ["bundle", "b", "pid-file", "console-socket", "preserve-fds"],
                switches: Set(["no-pivot", "no-new-keyring", "no-subreaper", "keep"] + (isRun ? ["detach", "d"] : []))
            ), scanner.positional.count == 1 else { return nil }
            let detach = flags.has("detach", "d")
            var options = LaunchOptions(id: scanner.positional[0], bundle: flags.value("bundle", "b"),
                                        mode: isRun ? (detach ? .runDetached : .runForeground) : .create)
            options.pidFile = flags.value("pid-file")
            options.consoleSocket = flags.value("console-socket")
            options.noPivot = flags.has("no-pivot")
            options.cgroupMode = globalOptions.cgroups
            options.systemdCgroup = globalOptions.systemdCgroup
            guard let preserve = Int(flags.value("preserve-fds") ?? "0") else { return nil }
            options.preserveFDs = preserve + listenFDs()
            return try Launcher.launch(options, paths: paths)
        case "start", "state":
            guard scanner.scan(valued: [], switches: []) != nil, scanner.positional.count == 1 else { return nil }
            if command == "start" {
                try Operations.start(scanner.positional[0], paths: paths)
            } else {
                printOut(encodeJSON(try Operations.state(scanner.positional[0], paths: paths)))
            }
            return 0
        case "kill":
            guard let flags = scanner.scan(valued: [], switches: ["all", "a"]),
                  (1...2).contains(scanner.positional.count) else { return nil }
            let name = scanner.positional.count == 2 ? scanner.positional[1] : "SIGTERM"
            guard let signal = SignalName.parse(name) else { return nil }
            try Operations.kill(scanner.positional[0], signal: signal, all: flags.has("all", "a"), paths: paths)
            return 0
        case "delete":
            guard let flags = scanner.scan(valued: [], switches: ["force", "f"]), scanner.positional.count == 1 else { return nil }
            let id = scanner.positional[0]
            if flags.has("force", "f") && !Operations.exists(id, paths: paths) { return 0 }
            try Operations.delete(id, force: flags.has("force", "f"), paths: paths)
            return 0
        case "exec":
            // Flags come before the id; everything after it is the command.
            guard let flags = scanner.scan(
                valued: ["process", "p", "pid-file", "console-socket", "cwd", "env", "e", "user", "u",
                         "additional-gids", "g", "preserve-fds", "cap", "c", "process-label", "apparmor"],
                switches: ["tty", "t", "detach", "d", "no-new-privs", "ignore-paused"],
                stopAtFirstPositional: true
            ), let id = scanner.positional.first else { return nil }
            var options = ExecOptions(id: id)
            options.arguments = Array(scanner.positional.dropFirst())
            if options.arguments.first == "--" { options.arguments.removeFirst() }
            options.processFile = flags.value("process", "p")
            options.terminal = flags.has("tty", "t")
            options.detach = flags.has("detach", "d")
            options.pidFile = flags.value("pid-file")
            options.consoleSocket = flags.value("console-socket")
            options.cwd = flags.value("cwd")
            options.environment = flags.values("env", "e")
            options.user = flags.value("user", "u")
            options.noNewPrivileges = flags.has("no-new-privs")
            options.capabilities = flags.values("cap", "c")
            var gids: [UInt32] = []
            for text in flags.values("additional-gids", "g") {
                guard let gid = UInt32(text) else { return nil }
                gids.append(gid)
            }
            options.additionalGids = gids
            guard let preserve = Int(flags.value("preserve-fds") ?? "0") else { return nil }
            options.preserveFDs = preserve
            return try ExecLauncher.exec(options, paths: paths)
        default:
            return nil
        }
    }
}

/// Go-flag-style options: `--name value`, `--name=value`, `-n value`,
/// switches with an optional `=true|false`; positionals collected in order.
struct FlagScanner {
    let arguments: [String]
    var positional: [String] = []

    init(_ arguments: [String]) { self.arguments = arguments }

    struct Flags {
        var entries: [(name: String, value: String?)] = []
        func has(_ names: String...) -> Bool {
            entries.contains { names.contains($0.name) && $0.value != "false" }
        }
        func value(_ names: String...) -> String? { entries.last { names.contains($0.name) }?.value }
        func values(_ names: String...) -> [String] { entries.filter { names.contains($0.name) }.compactMap(\.value) }
    }

    /// Nil when an argument is not one of the given flags (or `-h`/`--help`),
    /// or when a flag's value is missing. With `stopAtUnknown`, an unknown
    /// flag ends the scan instead, and it and all after it are positional.
    mutating func scan(valued: Set<String>, switches: Set<String>, stopAtFirstPositional: Bool = false,
                       stopAtUnknown: Bool = false) -> Flags? {
        var flags = Flags()
        var index = 0
        while index < arguments.count {
            let argument = arguments[index]
            index += 1
            guard argument.hasPrefix("-"), argument != "-" else {
                positional.append(argument)
                if stopAtFirstPositional {
                    positional += arguments[index...]
                    return flags
                }
                continue
            }
            if argument == "--" {
                positional += arguments[index...]
                return flags
            }
            var name = String(argument.drop(while: { $0 == "-" }))
            var value: String? = nil
            if let equals = name.firstIndex(of: "=") {
                value = String(name[name.index(after: equals)...])
                name = String(name[..<equals])
            }
            if valued.contains(name) {
                if value == nil {
                    guard index < arguments.count else { return nil }
                    value = arguments[index]
                    index += 1
                }
                flags.entries.append((name, value))
            } else if switches.contains(name) {
                flags.entries.append((name, value ?? "true"))
            } else if stopAtUnknown {
                positional += arguments[(index - 1)...]
                return flags
            } else {
                return nil
            }
        }
        return flags
    }
}

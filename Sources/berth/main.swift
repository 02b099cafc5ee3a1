#if canImport(Glibc)
import Glibc
#endif
import ArgumentParser
import BerthOS
import BerthEngine
import BerthImage
import BerthRegistry
import BerthRuntime

struct Berth: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "berth",
        abstract: "A daemonless container engine and runc-compatible OCI runtime.",
        discussion: "Global flags (before the command): --root DIR, --log FILE, --log-format text|json, --debug, --systemd-cgroup, --cgroups enabled|disabled|split.",
        version: "0.1.0",
        subcommands: [
            SpecCommand.self, CreateCommand.self, StartCommand.self, StateCommand.self, KillCommand.self,
            DeleteCommand.self, RunCommand.self, ExecCommand.self, ListCommand.self, PsCommand.self, FeaturesCommand.self,
            UpdateCommand.self, PauseCommand.self, ResumeCommand.self, EventsCommand.self,
            PullCommand.self, PushCommand.self, ImagesCommand.self, ImageCommand.self, TagCommand.self, RmiCommand.self,
            SaveCommand.self, LoadCommand.self, ImportCommand.self, LoginCommand.self, LogoutCommand.self, InfoCommand.self,
            SystemCommand.self, UnshareCommand.self,
            StopCommand.self, RestartCommand.self, RmCommand.self, InspectCommand.self, LogsCommand.self, WaitCommand.self,
            RenameCommand.self, PortCommand.self, ContainerCommand.self, VolumeCommand.self, NetworkCommand.self,
            AttachCommand.self, TopCommand.self, StatsCommand.self, CpCommand.self, CommitCommand.self, ExportCommand.self,
            DiffCommand.self, HealthcheckCommand.self,
            GenerateCommand.self,
        ]
    )
}

/// The podman-style commands, for command lines `EngineDispatch` gives the
/// engine (run, create, start, kill, exec and ps mean runc's otherwise).
struct EngineRoot: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "berth",
        subcommands: [
            EngineRunCommand.self, EngineCreateCommand.self, EngineStartCommand.self, EngineKillCommand.self,
            EngineExecCommand.self, EnginePsCommand.self,
        ]
    )
}

/// Which `berth` a command line means: the engine's (images, names) or
/// runc's (bundles, ids in the runtime state).
enum EngineDispatch {
    static let engineOnly: Set<String> = ["stop", "restart", "rm", "inspect", "logs", "wait", "rename", "port", "container",
                                          "volume", "network", "attach", "top", "stats", "cp", "commit", "export", "diff", "healthcheck"]

    static func isEngine(_ rest: [String]) -> Bool {
        guard let command = rest.first else { return false }
        let arguments = Array(rest.dropFirst())
        if arguments.contains("--help") || arguments.contains("-h") {
            return ["run", "create", "ps", "start", "kill", "exec"].contains(command)
        }
        let valued: Set<String> = [
            "--format", "-f", "--filter", "-n", "--last", "-s", "--signal", "-u", "--user", "-w", "--workdir", "-e", "--env",
            "--env-file", "--detach-keys", "-p", "--process", "--pid-file", "--console-socket", "--cwd", "-g",
            "--additional-gids", "--preserve-fds", "-c", "--cap", "--process-label", "--apparmor", "-b", "--bundle",
        ]
        var positional: [String] = []
        var index = 0
        while index < arguments.count {
            let argument = arguments[index]
            index += 1
            if argument == "--" { positional += arguments[index...]; break }
            if argument.hasPrefix("-") {
                if valued.contains(argument) { index += 1 }
                continue
            }
            positional.append(argument)
            // exec: the container, then its command (whose flags are its own).
            if command == "exec" { break }
        }
        let runtimeHas = { (id: String) in Operations.exists(id, paths: globalOptions.paths) }
        switch command {
        case "run", "create":
            return ImageRun.applies(arguments)
        case "start":
            if arguments.contains(where: { ["-a", "--attach", "-i", "--interactive", "-ai", "-ia"].contains($0) }) { return true }
            return positional.count != 1 || !runtimeHas(positional[0])
        case "kill":
            if arguments.contains(where: { $0 == "-s" || $0.hasPrefix("--signal") || $0 == "--all" && positional.isEmpty }) { return true }
            guard let first = positional.first else { return true }
            return !runtimeHas(first)
        case "exec":
            let engineFlags: Set<String> = ["-i", "--interactive", "-w", "--workdir", "--privileged", "-it", "-ti", "--env-file"]
            if arguments.contains(where: { engineFlags.contains($0.split(separator: "=").first.map(String.init) ?? $0) }) { return true }
            // The container is the first word that is not a flag's value: good enough to ask the runtime.
            guard let first = positional.first else { return false }
            return !runtimeHas(first)
        case "ps":
            return positional.isEmpty
        default:
            return false
        }
    }
}

/// podman's commands exit 125 on berth's own errors; runc's exit 1.
let imageCommands: Set<String> = Set(["pull", "push", "images", "image", "tag", "rmi", "save", "load", "import", "login", "logout", "info", "system", "unshare", "generate"])
    .union(EngineDispatch.engineOnly)

func main() -> Int32 {
    // Run as berth-generator / berth-user-generator: systemd's generator (Specs/systemd-units.md).
    if let code = QuadletGeneratorCommand.runIfGenerator(CommandLine.arguments) { return code }
    let arguments = Array(CommandLine.arguments.dropFirst())
    let rest: [String]
    do {
        (globalOptions, rest) = try GlobalOptions.parse(arguments)
    } catch {
        GlobalOptions().report(error.message)
        return 1
    }
    let engine = EngineDispatch.isEngine(rest)
    if !engine {
        do throws(RuntimeError) {
            if let code = try FastPath.run(rest) { return code }
        } catch {
            globalOptions.report(error.message)
            return 1
        }
    }
    let podmanStyle = engine || imageCommands.contains(rest.first ?? "")
    let root: any ParsableCommand.Type = engine ? EngineRoot.self : Berth.self
    // The subcommand parses its own arguments: the root's parse first walks
    // every subcommand's arguments (its completion-script check), ~2 ms here.
    // Help, completion and anything unknown go through the root.
    let wantsRoot = rest.contains { ["--help", "-h", "help", "--version", "--generate-completion-script"].contains($0) }
    let direct = wantsRoot ? nil : rest.first.flatMap { name in
        root.configuration.subcommands.first { $0.configuration.commandName == name || $0.configuration.aliases.contains(name) }
    }
    let parser: any ParsableCommand.Type = direct ?? root
    do {
        // The hot path: run/create read without swift-argument-parser.
        if engine, rest.first == "run" || rest.first == "create", let request = CreateRequest.scan(Array(rest.dropFirst())) {
            if rest.first == "run" { try EngineRunCommand.run(request) } else { try EngineCreateCommand.run(request) }
            return 0
        }
        var command = try direct.map { try $0.parseAsRoot(Array(rest.dropFirst())) } ?? root.parseAsRoot(rest)
        try command.run()
        return 0
    } catch let exit as ExitCode_ {
        return exit.code
    } catch let failure as CommandFailure {
        globalOptions.report(failure.message)
        return failure.code
    } catch let error as EngineError {
        globalOptions.report(error.message)
        return 125
    } catch let error as RuntimeError {
        globalOptions.report(error.message)
        return podmanStyle ? 125 : 1
    } catch let error as ImageError {
        globalOptions.report(error.message)
        return 125
    } catch let error as RegistryError {
        globalOptions.report(error.message)
        return 125
    } catch {
        let code = parser.exitCode(for: error)
        if code == .success {
            // --help / --version
            printOut(parser.fullMessage(for: error))
            return 0
        }
        let message = parser.message(for: error).split(separator: "\n").first.map(String.init) ?? "invalid arguments"
        globalOptions.report(message.hasPrefix("Error: ") ? String(message.dropFirst(7)) : message)
        return podmanStyle ? 125 : 1
    }
}

exit(main())

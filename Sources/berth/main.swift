#if canImport(Glibc)
import Glibc
#endif
import ArgumentParser
import BerthOS
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
        ]
    )
}

/// podman's commands exit 125 on berth's own errors; runc's exit 1.
let imageCommands: Set<String> = ["pull", "push", "images", "image", "tag", "rmi", "save", "load", "import", "login", "logout", "info", "system", "unshare"]

func main() -> Int32 {
    let arguments = Array(CommandLine.arguments.dropFirst())
    let rest: [String]
    do {
        (globalOptions, rest) = try GlobalOptions.parse(arguments)
    } catch {
        GlobalOptions().report(error.message)
        return 1
    }
    do throws(RuntimeError) {
        if let code = try FastPath.run(rest) { return code }
    } catch {
        globalOptions.report(error.message)
        return 1
    }
    if rest.first == "run", ImageRun.applies(Array(rest.dropFirst())) {
        do {
            return try ImageRun.run(Array(rest.dropFirst()))
        } catch let exit as ExitCode_ {
            return exit.code
        } catch {
            globalOptions.report("\(error)")
            return 125
        }
    }
    do {
        var command = try Berth.parseAsRoot(rest)
        try command.run()
        return 0
    } catch let exit as ExitCode_ {
        return exit.code
    } catch let error as RuntimeError {
        globalOptions.report(error.message)
        return imageCommands.contains(rest.first ?? "") ? 125 : 1
    } catch let error as ImageError {
        globalOptions.report(error.message)
        return 125
    } catch let error as RegistryError {
        globalOptions.report(error.message)
        return 125
    } catch {
        let code = Berth.exitCode(for: error)
        if code == .success {
            // --help / --version
            printOut(Berth.fullMessage(for: error))
            return 0
        }
        let message = Berth.message(for: error).split(separator: "\n").first.map(String.init) ?? "invalid arguments"
        globalOptions.report(message.hasPrefix("Error: ") ? String(message.dropFirst(7)) : message)
        return imageCommands.contains(rest.first ?? "") ? 125 : 1
    }
}

exit(main())

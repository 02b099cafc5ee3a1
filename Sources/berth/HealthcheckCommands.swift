import ArgumentParser
import BerthEngine
import BerthOCI

struct HealthcheckCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "healthcheck", abstract: "Run containers' health checks.",
                                                    subcommands: [HealthcheckRunCommand.self])
}

/// `healthcheck run`: the check once, now, recorded as the automatic
/// ones are; 0 when it passed, 1 (and podman's word for it) when not,
/// 125 when there is nothing to check.
struct HealthcheckRunCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "run", abstract: "Run a container's health check once, now.")
    @Argument(help: "The container (name or id).") var container: String

    func run() throws {
        let engine = EngineContext.engine
        let outcome = try engine.runHealthCheck(try engine.lookup(container))
        guard outcome.exitCode == 0 else {
            printOut(outcome.word)
            throw ExitCode_(code: 1)
        }
    }
}

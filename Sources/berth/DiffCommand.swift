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
import BerthOCI

// diff (also `container diff`). The work is the engine's (ContainerDiff.swift).

struct DiffCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "diff", abstract: "Show what a container changed in its file system compared with its image.",
        discussion: """
            One line per path, in path order: A added, C changed, D deleted. Running or stopped; \
            the paths berth makes for its mounts (/dev, /proc, /sys, /run, /etc/hosts, …) are left out, as podman does.
            """)
    @Option(help: "json: {\"changed\":[…],\"added\":[…],\"deleted\":[…]} (default: lines).") var format: String?
    @Argument(help: "The container (name or id).") var container: String

    func run() throws {
        let json: Bool
        switch format.map({ $0.filter { !$0.isWhitespace } }) {
        case nil, "": json = false
        case "json", "{{json.}}", "{{json}}": json = true
        default: throw CommandFailure(code: 125, message: "only supported value for '--format' is 'json'")
        }
        let found = try EngineContext.engine.lookup(container)
        try ImageContext.enterStoreNamespace()
        let changes = try EngineContext.engine.diff(found)
        guard json else {
            if !changes.isEmpty { printOut(changes.map(\.description).joined(separator: "\n")) }
            return
        }
        // podman's order of keys; an empty list is left out (Go's omitempty).
        var fields: [String] = []
        for (key, kind) in [("changed", FileChange.Kind.changed), ("added", .added), ("deleted", .deleted)] {
            let paths = changes.filter { $0.kind == kind }.map { JSONValue.string($0.path) }
            if !paths.isEmpty { fields.append("\"\(key)\":" + JSONValue.array(paths).jsonText(pretty: false)) }
        }
        printOut("{" + fields.joined(separator: ",") + "}")
    }
}

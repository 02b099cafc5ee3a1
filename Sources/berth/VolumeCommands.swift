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
import BerthOS

/// `berth volume …`: named volumes in the store (Specs/volumes.md).
struct VolumeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "volume", abstract: "Manage volumes.",
        subcommands: [VolumeCreateCommand.self, VolumeListCommand.self, VolumeInspectCommand.self, VolumeRemoveCommand.self,
                      VolumePruneCommand.self, VolumeExistsCommand.self]
    )
}

/// `KEY=VALUE` (the value may be empty or contain '='), for `-o` and `--label`.
/// A label may have no `=` (an empty value); a driver option must have one.
private func keyValues(_ items: [String], flag: String, valueRequired: Bool) throws -> [String: String] {
    var result: [String: String] = [:]
    for item in items {
        let parts = item.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
        guard let key = parts.first, !key.isEmpty, parts.count == 2 || !valueRequired else {
            throw CommandFailure(code: 125, message: "\(flag) \"\(item)\": expected KEY=VALUE")
        }
        result[key] = parts.count > 1 ? parts[1] : ""
    }
    return result
}

struct VolumeCreateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "create", abstract: "Create a volume and print its name.")
    @Option(name: [.short, .customLong("driver")], help: "Volume driver (local).") var driver: String = "local"
    @Option(name: [.short, .customLong("opt")], help: "Driver option KEY=VALUE: type=tmpfs, device=tmpfs, o=MOUNT-OPTIONS.") var opt: [String] = []
    @Option(name: [.short, .customLong("label")], help: "Set a label KEY=VALUE.") var label: [String] = []
    @Flag(help: "An existing volume of that name is not an error (its options are kept).") var ignore = false
    @Argument(help: "The volume's name (default: 64 random hex digits).") var name: String?

    func run() throws {
        let options = try keyValues(opt, flag: "-o", valueRequired: true)
        let labels = try keyValues(label, flag: "--label", valueRequired: false)
        let record = try EngineContext.engine.volumes.create(name: name, driver: driver, options: options, labels: labels,
                                                             ignoreIfExists: ignore)
        printOut(record.name)
    }
}

/// A volume as `volume ls` and `volume inspect` show it: docker's keys.
private func volumeRow(_ record: VolumeRecord) -> OutputFormat.Row {
    [
        ("Name", .string(record.name)),
        ("Driver", .string(record.driver)),
        ("Mountpoint", .string(record.mountpoint)),
        ("CreatedAt", .string(record.createdAt)),
        ("Labels", .of(record.labels)),
        ("Scope", .string(record.scope)),
        ("Options", .of(record.options)),
        ("Anonymous", .bool(record.anonymous)),
    ]
}

struct VolumeListCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "ls", abstract: "List volumes.", aliases: ["list"])
    @Flag(name: .shortAndLong, help: "Only names.") var quiet = false
    @Option(help: "json, table, or a Go template ({{.Name}} {{.Driver}} {{.Mountpoint}} {{.CreatedAt}} {{.Labels}} …).") var format: String?
    @Option(name: .shortAndLong, help: "Filter: name=TEXT, label=KEY[=VALUE], driver=local, dangling=true|false.") var filter: [String] = []

    func run() throws {
        let engine = EngineContext.engine
        var volumes = engine.volumes.list()
        // podman's rule: values of one key are alternatives, different keys must all match.
        var byKey: [(String, [String])] = []
        for item in filter {
            let parts = item.split(separator: "=", maxSplits: 1).map(String.init)
            guard parts.count == 2 else { throw CommandFailure(code: 125, message: "--filter \"\(item)\": expected KEY=VALUE") }
            guard ["name", "label", "driver", "dangling"].contains(parts[0]) else {
                throw CommandFailure(code: 125, message: "--filter \"\(item)\": berth filters volumes by name, label, driver and dangling")
            }
            if parts[0] == "dangling" && !["true", "false", "1", "0"].contains(parts[1]) {
                throw CommandFailure(code: 125, message: "--filter \"\(item)\": dangling takes true or false")
            }
            if let index = byKey.firstIndex(where: { $0.0 == parts[0] }) { byKey[index].1.append(parts[1]) } else { byKey.append((parts[0], [parts[1]])) }
        }
        if !byKey.isEmpty {
            let used = byKey.contains { $0.0 == "dangling" }
                ? Set(engine.containers.list().flatMap { $0.config.mounts.filter { $0.type == "volume" }.map(\.source) }) : []
            volumes = volumes.filter { volume in
                byKey.allSatisfy { key, values in
                    values.contains { value in
                        switch key {
                        case "name": return volume.name.contains(value)
                        case "driver": return volume.driver == value
                        case "dangling": return (value == "true" || value == "1") != used.contains(volume.name)
                        default: // label
                            let kv = value.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
                            return kv.count == 2 ? volume.labels[kv[0]] == kv[1] : volume.labels[kv[0]] != nil
                        }
                    }
                }
            }
        }
        if quiet {
            for volume in volumes { printOut(volume.name) }
            return
        }
        if format == "json" {
            printOut(volumes.isEmpty ? "[]" : JSONValue.array(volumes.map { OutputFormat.object(volumeRow($0)) }).jsonText(pretty: true))
            return
        }
        // podman prints nothing at all, not even the header, when there is no volume.
        if volumes.isEmpty && (format == nil || format!.hasPrefix("table")) { return }
        do {
            let text = try OutputFormat.render(format, rows: volumes.map(volumeRow), defaultTemplate: "{{.Driver}}\t{{.Name}}",
                                               header: ["Driver": "DRIVER", "Name": "VOLUME NAME", "Mountpoint": "MOUNTPOINT",
                                                        "CreatedAt": "CREATED AT", "Scope": "SCOPE"])
            if !text.isEmpty { printOut(text) }
        } catch {
            throw CommandFailure(code: 125, message: error.message)
        }
    }
}

struct VolumeInspectCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "inspect", abstract: "Show volumes' details as JSON.")
    @Option(name: .shortAndLong, help: "A Go template ({{.Mountpoint}}, {{json .Labels}}) or json.") var format: String?
    @Flag(name: .shortAndLong, help: "Every volume.") var all = false
    @Argument(help: "Volumes (names).") var names: [String] = []

    func run() throws {
        let store = EngineContext.engine.volumes
        if !all && names.isEmpty { throw CommandFailure(code: 125, message: "give at least one volume, or --all") }
        var rows: [OutputFormat.Row] = []
        var failed = false
        for name in all ? store.list().map(\.name) : names {
            guard let record = store.get(name) else {
                globalOptions.report("no such volume \"\(name)\"")
                failed = true
                continue
            }
            rows.append(volumeRow(record))
        }
        if !rows.isEmpty || !failed { try printInspect(rows, format: format) }
        if failed { throw ExitCode_(code: 125) }
    }
}

struct VolumeRemoveCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "rm", abstract: "Remove volumes.", aliases: ["remove"])
    @Flag(name: .shortAndLong, help: "Remove the containers that use them first (killing running ones); a missing volume is not an error.") var force = false
    @Flag(name: .shortAndLong, help: "Every volume.") var all = false
    @Argument(help: "Volumes (names).") var names: [String] = []

    func run() throws {
        let engine = EngineContext.engine
        if all && !names.isEmpty { throw CommandFailure(code: 125, message: "give volumes or --all, not both") }
        if !all && names.isEmpty { throw CommandFailure(code: 125, message: "give at least one volume, or --all") }
        var failed = false
        for name in all ? engine.volumes.list().map(\.name) : names {
            do {
                try removeVolume(name, engine: engine, force: force)
                printOut(name)
            } catch {
                if force && error.kind == .notFound { continue }
                globalOptions.report(error.message)
                failed = true
            }
        }
        if failed { throw ExitCode_(code: 125) }
    }
}

/// Removes a volume; with `force`, the containers that use it first (as
/// podman: killed if running, their anonymous volumes kept).
func removeVolume(_ name: String, engine: Engine, force: Bool) throws(EngineError) {
    guard engine.volumes.get(name) != nil else { throw EngineError(.notFound, "no such volume \"\(name)\"") }
    if force {
        for id in engine.usersOf(volume: name) {
            guard let container = engine.containers.load(id) else { continue }
            try engine.remove(container, force: true, volumes: false)
        }
    }
    // Checked and removed under the store's lock, so no container record naming it appears in between.
    let leftover = try engine.containers.locked { () throws(EngineError) -> String? in
        try engine.volumes.remove(name, inUseBy: engine.usersOf(volume: name))
    }
    if let leftover { engine.containers.removeDirectory(leftover) }
}

struct VolumePruneCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "prune", abstract: "Remove every volume no container uses.")
    @Flag(name: .shortAndLong, help: "Do not ask (berth never asks).") var force = false

    func run() throws {
        let engine = EngineContext.engine
        var failed = false
        for volume in engine.volumes.list() where engine.usersOf(volume: volume.name).isEmpty {
            do {
                try removeVolume(volume.name, engine: engine, force: false)
                printOut(volume.name)
            } catch {
                // In use by now (a container was created meanwhile) or removed by another berth: not ours to prune.
                if error.kind == .invalidState || error.kind == .notFound { continue }
                globalOptions.report(error.message)
                failed = true
            }
        }
        if failed { throw ExitCode_(code: 125) }
    }
}

struct VolumeExistsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "exists", abstract: "Exit 0 if the volume exists, 1 if not.")
    @Argument(help: "The volume's name.") var name: String

    func run() throws {
        if EngineContext.engine.volumes.get(name) == nil { throw ExitCode_(code: 1) }
    }
}

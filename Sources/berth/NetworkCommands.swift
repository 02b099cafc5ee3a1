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

/// `berth network …`: bridge and macvlan networks for netavark (Specs/network.md).
struct NetworkCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "network", abstract: "Manage networks.",
        subcommands: [NetworkCreateCommand.self, NetworkListCommand.self, NetworkInspectCommand.self, NetworkRemoveCommand.self,
                      NetworkExistsCommand.self, NetworkConnectCommand.self, NetworkDisconnectCommand.self, NetworkPruneCommand.self]
    )
}

private func pairs(_ items: [String], flag: String) throws -> [String: String] {
    var result: [String: String] = [:]
    for item in items {
        let parts = item.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
        guard let key = parts.first, !key.isEmpty else { throw CommandFailure(code: 125, message: "\(flag) \"\(item)\": expected KEY=VALUE") }
        result[key] = parts.count > 1 ? parts[1] : ""
    }
    return result
}

struct NetworkCreateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "create", abstract: "Create a network and print its name.")
    @Option(name: [.short, .customLong("driver")], help: "bridge (default) or macvlan.") var driver: String = "bridge"
    @Option(help: "Subnet in CIDR form (default: the first free 10.89.N.0/24).") var subnet: [String] = []
    @Option(help: "Gateway of the subnet given at the same position (default: its first address).") var gateway: [String] = []
    @Flag(help: "No route out of the network, no masquerading.") var `internal` = false
    @Flag(help: "Also an IPv6 subnet (a random fdXX::/64 unless given).") var ipv6 = false
    @Flag(name: .customLong("disable-dns"), help: "No aardvark-dns name resolution on this network.") var disableDNS = false
    @Option(name: .customLong("label"), help: "Set a label KEY=VALUE.") var label: [String] = []
    @Option(name: [.short, .customLong("opt")], help: "Driver option KEY=VALUE (macvlan: parent=IFACE; bridge: mtu=N).") var opt: [String] = []
    @Option(name: .customLong("interface-name"), help: "The bridge's name on the host (default berthN).") var interfaceName: String?
    @Argument(help: "The network's name (default: berthN).") var name: String?

    func run() throws {
        let store = EngineContext.engine.networks
        var request = NetworkCreateOptions(name: name ?? {
            let taken = Set(store.list().map(\.name))
            return (1...).lazy.map { "berth\($0)" }.first { !taken.contains($0) }!
        }())
        request.driver = driver
        request.subnets = subnet
        request.gateways = gateway
        request.internal = `internal`
        request.ipv6 = ipv6
        request.disableDNS = disableDNS
        request.labels = try pairs(label, flag: "--label")
        request.options = try pairs(opt, flag: "-o")
        request.interfaceName = interfaceName
        printOut(try store.create(request).name)
    }
}

/// A network as templates see it (podman's field names).
private func networkRow(_ network: NetworkConfig) -> OutputFormat.Row {
    [
        ("Name", .string(network.name)),
        ("ID", .string(network.id)),
        ("Driver", .string(network.driver)),
        ("NetworkInterface", .string(network.networkInterface ?? "")),
        ("Created", .string(network.created ?? "")),
        ("Subnets", .string((network.subnets ?? []).map(\.subnet).joined(separator: ","))),
        ("IPv6Enabled", .bool(network.ipv6Enabled)),
        ("Internal", .bool(network.internal)),
        ("DNSEnabled", .bool(network.dnsEnabled)),
        ("Labels", .of(network.labels ?? [:])),
        ("Options", .of(network.options ?? [:])),
    ]
}

private func networkJSON(_ networks: [NetworkConfig]) throws -> String {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
    return String(decoding: try encoder.encode(networks), as: UTF8.self)
}

struct NetworkListCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "ls", abstract: "List networks.", aliases: ["list"])
    @Flag(name: .shortAndLong, help: "Only names.") var quiet = false
    @Flag(name: .customLong("no-trunc"), help: "Full ids.") var noTrunc = false
    @Option(help: "json, table, or a Go template ({{.Name}} {{.ID}} {{.Driver}} {{.Subnets}} …).") var format: String?
    @Option(name: .shortAndLong, help: "Filter: name=TEXT, id=PREFIX, driver=bridge|macvlan, label=KEY[=VALUE].") var filter: [String] = []

    func run() throws {
        var networks = EngineContext.engine.networks.list()
        for item in filter {
            let parts = item.split(separator: "=", maxSplits: 1).map(String.init)
            guard parts.count == 2, ["name", "id", "driver", "label"].contains(parts[0]) else {
                throw CommandFailure(code: 125, message: "--filter \"\(item)\": berth filters networks by name, id, driver and label")
            }
            networks = networks.filter { network in
                switch parts[0] {
                case "name": return network.name.contains(parts[1])
                case "id": return network.id.hasPrefix(parts[1])
                case "driver": return network.driver == parts[1]
                default:
                    let kv = parts[1].split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
                    return kv.count == 2 ? network.labels?[kv[0]] == kv[1] : network.labels?[kv[0]] != nil
                }
            }
        }
        if quiet {
            for network in networks { printOut(network.name) }
            return
        }
        if format == "json" {
            printOut(try networkJSON(networks))
            return
        }
        let rows = networks.map { network in
            var row = networkRow(network)
            if !noTrunc && format == nil { row[1] = ("ID", .string(String(network.id.prefix(12)))) }
            return row
        }
        do {
            let text = try OutputFormat.render(format, rows: rows, defaultTemplate: "{{.ID}}\t{{.Name}}\t{{.Driver}}",
                                               header: ["ID": "NETWORK ID", "Name": "NAME", "Driver": "DRIVER", "Subnets": "SUBNETS",
                                                        "NetworkInterface": "INTERFACE"])
            if !text.isEmpty { printOut(text) }
        } catch {
            throw CommandFailure(code: 125, message: error.message)
        }
    }
}

struct NetworkInspectCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "inspect", abstract: "Show networks as netavark's JSON.")
    @Option(name: .shortAndLong, help: "A Go template ({{.Subnets}}, {{.NetworkInterface}}) or json.") var format: String?
    @Argument(help: "Networks (names or ids).") var names: [String]

    func run() throws {
        let store = EngineContext.engine.networks
        var found: [NetworkConfig] = []
        var failed = false
        for name in names {
            do { found.append(try store.load(name)) } catch {
                globalOptions.report(error.message)
                failed = true
            }
        }
        if !found.isEmpty || !failed {
            if let format, format != "json" {
                try printInspect(found.map(networkRow), format: format)
            } else {
                printOut(try networkJSON(found))
            }
        }
        if failed { throw ExitCode_(code: 125) }
    }
}

struct NetworkRemoveCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "rm", abstract: "Remove networks.", aliases: ["remove"])
    @Flag(name: .shortAndLong, help: "Remove the containers that use them first (killing running ones).") var force = false
    @Argument(help: "Networks (names).") var names: [String]

    func run() throws {
        let engine = EngineContext.engine
        var code: Int32 = 0
        for name in names {
            do throws(EngineError) {
                let network = try engine.networks.load(name)
                let users = engine.usersOf(network: network.name)
                if !users.isEmpty && network.name != NetworkStore.defaultName {
                    guard force else {
                        globalOptions.report("network \(network.name) is in use by container(s) \(users.map(\.name).joined(separator: ", ")): remove them first, or use -f")
                        code = 2
                        continue
                    }
                    for container in users { try engine.remove(container, force: true, volumes: true) }
                }
                try engine.networks.remove(network.name)
                printOut(name)
            } catch {
                globalOptions.report(error.message)
                if code == 0 { code = 125 }
            }
        }
        if code != 0 { throw ExitCode_(code: code) }
    }
}

struct NetworkExistsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "exists", abstract: "Exit 0 if the network exists, 1 if not.")
    @Argument(help: "The network's name.") var name: String

    func run() throws {
        if (try? EngineContext.engine.networks.load(name)) == nil { throw ExitCode_(code: 1) }
    }
}

struct NetworkConnectCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "connect", abstract: "Connect a container to a network.")
    @Option(help: "Its IPv4 address on the network.") var ip: String?
    @Option(help: "Another DNS name for it on the network.") var alias: [String] = []
    @Argument(help: "The network.") var network: String
    @Argument(help: "The container.") var container: String

    func run() throws {
        let engine = EngineContext.engine
        try engine.connect(try engine.lookup(container), to: network, ip: ip, aliases: alias)
    }
}

struct NetworkDisconnectCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "disconnect", abstract: "Disconnect a container from a network.")
    @Flag(name: .shortAndLong, help: "Accepted for podman compatibility.") var force = false
    @Argument(help: "The network.") var network: String
    @Argument(help: "The container.") var container: String

    func run() throws {
        let engine = EngineContext.engine
        try engine.disconnect(try engine.lookup(container), from: network)
    }
}

struct NetworkPruneCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "prune", abstract: "Remove every network no container uses.")
    @Flag(name: .shortAndLong, help: "Do not ask (berth never asks).") var force = false

    func run() throws {
        let engine = EngineContext.engine
        let used = Set(engine.containers.list().flatMap { $0.config.networks.map(\.name) })
        for network in engine.networks.list() where network.name != NetworkStore.defaultName && !used.contains(network.name) {
            do {
                try engine.networks.remove(network.name)
                printOut(network.name)
            } catch {
                if error.kind == .notFound { continue }
                globalOptions.report(error.message)
            }
        }
    }
}

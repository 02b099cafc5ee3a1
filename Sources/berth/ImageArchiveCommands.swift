#if canImport(Glibc)
import Glibc
#endif
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import ArgumentParser
import BerthImage
import BerthOCI
import BerthOS
import BerthRegistry
import BerthRuntime

struct ImportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "import", abstract: "Make an image of a root file system tarball (plain, gzip or zstd).")
    @Option(name: .shortAndLong, help: "A Dockerfile instruction to apply (CMD, ENTRYPOINT, ENV, WORKDIR, USER, LABEL, EXPOSE, VOLUME, STOPSIGNAL).") var change: [String] = []
    @Option(name: .shortAndLong, help: "A history comment.") var message: String?
    @Flag(name: .shortAndLong, help: "Print only the image ID.") var quiet = false
    @Argument(help: "The tarball (- for standard input).") var tarball: String
    @Argument(help: "The image's name.") var name: String?

    func run() throws {
        var config = ImageConfiguration.Config()
        do { try ImageImporter.apply(change, to: &config) } catch { throw RuntimeError(.invalidArgument, error.message) }
        let reference = try name.map { text -> ImageReference in
            do { return try ImageReference(parsing: text) } catch { throw RuntimeError(.invalidArgument, "\(error)") }
        }
        var path = tarball
        if tarball != "-" {
            guard Files.exists(tarball) else { throw RuntimeError(.notFound, "\(tarball): no such file") }
            path = Files.absolute(tarball)
        }
        try ImageContext.enterStoreNamespace()
        signal(SIGPIPE, SIG_IGN)
        let store = ImageContext.store
        try store.prepare()
        if tarball == "-" {
            // Keep standard input in the store's tmp/ first (the layer needs a seekable copy anyway).
            path = try store.temporaryPath("import")
            let out = try FileDescriptor.open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode: 0o600)
            defer { out.close() }
            var buffer = [UInt8](repeating: 0, count: 1 << 20)
            while true {
                let n = try buffer.withUnsafeMutableBytes { try FileDescriptor.standardInput.read(into: $0) }
                if n == 0 { break }
                try buffer.withUnsafeBytes { try out.writeAll(UnsafeRawBufferPointer(rebasing: $0[0..<n])) }
            }
        }
        let source = path
        defer { if tarball == "-" { Files.removeTree(source) } }
        let importer = ImageImporter(store: store, rootless: ImageContext.rootless)
        let changes = change, message = message
        let record = try awaitResult { try await importer.importTarball(source, name: reference, changes: changes, message: message) }
        printOut(quiet ? record.id.hex : "sha256:" + record.id.hex)
    }
}

struct InfoCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "info", abstract: "Show how berth is set up here.")
    @Option(name: .shortAndLong, help: "json, or a Go template over the JSON's top level.") var format: String?

    func run() throws {
        let rootless = geteuid() != 0
        let store = ImageContext.store
        var name = utsname()
        uname(&name)
        let kernel = withUnsafeBytes(of: &name.release) { String(decoding: $0.prefix(while: { $0 != 0 }), as: UTF8.self) }
        let registries = (try? RegistriesConfiguration.load())
        let ids = SubordinateIDs.current()
        let records = store.images()
        let cgroupVersion = Files.exists("/sys/fs/cgroup/cgroup.controllers") ? "v2" : (Files.exists("/sys/fs/cgroup/unified/cgroup.controllers") ? "hybrid (v2 at /sys/fs/cgroup/unified)" : "v1")
        let info: [(String, JSONValue)] = [
            ("host", .object([
                "kernel": .string(kernel), "arch": .string(Platform.host.architecture), "os": .string("linux"),
                "rootless": .bool(rootless), "cgroupVersion": .string(cgroupVersion),
                "idMappings": .object([
                    "uidmap": .array(ids.uids.map { .string("\($0.lowerBound)-\($0.upperBound)") }),
                    "gidmap": .array(ids.gids.map { .string("\($0.lowerBound)-\($0.upperBound)") }),
                ]),
            ])),
            ("store", .object([
                "graphRoot": .string(store.root),
                "graphDriverName": .string(RootfsDriver.detect(rootless: rootless, upperOn: store.root).rawValue),
                "rootfs": .string(RootfsDriver.describe(rootless: rootless, upperOn: store.root)),
                "imageCount": .integer(Int64(records.count)),
                "layerCount": .integer(Int64(Files.list(store.layersDirectory).count)),
                "runRoot": .string(RuntimePaths.defaultStateRoot),
            ])),
            ("registries", .object([
                "search": .array((registries?.unqualifiedSearchRegistries ?? [ImageReference.defaultRegistry]).map { .string($0) }),
                "config": .string(RegistriesConfiguration.path(in: .current) ?? "none"),
            ])),
            ("version", .object(["berth": .string("0.1.0")])),
        ]
        if let format, format != "json" {
            do { printOut(try OutputFormat.render(format, rows: [info], defaultTemplate: "", header: [:])) } catch {
                throw RuntimeError(.invalidArgument, error.message)
            }
            return
        }
        if format == "json" {
            printOut(OutputFormat.object(info).jsonText(pretty: true))
            return
        }
        // YAML-like, as podman info prints by default.
        func emit(_ value: JSONValue, indent: String) -> String {
            guard case let .object(fields) = value else { return OutputFormat.plain(value) }
            return fields.keys.sorted().map { key -> String in
                let child = fields[key]!
                if case .object = child { return "\(indent)\(key):\n" + emit(child, indent: indent + "  ") }
                if case let .array(items) = child { return "\(indent)\(key):" + (items.isEmpty ? " []" : items.map { "\n\(indent)- \(OutputFormat.plain($0))" }.joined()) }
                return "\(indent)\(key): \(OutputFormat.plain(child))"
            }.joined(separator: "\n")
        }
        printOut(info.map { "\($0.0):\n" + emit($0.1, indent: "  ") }.joined(separator: "\n"))
    }
}

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
import BerthRegistry
import BerthRuntime
import Dispatch

/// What the image commands share: the store (global `--root` names it for
/// these commands), rootless entry into the store's user namespace, and a
/// bridge from the synchronous command to async registry work.
enum ImageContext {
    static var rootless: Bool { geteuid() != 0 || UserNamespaceSession.isInside }

    static var store: ImageStore {
        ImageStore(root: globalOptions.root ?? ImageStore.defaultRoot(rootless: rootless))
    }

    /// Rootless: continue inside the user namespace that maps the subordinate
    /// ids (before any thread exists).
    static func enterStoreNamespace() throws {
        if UserNamespaceSession.needed { try UserNamespaceSession.enter() }
    }

    static func registries() throws -> RegistriesConfiguration {
        try RegistriesConfiguration.load()
    }

    static func searchRegistries() -> [String] {
        (try? RegistriesConfiguration.load().unqualifiedSearchRegistries) ?? [ImageReference.defaultRegistry]
    }

    static func lookup(_ name: String) throws -> ImageRecord {
        try store.lookup(name, searchRegistries: searchRegistries())
    }
}

/// Runs async work from a synchronous command and waits for it.
final class ResultBox<T>: @unchecked Sendable { var result: Result<T, any Error>? }

func awaitResult<T: Sendable>(_ body: @escaping @Sendable () async throws -> T) throws -> T {
    let box = ResultBox<T>()
    let done = DispatchSemaphore(value: 0)
    Task {
        do { box.result = .success(try await body()) } catch { box.result = .failure(error) }
        done.signal()
    }
    done.wait()
    return try box.result!.get()
}

/// Runs `body` with a registry client and always shuts the client down.
func withRegistryClient<T: Sendable>(_ options: RegistryClient.Options,
                                     _ body: @escaping @Sendable (RegistryClient) async throws -> T) throws -> T {
    try awaitResult {
        let client = RegistryClient(options: options)
        do {
            let result = try await body(client)
            try? await client.shutdown()
            return result
        } catch {
            try? await client.shutdown()
            throw error
        }
    }
}

/// `--tls-verify=false` and friends.
struct RegistryFlags: ParsableArguments {
    @Option(name: .customLong("tls-verify"), help: "Require HTTPS with a verified certificate (false: plain HTTP or unverified HTTPS).")
    var tlsVerify: Bool?
    @Option(help: "Credentials USER[:PASSWORD] for the registry.") var creds: String?
    @Option(name: .customLong("authfile"), help: "Auth file to read (default as podman: $REGISTRY_AUTH_FILE, ${XDG_RUNTIME_DIR}/containers/auth.json, ~/.docker/config.json).")
    var authfile: String?

    func credentials() throws -> Credentials? {
        guard let creds else { return nil }
        let parts = creds.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false)
        guard parts.count == 2, !parts[0].isEmpty else {
            throw ValidationError("--creds \"\(creds.split(separator: ":").first ?? "")…\": expected USER:PASSWORD")
        }
        return Credentials(username: String(parts[0]), password: String(parts[1]))
    }

    func clientOptions() throws -> RegistryClient.Options {
        if let authfile { setenv("REGISTRY_AUTH_FILE", authfile, 1) }
        var options = RegistryClient.Options(tlsVerify: tlsVerify ?? true)
        if let given = try credentials() {
            options.credentials = { _, _ in given }
        }
        return options
    }
}

struct PullCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "pull", abstract: "Pull an image from a registry.")
    @Flag(name: .shortAndLong, help: "Print only the image ID.") var quiet = false
    @Option(help: "The platform to pull from an index, OS/ARCH[/VARIANT] (default: this host's).") var platform: String?
    @Option(help: "The architecture to pull (overrides --platform's).") var arch: String?
    @OptionGroup var registry: RegistryFlags
    @Argument(help: "The image reference.") var reference: String

    func run() throws {
        let wanted = try ImagePullOptions.platform(platform, arch: arch)
        try ImageContext.enterStoreNamespace()
        let options = try registry.clientOptions()
        let record = try pullImage(reference, platform: wanted, clientOptions: options, quiet: quiet)
        printOut(record.id.hex)
    }
}

enum ImagePullOptions {
    static func platform(_ text: String?, arch: String?) throws -> Platform {
        var result = Platform.host
        if let text {
            guard let parsed = Platform(parsing: text) else {
                throw ValidationError("--platform \"\(text)\": expected OS/ARCH[/VARIANT]")
            }
            result = parsed
        }
        if let arch { result.architecture = arch; result.variant = nil }
        return result
    }
}

/// Pulls with progress on stderr (bars on a terminal, one line per layer
/// otherwise), as podman prints it.
func pullImage(_ reference: String, platform: Platform, clientOptions: RegistryClient.Options, quiet: Bool) throws -> ImageRecord {
    signal(SIGPIPE, SIG_IGN)
    let store = ImageContext.store
    try store.prepare()
    let registries = try ImageContext.registries()
    let progress = PullProgress(quiet: quiet)
    let rootless = ImageContext.rootless
    return try withRegistryClient(clientOptions) { client in
        let puller = ImagePuller(store: store, client: client, registries: registries, rootless: rootless,
                                 report: { progress.event($0) })
        return try await puller.pull(reference, platform: platform)
    }
}

/// Progress lines for pull and push.
final class PullProgress: @unchecked Sendable {
    let quiet: Bool
    let terminal = FileDescriptor.standardError.isTerminal
    private let lock = NSLockish()
    private var order: [String] = []
    private var lines: [String: String] = [:]

    init(quiet: Bool) { self.quiet = quiet }

    func event(_ event: ImagePuller.Event) {
        guard !quiet else { return }
        lock.withLock {
            switch event {
            case let .trying(reference):
                write("Trying to pull \(reference)...\n")
            case let .blob(digest, state):
                let key = digest.description
                let text: String
                switch state {
                case .exists: text = "Copying blob \(digest.short) skipped: already exists"
                case let .progress(done, total):
                    guard terminal else { return }
                    text = "Copying blob \(digest.short) \(Self.bar(done, total))"
                case .done: text = "Copying blob \(digest.short) done"
                }
                if terminal {
                    if lines[key] == nil { order.append(key); write("\n") }
                    lines[key] = text
                    redraw()
                } else if case .progress = state {
                } else {
                    write(text + "\n")
                }
            case let .config(digest):
                write("Copying config \(digest.short) done\n")
            case .writingManifest:
                write("Writing manifest to image destination\n")
            }
        }
    }

    private func redraw() {
        // Move up to the first layer line, rewrite each.
        var text = "\u{1b}[\(order.count)A"
        for key in order { text += "\r\u{1b}[2K" + (lines[key] ?? "") + "\n" }
        write(text)
    }

    static func bar(_ done: Int64, _ total: Int64) -> String {
        let width = 30
        let fraction = total > 0 ? min(1, Double(done) / Double(total)) : 0
        let filled = Int(fraction * Double(width))
        return "[" + String(repeating: "=", count: filled) + String(repeating: "-", count: width - filled) + "] \(humanSize(done)) / \(humanSize(total))"
    }

    private func write(_ text: String) { try? FileDescriptor.standardError.writeAll(text) }
}

/// A tiny mutex (FoundationEssentials has no NSLock).
final class NSLockish: @unchecked Sendable {
    private var mutex = pthread_mutex_t()
    init() { pthread_mutex_init(&mutex, nil) }
    func withLock<T>(_ body: () throws -> T) rethrows -> T {
        pthread_mutex_lock(&mutex)
        defer { pthread_mutex_unlock(&mutex) }
        return try body()
    }
}

struct PushCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "push", abstract: "Push an image to a registry.")
    @Flag(name: .shortAndLong, help: "Print nothing but errors.") var quiet = false
    @Option(name: .customLong("chunk-size"), help: "Upload layers in chunks of this size (e.g. 5m); default: one request per layer.") var chunkSize: String?
    @Option(name: .customLong("digestfile"), help: "Write the pushed manifest's digest to this file.") var digestFile: String?
    @OptionGroup var registry: RegistryFlags
    @Argument(help: "The local image.") var source: String
    @Argument(help: "Where to push it (default: the image's name).") var destination: String?

    func run() throws {
        let chunk = try chunkSize.map { text -> Int in
            guard let bytes = ResourceFlags.parseBytes(text), bytes > 0 else { throw ValidationError("--chunk-size \"\(text)\": expected a size like 5m") }
            return Int(bytes)
        }
        try ImageContext.enterStoreNamespace()
        signal(SIGPIPE, SIG_IGN)
        let store = ImageContext.store
        let record = try ImageContext.lookup(source)
        let target = destination ?? source
        let reference: ImageReference
        do { reference = try ImageReference(parsing: target) } catch { throw RuntimeError(.invalidArgument, "\(error)") }
        let registries = try ImageContext.registries()
        let options = try registry.clientOptions()
        let quiet = quiet
        let digest = try withRegistryClient(options) { client in
            let pusher = ImagePusher(store: store, client: client, registries: registries, chunkSize: chunk,
                                     report: { line in if !quiet { try? FileDescriptor.standardError.writeAll(line + "\n") } })
            return try await pusher.push(record, to: reference)
        }
        if let digestFile { try? Files.writeAtomically(digestFile, Array(digest.description.utf8)) }
    }
}

struct ImagesCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "images", abstract: "List images.", aliases: ["ls", "list"])
    @Flag(name: .shortAndLong, help: "Print only image IDs.") var quiet = false
    @Flag(help: "Show digests.") var digests = false
    @Flag(name: .customLong("no-trunc"), help: "Print full image IDs.") var noTrunc = false
    @Flag(name: .shortAndLong, help: "Accepted for compatibility (berth has no intermediate images).") var all = false
    @Option(help: "json, table, or a Go template ({{.Repository}} {{.Tag}} {{.ID}} {{.Digest}} {{.Created}} {{.CreatedSince}} {{.Size}}).") var format: String?
    @Argument(help: "Only images whose name matches (REPOSITORY[:TAG]).") var filter: String?

    func run() throws {
        let store = ImageContext.store
        var records = store.images()
        if let filter {
            let wanted = try? ImageReference(parsing: filter)
            records = records.filter { record in
                record.names.contains { name in
                    guard let wanted, let have = try? ImageReference(parsing: name) else { return name.contains(filter) }
                    let repoMatches = have.name == wanted.name || have.repository == wanted.repository || have.repository.hasSuffix("/" + filter.split(separator: ":").first!)
                    return repoMatches && (!filter.contains(":") || have.tag == wanted.tag)
                }
            }
        }
        if quiet {
            var seen = Set<String>()
            for record in records where seen.insert(record.id.hex).inserted {
                printOut(noTrunc ? record.id.description : record.id.short)
            }
            return
        }
        var rows: [OutputFormat.Row] = []
        for record in records {
            let names = record.names.isEmpty ? [""] : record.names
            for name in names {
                var repository = "<none>", tag = "<none>"
                if let reference = try? ImageReference(parsing: name), !name.isEmpty {
                    repository = reference.name
                    tag = reference.tag ?? "<none>"
                }
                let digest = record.manifestDigest.description
                rows.append([
                    ("Repository", .string(repository)), ("Tag", .string(tag)),
                    ("ID", .string(noTrunc ? record.id.description : record.id.short)),
                    ("Digest", .string(digest)),
                    ("CreatedSince", .string(humanSince(record.created))),
                    ("Created", .string(record.created ?? "")),
                    ("Size", .string(humanSize(record.size))),
                    ("Names", .array(record.names.map { .string($0) })),
                ])
            }
        }
        let template = digests ? "{{.Repository}}\t{{.Tag}}\t{{.Digest}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}"
                               : "{{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}"
        if format == "json" {
            let json = records.map { record -> JSONValue in
                .object([
                    "Id": .string(record.id.hex), "Names": .array(record.names.map { .string($0) }),
                    "Digest": .string(record.manifestDigest.description), "Size": .integer(record.size),
                    "Created": .string(record.created ?? ""),
                    "RepoDigests": .array(record.digests.map { .string($0) }),
                ])
            }
            printOut(JSONValue.array(json).jsonText(pretty: true))
            return
        }
        do {
            let text = try OutputFormat.render(format, rows: rows, defaultTemplate: template,
                                               header: ["Repository": "REPOSITORY", "Tag": "TAG", "ID": "IMAGE ID", "CreatedSince": "CREATED", "Size": "SIZE", "Digest": "DIGEST"])
            if !text.isEmpty { printOut(text) }
        } catch {
            throw RuntimeError(.invalidArgument, error.message)
        }
    }
}

struct ImageInspectCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "inspect", abstract: "Show images' details as JSON.")
    @Option(name: .shortAndLong, help: "json (default) or a Go template.") var format: String?
    @Argument(help: "Images.") var images: [String]

    func run() throws {
        var results: [OutputFormat.Row] = []
        var failures: [String] = []
        for name in images {
            do {
                let record = try ImageContext.lookup(name)
                results.append(try ImageDetails.inspect(record, store: ImageContext.store))
            } catch {
                failures.append("\(error)")
            }
        }
        if !results.isEmpty {
            do {
                if format == nil || format == "json" {
                    printOut(JSONValue.array(results.map { OutputFormat.object($0) }).jsonText(pretty: true))
                } else {
                    printOut(try OutputFormat.render(format, rows: results, defaultTemplate: "", header: [:]))
                }
            } catch { throw RuntimeError(.invalidArgument, error.message) }
        }
        if let first = failures.first {
            for failure in failures.dropLast() { globalOptions.report(failure) }
            throw RuntimeError(.notFound, failures.count > 1 ? failures.last! : first)
        }
    }
}

enum ImageDetails {
    /// docker/podman-like `inspect` JSON for an image.
    static func inspect(_ record: ImageRecord, store: ImageStore) throws -> OutputFormat.Row {
        let configBytes = try store.readBlob(record.id)
        let config = (try? JSONDecoder().decode(JSONValue.self, from: Data(configBytes))) ?? .null
        let parsed = try? JSONDecoder().decode(ImageConfiguration.self, from: Data(configBytes))
        var inner: JSONValue = .object([:])
        if case let .object(top) = config, let value = top["config"] { inner = value }
        return [
            ("Id", .string(record.id.hex)),
            ("Digest", .string(record.manifestDigest.description)),
            ("RepoTags", .array(record.names.map { .string($0) })),
            ("RepoDigests", .array(record.digests.map { .string($0) })),
            ("Created", .string(record.created ?? "")),
            ("Config", inner),
            ("Architecture", .string(record.platform.architecture)),
            ("Os", .string(record.platform.os)),
            ("Size", .integer(record.size)),
            ("VirtualSize", .integer(record.size)),
            ("RootFS", .object(["Type": .string("layers"), "Layers": .array(record.layers.map { .string($0.diffID.description) })])),
            ("History", JSONValue.of(parsed?.history ?? [])),
            ("ManifestType", .string(record.manifestMediaType)),
            ("GraphDriver", .object(["Name": .string("overlay"), "Data": .object([
                "LowerDir": .string(record.layers.reversed().map { store.layerDiffPath($0.chainID) }.joined(separator: ":")),
            ])])),
        ]
    }
}

struct TagCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "tag", abstract: "Give an image more names.")
    @Argument(help: "The image.") var image: String
    @Argument(help: "New names.") var names: [String]

    func run() throws {
        guard !names.isEmpty else { throw ValidationError("tag needs at least one new name") }
        let full = try names.map { name -> String in
            do { return try ImageReference(parsing: name).description } catch { throw RuntimeError(.invalidArgument, "\(error)") }
        }
        try ImageContext.enterStoreNamespace()
        let store = ImageContext.store
        try store.withLock {
            let record = try ImageContext.lookup(image)
            for name in full where !name.contains("@") { try store.tag(record.id, as: name) }
        }
    }
}

struct RmiCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "rmi", abstract: "Remove images.")
    @Flag(name: .shortAndLong, help: "Remove the image even if it has several names (all of them go).") var force = false
    @Flag(name: .shortAndLong, help: "Remove all images.") var all = false
    @Argument(help: "Images (names or IDs).") var images: [String] = []

    func run() throws {
        guard all || !images.isEmpty else { throw ValidationError("rmi needs an image (or --all)") }
        try ImageContext.enterStoreNamespace()
        let store = ImageContext.store
        var failures: [String] = []
        try store.withLock {
            let targets = all ? store.images().map(\.id.hex) : images
            for name in targets {
                do {
                    guard var record = try? ImageContext.lookup(name) else { throw RuntimeError(.notFound, "\(name): image not known") }
                    let byName = record.names.first { $0 == ((try? ImageReference(parsing: name))?.description ?? "") }
                    if let byName, record.names.count > 1, !all {
                        // Removing one of several names only untags.
                        record.names.removeAll { $0 == byName }
                        try store.save(record)
                        printOut("Untagged: \(byName)")
                        continue
                    }
                    if record.names.count > 1, !force, !all {
                        throw RuntimeError(.failed, "image \(record.id.short) has \(record.names.count) names (\(record.names.joined(separator: ", "))): remove them one by one or use -f")
                    }
                    for tag in record.names { printOut("Untagged: \(tag)") }
                    store.deleteRecord(record.id)
                    printOut("Deleted: \(record.id.hex)")
                } catch {
                    failures.append("\(error)")
                }
            }
            store.collectGarbage()
        }
        if !failures.isEmpty {
            for failure in failures.dropLast() { globalOptions.report(failure) }
            throw RuntimeError(.notFound, failures.last!)
        }
    }
}

struct ImagePruneCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "prune", abstract: "Remove images without names (with -a: all images).")
    @Flag(name: .shortAndLong, help: "Remove every image, not only unnamed ones.") var all = false
    @Flag(name: .shortAndLong, help: "Do not ask (berth never asks).") var force = false

    func run() throws {
        try ImageContext.enterStoreNamespace()
        let store = ImageContext.store
        try store.withLock {
            for record in store.images() where all || record.names.isEmpty {
                store.deleteRecord(record.id)
                printOut(record.id.hex)
            }
            store.collectGarbage()
        }
    }
}

struct ImageCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "image", abstract: "Manage images.",
        subcommands: [ImagesCommand.self, ImageInspectCommand.self, PullCommand.self, PushCommand.self, TagCommand.self,
                      RmiCommand.self, ImagePruneCommand.self, SaveCommand.self, LoadCommand.self, ImportCommand.self]
    )
}

struct SystemCheckCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "check", abstract: "Verify the store, and repair what can be repaired.")
    @Flag(help: "Remove what is broken (images that need it are removed too: pull them again).") var repair = false
    @Flag(help: "Skip re-hashing every blob.") var quick = false

    func run() throws {
        try ImageContext.enterStoreNamespace()
        let store = ImageContext.store
        let report = try store.withLock { store.check(repair: repair, verifyContent: !quick) }
        for line in report.leftovers { printOut("removed leftover of an interrupted operation: tmp/\(line)") }
        for line in report.repaired { printOut("repaired: \(line)") }
        for line in report.problems { printOut("problem: \(line)") }
        printOut("\(report.images) images, \(report.layers) layers, \(report.blobs) blobs: " + (report.clean ? "store is consistent" : "\(report.problems.count) problems (berth system check --repair)"))
        if !report.clean { throw ExitCode_(code: 1) }
    }
}

struct SystemCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "system", abstract: "Store maintenance.",
                                                    subcommands: [SystemCheckCommand.self, InfoCommand.self, SystemDfCommand.self, SystemPruneCommand.self])
}

struct LoginCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "login", abstract: "Log in to a registry (credentials go to the auth file).")
    @Option(name: .shortAndLong) var username: String?
    @Option(name: .shortAndLong) var password: String?
    @Flag(name: .customLong("password-stdin"), help: "Read the password from standard input.") var passwordStdin = false
    @Option(name: .customLong("tls-verify")) var tlsVerify: Bool?
    @Option(name: .customLong("authfile")) var authfile: String?
    @Argument(help: "The registry (host[:port]).") var registry: String

    func run() throws {
        if let authfile { setenv("REGISTRY_AUTH_FILE", authfile, 1) }
        guard let username, !username.isEmpty else { throw ValidationError("login needs --username (berth does not prompt)") }
        var secret = password
        if passwordStdin {
            let bytes = (try? FileDescriptor.standardInput.readAll(limit: 1 << 16)) ?? []
            secret = String(decoding: bytes, as: UTF8.self).trimmed
        }
        guard let secret, !secret.isEmpty else { throw ValidationError("login needs --password or --password-stdin") }
        let host = AuthFile.normaliseKey(registry)
        let credentials = Credentials(username: username, password: secret)
        let insecure = tlsVerify == false || ((try? ImageContext.registries().registry(for: ImageReference(registry: host, repository: "x")))??.insecure ?? false)
        let verify = tlsVerify ?? true
        try withRegistryClient(RegistryClient.Options(tlsVerify: verify)) { client in
            try await client.ping(registry: host, insecure: insecure, credentials: credentials)
        }
        try AuthFile.login(host, credentials: credentials)
        printOut("Login Succeeded!")
    }
}

struct LogoutCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "logout", abstract: "Remove a registry's credentials from the auth file.")
    @Option(name: .customLong("authfile")) var authfile: String?
    @Argument(help: "The registry.") var registry: String

    func run() throws {
        if let authfile { setenv("REGISTRY_AUTH_FILE", authfile, 1) }
        let host = AuthFile.normaliseKey(registry)
        if try AuthFile.logout(host) {
            printOut("Removed login credentials for \(host)")
        } else {
            throw RuntimeError(.notFound, "not logged into \(host)")
        }
    }
}

struct UnshareCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "unshare", abstract: "Run a command in the user namespace rootless store work uses (as podman unshare).")
    @Argument(parsing: .captureForPassthrough, help: "The command (default: $SHELL).") var command: [String] = []

    func run() throws {
        try ImageContext.enterStoreNamespace()
        var arguments = command
        if arguments.first == "--" { arguments.removeFirst() }
        if arguments.isEmpty { arguments = [getenv("SHELL").map { String(cString: $0) } ?? "/bin/sh"] }
        let path = arguments[0].contains("/") ? arguments[0] : (["/usr/local/bin/", "/usr/bin/", "/bin/", "/usr/sbin/", "/sbin/"]
            .map { $0 + arguments[0] }.first { access($0, X_OK) == 0 } ?? arguments[0])
        let error = execute(path: path, arguments: arguments, environment: Engine.environment())
        throw RuntimeError(.notFound, "\(arguments[0]): \(error)")
    }
}

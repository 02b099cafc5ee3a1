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
import BerthRuntime

/// `berth run [flags] IMAGE [COMMAND...]`: a container from an image, in the
/// foreground, removed when it exits. (The full podman-style engine —
/// detached containers, ps, logs, volumes — is the engine issue's; this is
/// the image path: the image's config becomes the Spec and its layers the
/// overlay root.) `berth run` stays runc's `run [-b BUNDLE] ID` when a bundle
/// is named with -b/--bundle, or when ./config.json exists and the only
/// argument is an id.
struct ImageRunOptions: ParsableArguments {
    @Flag(help: "Remove the container when it exits (always the case for now).") var rm = false
    @Flag(name: .shortAndLong, help: "Keep standard input open.") var interactive = false
    @Flag(name: .shortAndLong, help: "Allocate a pseudo-terminal.") var tty = false
    @Option(name: .shortAndLong, help: "Set an environment variable (KEY=VALUE, or KEY to take it from here).") var env: [String] = []
    @Option(help: "Override the image's entrypoint.") var entrypoint: String?
    @Option(name: .shortAndLong, help: "Working directory inside the container.") var workdir: String?
    @Option(name: .shortAndLong, help: "UID[:GID] to run as (numeric).") var user: String?
    @Option(help: "Container host name.") var hostname: String?
    @Option(help: "none (own network namespace with lo, the default until bridge networking) or host.") var network: String = "none"
    @Option(help: "always, missing (default) or never.") var pull: String = "missing"
    @Option(name: .customLong("tls-verify"), help: "For a pull: require HTTPS with a verified certificate.") var tlsVerify: Bool?
    @Option(help: "For a pull: OS/ARCH[/VARIANT].") var platform: String?
    @Flag(name: .customLong("read-only"), help: "Mount the root file system read-only.") var readOnly = false
    @Argument(help: "The image.") var image: String
    @Argument(parsing: .captureForPassthrough, help: "Command and arguments (default: the image's).") var command: [String] = []
}

enum ImageRun {
    /// Whether `berth run ARGS` means an image (not runc's bundle run).
    static func applies(_ arguments: [String]) -> Bool {
        // Flags only runc's `run` has.
        let runcOnly: Set<String> = ["-b", "--bundle", "--pid-file", "--console-socket", "--no-pivot", "--preserve-fds",
                                     "--no-new-keyring", "--no-subreaper", "--keep"]
        let runcValued: Set<String> = ["-b", "--bundle", "--pid-file", "--console-socket", "--preserve-fds"]
        if arguments.contains(where: { runcOnly.contains($0.split(separator: "=", maxSplits: 1).first.map(String.init) ?? $0) }) {
            return false
        }
        if arguments.contains("--help") || arguments.contains("-h") { return false }
        var positional: [String] = []
        var index = 0
        while index < arguments.count {
            let argument = arguments[index]
            if runcValued.contains(argument) { index += 2; continue }
            if !argument.hasPrefix("-") { positional.append(argument) }
            index += 1
        }
        if Files.exists("config.json") && positional.count <= 1 { return false }
        return !positional.isEmpty
    }

    static func run(_ arguments: [String]) throws -> Int32 {
        let options: ImageRunOptions
        do { options = try ImageRunOptions.parse(arguments) } catch {
            let message = ImageRunOptions.message(for: error).split(separator: "\n").first.map(String.init) ?? "invalid arguments"
            throw RuntimeError(.invalidArgument, message.hasPrefix("Error: ") ? String(message.dropFirst(7)) : message)
        }
        guard ["always", "missing", "never"].contains(options.pull) else {
            throw RuntimeError(.invalidArgument, "--pull \"\(options.pull)\": expected always, missing or never")
        }
        guard ["none", "host"].contains(options.network) else {
            throw RuntimeError(.invalidArgument, "--network \"\(options.network)\": berth supports none and host so far")
        }
        let rootless = geteuid() != 0
        let store = ImageContext.store
        var record = try? ImageContext.lookup(options.image)
        if options.pull == "always" || (record == nil && options.pull == "missing") {
            // Pulling needs the store's user namespace when rootless: a child berth does it.
            var pullArguments = ["berth"]
            if let root = globalOptions.root { pullArguments += ["--root", root] }
            pullArguments += ["pull"]
            if let tls = options.tlsVerify { pullArguments += ["--tls-verify=\(tls)"] }
            if let platform = options.platform { pullArguments += ["--platform", platform] }
            pullArguments += [options.image]
            let result = try Subprocess.run("/proc/self/exe", arguments: pullArguments, environment: currentEnvironment())
            guard result.status == .exited(0) else { throw ExitCode_(code: 125) }
            record = try ImageContext.lookup(options.image)
        }
        guard let record else {
            throw RuntimeError(.notFound, "\(options.image): image not known (--pull never)")
        }
        let configBytes = try store.readBlob(record.id)
        guard let config = try? JSONDecoder().decode(ImageConfiguration.self, from: Data(configBytes)) else {
            throw RuntimeError(.invalidArgument, "image \(record.id.short) has an invalid config")
        }
        let container = try ImageRun.prepare(record: record, config: config, options: options, store: store, rootless: rootless)
        defer { ImageRun.remove(container.directory, rootless: rootless) }
        var launch = LaunchOptions(id: container.id, bundle: container.directory, mode: .runForeground)
        launch.cgroupMode = globalOptions.cgroups
        return try Launcher.launch(launch, paths: RuntimePaths(root: nil))
    }

    struct Prepared {
        var id: String
        var directory: String
    }

    static func prepare(record: ImageRecord, config: ImageConfiguration, options: ImageRunOptions,
                        store: ImageStore, rootless: Bool) throws -> Prepared {
        let inner = config.config ?? ImageConfiguration.Config()
        var args: [String] = []
        let entrypoint = options.entrypoint.map { $0.isEmpty ? [] : [$0] } ?? inner.Entrypoint ?? []
        args = entrypoint + (options.command.isEmpty ? (options.entrypoint == nil ? inner.Cmd ?? [] : []) : options.command)
        guard !args.isEmpty else {
            throw RuntimeError(.invalidArgument, "no command: the image has no Entrypoint or Cmd, give one after the image name")
        }
        var spec: Spec
        if rootless {
            spec = Spec.rootless(uid: getuid(), gid: getgid())
            let ids = SubordinateIDs.current()
            if !ids.uids.isEmpty, !ids.gids.isEmpty {
                let maps = ids.mappings(ownUID: getuid(), ownGID: getgid())
                spec.linux?.uidMappings = maps.uid
                spec.linux?.gidMappings = maps.gid
            }
        } else {
            spec = Spec.default()
        }
        if options.network == "none" {
            if !(spec.linux?.namespaces?.contains { $0.type == "network" } ?? false) {
                spec.linux?.namespaces?.append(LinuxNamespace(type: "network"))
            }
        } else {
            spec.linux?.namespaces?.removeAll { $0.type == "network" }
        }
        var env = inner.Env ?? ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]
        for item in options.env {
            let key = String(item.split(separator: "=", maxSplits: 1)[0])
            let value: String
            if item.contains("=") { value = item } else if let here = getenv(key) { value = "\(key)=\(String(cString: here))" } else { continue }
            env.removeAll { $0.hasPrefix(key + "=") }
            env.append(value)
        }
        if options.tty, !env.contains(where: { $0.hasPrefix("TERM=") }) { env.append("TERM=xterm") }
        let id = ImageRun.newID()
        spec.hostname = options.hostname ?? String(id.prefix(12))
        spec.process?.args = args
        spec.process?.env = env
        spec.process?.terminal = options.tty
        spec.process?.cwd = options.workdir ?? (inner.WorkingDir.flatMap { $0.isEmpty ? nil : $0 } ?? "/")
        if let user = options.user ?? inner.User, !user.isEmpty {
            let parts = user.split(separator: ":", maxSplits: 1)
            guard let uid = UInt32(parts[0]), parts.count == 1 || UInt32(parts[1]) != nil else {
                throw RuntimeError(.invalidArgument, "user \"\(user)\": only numeric UID[:GID] is supported so far")
            }
            spec.process?.user = User(uid: uid, gid: parts.count > 1 ? UInt32(parts[1])! : 0)
        }
        spec.root = Root(path: "rootfs", readonly: options.readOnly)
        let directory = store.root + "/containers/" + id
        let driver = RootfsDriver.detect(rootless: rootless)
        let overlay = RootfsOverlay(
            driver: driver == .fuseOverlayfs ? .fuseOverlayfs : driver == .copy ? .copy : .overlay,
            layersDirectory: store.layersDirectory,
            lower: record.layers.reversed().map { "\($0.chainID.hex)/diff" },
            upper: directory + "/upper", work: directory + "/work", userxattr: rootless)
        if driver == .fuseOverlayfs {
            // The container's init runs fuse-overlayfs after it has entered its
            // cgroup, whose device program must let it open /dev/fuse.
            var resources: [String: JSONValue] = [:]
            if case let .object(existing)? = spec.linux?.resources { resources = existing }
            var devices: [JSONValue] = []
            if case let .array(existing)? = resources["devices"] { devices = existing }
            devices.append(.object(["allow": .bool(true), "type": .string("c"), "major": .integer(10), "minor": .integer(229), "access": .string("rwm")]))
            resources["devices"] = .array(devices)
            spec.linux?.resources = .object(resources)
        }
        var annotations = spec.annotations ?? [:]
        annotations[RootfsOverlay.annotation] = String(decoding: try JSONEncoder().encode(overlay), as: UTF8.self)
        annotations["run.berth.image"] = record.id.description
        spec.annotations = annotations
        do {
            for dir in [directory + "/upper", directory + "/work", directory + "/rootfs"] {
                try Files.makeDirectories(dir, mode: 0o700)
            }
            chmod(directory + "/upper", 0o755)
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            try Files.writeAtomically(directory + "/config.json", Array(try encoder.encode(spec)), mode: 0o600)
        } catch {
            Files.removeTree(directory)
            throw RuntimeError(.failed, "cannot prepare the container in \(directory): \(error)")
        }
        return Prepared(id: id, directory: directory)
    }

    /// Removes a container's directory. Rootless, what the container made
    /// as another of its users belongs to a subordinate id the caller may not
    /// remove: that part goes through `berth unshare rm -rf`.
    static func remove(_ directory: String, rootless: Bool) {
        Files.removeTree(directory)
        guard rootless, Files.exists(directory) else { return }
        _ = try? Subprocess.run("/proc/self/exe", arguments: ["berth", "unshare", "rm", "-rf", "--", directory],
                                environment: currentEnvironment())
    }

    static func newID() -> String {
        var bytes = [UInt8](repeating: 0, count: 32)
        for i in bytes.indices { bytes[i] = UInt8.random(in: 0...255) }
        return ImageStore.hexString(bytes)
    }

    static func currentEnvironment() -> [String] {
        var result: [String] = []
        var pointer = berth_environ_pointer()
        while let entry = pointer?.pointee {
            result.append(String(cString: entry))
            pointer = pointer?.advanced(by: 1)
        }
        return result
    }
}

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
import BerthRuntime
import CBerth

// attach, top, stats, cp, commit, export, system df and system prune.
// The work is the engine's (ContainerTools.swift); these parse and print.

struct AttachCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "attach",
        abstract: "Attach to a detached container: its output from now on, your input to its stdin, until it exits; exit with its code.",
        discussion: "Through the monitor's attach socket. Input goes to the container with -i (or its terminal with -t -i); signals berth gets (INT, TERM, HUP, QUIT, USR1, USR2) go to the container unless --sig-proxy=false.")
    @Flag(name: .customLong("no-stdin"), help: "Do not forward standard input.") var noStdin = false
    @Option(name: .customLong("sig-proxy"), help: "Forward signals to the container (default true).") var sigProxy = true
    @Argument(help: "The container (name or id).") var container: String

    func run() throws {
        let engine = EngineContext.engine
        let found = try engine.lookup(container)
        guard engine.isRunning(found) else {
            throw CommandFailure(code: 125, message: "you can only attach to running containers: \(found.name) is \(found.state.status)")
        }
        // Its output goes straight to the caller that started it, past the monitor (the message is podman's).
        if found.config.loggingDriver.isPassthrough {
            throw CommandFailure(code: 125, message: "this container is using the '\(found.config.loggingDriver.rawValue)' log driver, cannot attach")
        }
        guard let socket = AttachSocket.connect(directory: engine.containers.path(found.id)) else {
            throw CommandFailure(code: 125, message: "container \(found.name) has no monitor to attach to (it runs in the foreground of another berth)")
        }
        defer { close(socket) }
        signal(SIGPIPE, SIG_IGN)
        let forwardInput = !noStdin && found.config.interactive
        var saved: UnsafeMutableRawPointer? = nil
        if forwardInput && found.config.tty && FileDescriptor.standardInput.isTerminal { _ = berth_tty_make_raw(0, &saved) }
        defer { if saved != nil { _ = berth_tty_restore(0, saved) } }
        let proxied: [Int32] = [SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2]
        if sigProxy { _ = berth_block_all_signals(nil) }
        let signals = sigProxy ? berth_signalfd_all() : -1
        defer { if signals >= 0 { close(signals) } }
        var pending: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        var readInput = forwardInput
        loop: while true {
            var fds = [pollfd(fd: socket, events: Int16(POLLIN), revents: 0)]
            if readInput { fds.append(pollfd(fd: 0, events: Int16(POLLIN), revents: 0)) }
            if signals >= 0 { fds.append(pollfd(fd: signals, events: Int16(POLLIN), revents: 0)) }
            if poll(&fds, nfds_t(fds.count), -1) < 0 { if errno == EINTR { continue }; break }
            for entry in fds where entry.revents != 0 {
                if entry.fd == socket {
                    let n = buffer.withUnsafeMutableBytes { read(socket, $0.baseAddress, $0.count) }
                    if n <= 0 { break loop } // the container exited
                    pending += buffer[0..<n]
                    // Frames: stream, 4-byte big-endian length, bytes.
                    while pending.count >= 5 {
                        let length = Int(pending[1]) << 24 | Int(pending[2]) << 16 | Int(pending[3]) << 8 | Int(pending[4])
                        guard pending.count >= 5 + length else { break }
                        let output = pending[0] == 2 ? FileDescriptor.standardError : FileDescriptor.standardOutput
                        try? output.writeAll(pending[5..<(5 + length)])
                        pending.removeFirst(5 + length)
                    }
                } else if entry.fd == 0 {
                    let n = buffer.withUnsafeMutableBytes { read(0, $0.baseAddress, $0.count) }
                    if n <= 0 { readInput = false; continue }
                    _ = buffer.withUnsafeBytes { send(socket, $0.baseAddress, n, Int32(MSG_NOSIGNAL)) }
                } else if entry.fd == signals {
                    while true {
                        let number = berth_signalfd_read(signals)
                        if number <= 0 { break }
                        if proxied.contains(number) { try? engine.kill(found, signal: number) }
                    }
                }
            }
        }
        guard let done = engine.waitForExit(found, timeout: 10) else { return } // removed (--rm)
        guard done.state.status == "exited" || done.state.status == "created" else { return } // restarted
        guard let code = done.state.exitCode else {
            throw CommandFailure(code: 125, message: "container \(found.name) ended, but its exit code is unknown")
        }
        if code != 0 { throw ExitCode_(code: code) }
    }
}

struct TopCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "top", abstract: "Show a container's processes.",
        discussion: """
            With no options: USER PID PPID %CPU ELAPSED TTY TIME COMMAND, users and pids as the container sees them. \
            Options are podman's descriptors (\(TopCommand.descriptors.keys.sorted().joined(separator: ", "))), \
            separate or comma-separated; anything else is given to ps(1), whose rows are shown for the container's processes.
            """)
    @Argument(help: "The container (name or id).") var container: String
    @Argument(parsing: .captureForPassthrough, help: "Descriptors, or ps(1) options.") var options: [String] = []

    /// podman's descriptors: column title and value.
    static let descriptors: [String: (String, @Sendable (ContainerProcess, TopNames) -> String)] = [
        "args": ("COMMAND", { p, _ in p.arguments.isEmpty ? "[\(p.command)]" : p.arguments.joined(separator: " ") }),
        "comm": ("COMMAND", { p, _ in p.command }),
        "etime": ("ELAPSED", { p, _ in Engine.goDuration(nanoseconds: p.elapsedNanoseconds) }),
        "group": ("GROUP", { p, n in n.group(p.gid) }),
        "hgroup": ("HGROUP", { p, _ in TopNames.hostGroup(p.hostGID) }),
        "hpid": ("HPID", { p, _ in String(p.hostPID) }),
        "huser": ("HUSER", { p, _ in TopNames.hostUser(p.hostUID) }),
        "nice": ("NI", { p, _ in String(p.nice) }),
        "pcpu": ("%CPU", { p, _ in
            Engine.fixed(p.elapsedNanoseconds > 0 ? Double(p.cpuNanoseconds) / Double(p.elapsedNanoseconds) * 100 : 0, decimals: 3)
        }),
        "pgid": ("PGID", { p, _ in String(p.processGroup) }),
        "pid": ("PID", { p, _ in String(p.pid) }),
        "ppid": ("PPID", { p, _ in String(p.parentPID) }),
        "rgroup": ("RGROUP", { p, n in n.group(p.realGID) }),
        "rss": ("RSS", { p, _ in String(p.residentKiB) }),
        "ruser": ("RUSER", { p, n in n.user(p.realUID) }),
        "state": ("STATE", { p, _ in p.state }),
        "stime": ("STIME", { p, _ in Timestamps.format(seconds: p.startTime, nanoseconds: 0).prefix(19).replacing("T", with: " ") + " UTC" }),
        "time": ("TIME", { p, _ in Engine.goDuration(nanoseconds: p.cpuNanoseconds) }),
        "tty": ("TTY", { p, _ in p.tty }),
        "user": ("USER", { p, n in n.user(p.uid) }),
        "vsz": ("VSZ", { p, _ in String(p.virtualKiB) }),
    ]

    static let defaultDescriptors = ["user", "pid", "ppid", "pcpu", "etime", "tty", "time", "args"]

    func run() throws {
        let engine = EngineContext.engine
        let found = try engine.lookup(container)
        guard engine.isRunning(found) else {
            throw CommandFailure(code: 125, message: "top can only be used on running containers: \(found.name) is \(found.state.status)")
        }
        var arguments = options.first == "--" ? Array(options.dropFirst()) : options
        arguments = arguments.flatMap { $0.split(separator: ",").map(String.init) }
        let processes = try engine.processes(found)
        if arguments.isEmpty || arguments.allSatisfy({ TopCommand.descriptors[$0] != nil }) {
            let chosen = arguments.isEmpty ? TopCommand.defaultDescriptors : arguments
            let names = TopNames(root: "/proc/\(found.state.pid)/root")
            var lines = [chosen.map { TopCommand.descriptors[$0]!.0 }.joined(separator: "\t")]
            for process in processes {
                lines.append(chosen.map { TopCommand.descriptors[$0]!.1(process, names) }.joined(separator: "\t"))
            }
            printOut(OutputFormat.align(lines))
            return
        }
        // ps(1) options: its rows for the container's processes (host pids, host users).
        let candidates: [String] = ["/usr/bin/ps", "/bin/ps"]
        let program = candidates.first { access($0, X_OK) == 0 }
        guard let program else {
            throw CommandFailure(code: 125, message: "ps(1) options need /bin/ps, which is not installed; use descriptors (\(TopCommand.descriptors.keys.sorted().joined(separator: ", ")))")
        }
        let result = try captureOutput(program, ["ps"] + (options.first == "--" ? Array(options.dropFirst()) : options))
        let lines = result.split(separator: "\n", omittingEmptySubsequences: true)
        guard let header = lines.first, let column = header.split(separator: " ").firstIndex(of: "PID") else {
            throw CommandFailure(code: 125, message: "ps \(options.joined(separator: " ")) printed no PID column: top needs one to pick the container's processes")
        }
        printOut(String(header))
        let wanted = Set(processes.map(\.hostPID))
        for line in lines.dropFirst() {
            let fields = line.split(separator: " ")
            if column < fields.count, let pid = pid_t(fields[column]), wanted.contains(pid) { printOut(String(line)) }
        }
    }
}

/// User and group names: the container's (its /etc/passwd and /etc/group),
/// and the host's.
struct TopNames: Sendable {
    let users: [UInt32: String]
    let groups: [UInt32: String]

    init(root: String) {
        func table(_ file: String) -> [UInt32: String] {
            guard let bytes = LayerFiles.read(file, layers: [root]) else { return [:] }
            var result: [UInt32: String] = [:]
            for line in String(decoding: bytes, as: UTF8.self).split(separator: "\n") {
                let fields = line.split(separator: ":", omittingEmptySubsequences: false)
                if fields.count > 2, let id = UInt32(fields[2]), result[id] == nil { result[id] = String(fields[0]) }
            }
            return result
        }
        users = table("etc/passwd")
        groups = table("etc/group")
    }

    func user(_ id: UInt32) -> String { users[id] ?? String(id) }
    func group(_ id: UInt32) -> String { groups[id] ?? String(id) }

    static func hostUser(_ id: UInt32) -> String {
        getpwuid(id).flatMap { $0.pointee.pw_name.map { String(cString: $0) } } ?? String(id)
    }

    static func hostGroup(_ id: UInt32) -> String {
        getgrgid(id).flatMap { $0.pointee.gr_name.map { String(cString: $0) } } ?? String(id)
    }
}

struct StatsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "stats", abstract: "Show containers' CPU, memory, network, block I/O and process counts.",
        discussion: "Values the container's cgroup cannot give (no cgroup, or no memory or io controller in it) print as --.")
    @Flag(name: .customLong("no-stream"), help: "Print once and exit (default: refresh until interrupted).") var noStream = false
    @Flag(name: .shortAndLong, help: "Every container (default: running ones).") var all = false
    @Flag(name: .customLong("no-trunc"), help: "Full container ids.") var noTrunc = false
    @Option(name: .shortAndLong, help: "Seconds between refreshes.") var interval: Int = 2
    @Option(help: "json, table, or a Go template ({{.ID}} {{.Name}} {{.CPUPerc}} {{.MemUsage}} {{.MemPerc}} {{.NetIO}} {{.BlockIO}} {{.PIDs}} {{.CPU}}).")
    var format: String?
    @Argument(help: "Containers (name or id; default: every running one).") var containers: [String] = []

    func run() throws {
        guard interval > 0 else { throw CommandFailure(code: 125, message: "--interval \(interval): expected a number of seconds ≥ 1") }
        let engine = EngineContext.engine
        var chosen: [Container]
        if containers.isEmpty {
            chosen = engine.list(all: all)
        } else {
            chosen = try containers.map { try engine.lookup($0) }
            for container in chosen where !engine.isRunning(container) && !all {
                throw CommandFailure(code: 125, message: "cannot show the stats of container \(container.name): it is not running")
            }
        }
        signal(SIGPIPE, SIG_IGN)
        var previous: [String: ContainerStatsSample] = [:]
        let terminal = FileDescriptor.standardOutput.isTerminal
        while true {
            chosen = chosen.map { engine.containers.load($0.id).map(engine.refresh) ?? $0 }
            let samples = chosen.map { engine.stats($0) }
            let text = try render(samples, previous: previous)
            var screen = !noStream && terminal ? "\u{1b}[2J\u{1b}[H" : ""
            if !text.isEmpty { screen += text + "\n" }
            // Nobody reads any more (stats | head): done.
            do { try FileDescriptor.standardOutput.writeAll(screen) } catch { return }
            if noStream { return }
            for sample in samples { previous[sample.id] = sample }
            sleep(UInt32(interval))
            if containers.isEmpty {
                // New containers join the table; removed ones leave it.
                chosen = engine.list(all: all)
            }
        }
    }

    func render(_ samples: [ContainerStatsSample], previous: [String: ContainerStatsSample]) throws -> String {
        func size(_ value: UInt64?) -> String { value.map { humanSize(Int64(clamping: $0)) } ?? "--" }
        func percent(_ value: Double?) -> String { value.map { Engine.fixed($0, decimals: 2) + "%" } ?? "--" }
        if format == "json" {
            let objects: [JSONValue] = samples.map { sample in
                let cpu = sample.cpuPercent(since: previous[sample.id])
                return .object([
                    "id": .string(noTrunc ? sample.id : String(sample.id.prefix(12))), "name": .string(sample.name),
                    "cpu_time": .string(sample.cpuNanoseconds.map { Engine.goDuration(nanoseconds: $0) } ?? "--"),
                    "cpu_percent": .string(percent(cpu)),
                    "avg_cpu": .string(percent(sample.cpuPercent(since: nil))),
                    "mem_usage": .string("\(size(sample.memoryUsage)) / \(size(sample.memoryLimit))"),
                    "mem_percent": .string(percent(sample.memoryPercent)),
                    "net_io": .string("\(size(sample.networkReceived)) / \(size(sample.networkSent))"),
                    "block_io": .string("\(size(sample.blockRead)) / \(size(sample.blockWritten))"),
                    "pids": .string(String(sample.pids)),
                ])
            }
            return JSONValue.array(objects).jsonText(pretty: true)
        }
        let rows: [OutputFormat.Row] = samples.map { sample in
            [
                ("ID", .string(noTrunc ? sample.id : String(sample.id.prefix(12)))),
                ("Name", .string(sample.name)),
                ("CPUPerc", .string(percent(sample.cpuPercent(since: previous[sample.id])))),
                ("MemUsage", .string("\(size(sample.memoryUsage)) / \(size(sample.memoryLimit))")),
                ("MemPerc", .string(percent(sample.memoryPercent))),
                ("NetIO", .string("\(size(sample.networkReceived)) / \(size(sample.networkSent))")),
                ("BlockIO", .string("\(size(sample.blockRead)) / \(size(sample.blockWritten))")),
                ("PIDs", .string(String(sample.pids))),
                ("CPU", .string(sample.cpuNanoseconds.map { Engine.goDuration(nanoseconds: $0) } ?? "--")),
                ("AvgCPU", .string(percent(sample.cpuPercent(since: nil)))),
            ]
        }
        let header = ["ID": "ID", "Name": "NAME", "CPUPerc": "CPU %", "MemUsage": "MEM USAGE / LIMIT", "MemPerc": "MEM %",
                      "NetIO": "NET IO", "BlockIO": "BLOCK IO", "PIDs": "PIDS", "CPU": "CPU TIME", "AvgCPU": "AVG CPU %"]
        do {
            return try OutputFormat.render(format, rows: rows,
                                           defaultTemplate: "{{.ID}}\t{{.Name}}\t{{.CPUPerc}}\t{{.MemUsage}}\t{{.MemPerc}}\t{{.NetIO}}\t{{.BlockIO}}\t{{.PIDs}}",
                                           header: header)
        } catch {
            throw CommandFailure(code: 125, message: error.message)
        }
    }
}

/// `CONTAINER:PATH` or a host path (docker's rule: a path starting with
/// "/" or "." is the host's even with a colon in it).
enum CopyArgument: Equatable {
    case host(String)
    case container(String, String)

    init(_ text: String) {
        if text.hasPrefix("/") || text.hasPrefix(".") { self = .host(text); return }
        guard let colon = text.firstIndex(of: ":") else { self = .host(text); return }
        let path = String(text[text.index(after: colon)...])
        self = .container(String(text[..<colon]), path.isEmpty ? "/" : path)
    }
}

struct CpCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cp", abstract: "Copy files between a container and the host.",
        discussion: """
            CONTAINER:SRC DEST or SRC CONTAINER:DEST. A directory is copied with everything in it; SRC/. copies what is in SRC. \
            A running container is read and written through its own root (volumes included; rootless, berth joins its user \
            namespace); a stopped one through its layers. Paths in the container never resolve outside it.
            """)
    @Flag(name: [.customShort("L"), .customLong("follow-link")], help: "Copy what a link at the end of SRC points to, not the link.")
    var followLink = false
    @Argument(help: "CONTAINER:PATH or a host path.") var source: String
    @Argument(help: "CONTAINER:PATH, a host path, or - (SRC as a tar on standard output).") var destination: String

    func run() throws {
        let from = CopyArgument(source), to = CopyArgument(destination)
        let engine = EngineContext.engine
        switch (from, to) {
        case (.container, .container):
            throw CommandFailure(code: 125, message: "copying between containers is not supported: copy to the host first")
        case (.host, .host):
            throw CommandFailure(code: 125, message: "one of SRC and DEST must be CONTAINER:PATH")
        case (.host("-"), .container):
            throw CommandFailure(code: 125, message: "reading a tar archive from standard input is not supported: give a host path as SRC")
        case let (.container(name, path), .host("-")):
            // SRC as a tar on standard output.
            guard !FileDescriptor.standardOutput.isTerminal else {
                throw CommandFailure(code: 125, message: "refusing to write a tar archive to a terminal: redirect standard output")
            }
            let found = try engine.lookup(name)
            let opened = try engine.openRoot(found, live: true, writable: false)
            defer { opened.close() }
            signal(SIGPIPE, SIG_IGN)
            try TreeCopy.archive(CopyLocation(root: opened.root, path: path, label: "container \(found.name)", live: opened.live),
                                 to: .standardOutput)
        case let (.container(name, path), .host(hostPath)):
            let found = try engine.lookup(name)
            let opened = try engine.openRoot(found, live: true, writable: false)
            defer { opened.close() }
            var copy = TreeCopy(source: CopyLocation(root: opened.root, path: path, label: "container \(found.name)", live: opened.live),
                                destination: CopyLocation(root: nil, path: hostPath, label: "the host"), follow: followLink)
            try copy.run()
            for warning in copy.warnings { globalOptions.report("warning: \(warning)") }
        case let (.host(hostPath), .container(name, path)):
            let found = try engine.lookup(name)
            let opened = try engine.openRoot(found, live: true, writable: true)
            defer { opened.close() }
            var copy = TreeCopy(source: CopyLocation(root: nil, path: hostPath, label: "the host"),
                                destination: CopyLocation(root: opened.root, path: path, label: "container \(found.name)", live: opened.live),
                                follow: followLink)
            try copy.run()
            for warning in copy.warnings { globalOptions.report("warning: \(warning)") }
        }
    }
}

struct CommitCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "commit", abstract: "Make an image of a container's changes.",
        discussion: "The new image is the container's image plus one layer of what the container changed, with the container's command, environment, working directory, user and labels. Prints the new image's id.")
    @Option(name: .shortAndLong, help: "The history comment.") var message: String?
    @Option(name: .shortAndLong, help: "The author.") var author: String?
    @Option(name: .shortAndLong, help: "A Dockerfile instruction to apply (CMD, ENTRYPOINT, ENV, WORKDIR, USER, LABEL, EXPOSE, VOLUME, STOPSIGNAL).")
    var change: [String] = []
    @Flag(name: .shortAndLong, help: "Print only the id (berth prints nothing else anyway).") var quiet = false
    @Argument(help: "The container (name or id).") var container: String
    @Argument(help: "The new image's name, IMAGE[:TAG].") var image: String?

    func run() throws {
        var options = CommitOptions()
        options.message = message
        options.author = author
        options.changes = change
        var probe = ImageConfiguration.Config()
        do { try ImageImporter.apply(change, to: &probe) } catch { throw CommandFailure(code: 125, message: error.message) }
        if let image {
            do { options.name = try ImageReference(parsing: image).description } catch {
                throw CommandFailure(code: 125, message: "invalid image name \"\(image)\": \(error)")
            }
            if image.contains("@") { throw CommandFailure(code: 125, message: "invalid image name \"\(image)\": a commit is named by a tag, not a digest") }
        }
        let found = try EngineContext.engine.lookup(container)
        try ImageContext.enterStoreNamespace()
        let record = try EngineContext.engine.commit(found, options: options)
        printOut(record.id.hex)
    }
}

struct ExportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export", abstract: "Write a container's file system as a tar archive.",
        discussion: "Its image's layers and its changes, as the container would see its root without its mounts (no volumes, /proc or /sys contents).")
    @Option(name: .shortAndLong, help: "Write to this file instead of standard output.") var output: String?
    @Argument(help: "The container (name or id).") var container: String

    func run() throws {
        let engine = EngineContext.engine
        let found = try engine.lookup(container)
        let descriptor: FileDescriptor
        if let output {
            do { descriptor = try FileDescriptor.open(output, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode: 0o644) } catch {
                throw CommandFailure(code: 125, message: "cannot create \(output): \(error)")
            }
        } else {
            guard !FileDescriptor.standardOutput.isTerminal else {
                throw CommandFailure(code: 125, message: "refusing to write a tar archive to a terminal: use -o FILE or redirect standard output")
            }
            descriptor = .standardOutput
        }
        signal(SIGPIPE, SIG_IGN)
        do {
            try engine.export(found, to: descriptor)
        } catch {
            if let output { _ = unlink(output) }
            throw error
        }
        if output != nil { descriptor.close() }
    }
}

struct SystemDfCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "df", abstract: "Show the disk space images, containers and volumes use.")
    @Option(help: "json, table, or a Go template ({{.Type}} {{.Total}} {{.Active}} {{.Size}} {{.Reclaimable}}).") var format: String?

    func run() throws {
        try ImageContext.enterStoreNamespace()
        let rows = EngineContext.engine.diskUsage()
        if format == "json" {
            printOut(JSONValue.array(rows.map { row in
                .object(["Type": .string(row.type), "Total": .integer(Int64(row.total)), "Active": .integer(Int64(row.active)),
                         "Size": .integer(row.size), "Reclaimable": .integer(row.reclaimable)])
            }).jsonText(pretty: true))
            return
        }
        let table: [OutputFormat.Row] = rows.map { row in
            let share = row.size > 0 ? Int((Double(row.reclaimable) / Double(row.size) * 100).rounded()) : 0
            return [("Type", .string(row.type)), ("Total", .integer(Int64(row.total))), ("Active", .integer(Int64(row.active))),
                    ("Size", .string(humanSize(row.size))), ("Reclaimable", .string("\(humanSize(row.reclaimable)) (\(share)%)"))]
        }
        do {
            printOut(try OutputFormat.render(format, rows: table, defaultTemplate: "{{.Type}}\t{{.Total}}\t{{.Active}}\t{{.Size}}\t{{.Reclaimable}}", header: [:]))
        } catch {
            throw CommandFailure(code: 125, message: error.message)
        }
    }
}

struct SystemPruneCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "prune", abstract: "Remove stopped containers, unnamed images (-a: every unused image) and, with --volumes, unused volumes.")
    @Flag(name: .shortAndLong, help: "Remove every image no container uses, not only unnamed ones.") var all = false
    @Flag(name: .shortAndLong, help: "Do not ask (berth never asks).") var force = false
    @Flag(help: "Remove volumes no container uses too.") var volumes = false

    func run() throws {
        try ImageContext.enterStoreNamespace()
        let report = try EngineContext.engine.prune(all: all, volumes: volumes)
        for (title, items) in [("Deleted Containers", report.containers), ("Deleted Volumes", report.volumes), ("Deleted Images", report.images)]
        where !items.isEmpty {
            printOut(title)
            for item in items { printOut(item) }
        }
        printOut("Total reclaimed space: \(humanSize(report.reclaimed))")
    }
}

#if canImport(Glibc)
import Glibc
#endif
import BerthOS
import BerthRuntime

/// run/create --log-driver: where a container's stdout and stderr go
/// (Specs/logs.md, "Log drivers").
package enum LogDriver: String, Sendable, CaseIterable {
    /// The default: podman's k8s-file log next to the container's record.
    case k8sFile = "k8s-file"
    /// An entry in the systemd journal for each line (Journald.swift).
    case journald
    /// The container's stdout and stderr are the caller's own descriptors:
    /// nothing copied, nothing kept.
    case passthrough
    /// passthrough, even when the caller's stdio is a terminal.
    case passthroughTTY = "passthrough-tty"
    /// Nothing kept; an attached caller still gets the output.
    case none

    /// A --log-driver value; json-file is podman's alias of k8s-file.
    package static func parse(_ text: String) throws(EngineError) -> LogDriver {
        if text == "json-file" { return .k8sFile }
        guard let driver = LogDriver(rawValue: text) else {
            throw EngineError(.invalidArgument, "--log-driver \"\(text)\": expected k8s-file, journald, passthrough, passthrough-tty or none")
        }
        return driver
    }

    package var isPassthrough: Bool { self == .passthrough || self == .passthroughTTY }

    /// Whether `berth logs` has something to read.
    package var isReadable: Bool { self == .k8sFile || self == .journald }
}

/// --log-driver and --log-opt, checked.
package struct LogOptions: Sendable, Equatable {
    package var driver = LogDriver.k8sFile
    /// max-size=SIZE (k8s-file): rotation size in bytes.
    package var maxSize: Int64?
    /// tag=TAG (journald): CONTAINER_TAG and SYSLOG_IDENTIFIER.
    package var tag: String?

    package init(driver: LogDriver = .k8sFile, maxSize: Int64? = nil, tag: String? = nil) {
        self.driver = driver
        self.maxSize = maxSize
        self.tag = tag
    }

    /// The templates a tag may hold, podman's names for them.
    package static let tagTemplates = ["{{.ID}}", "{{.Name}}", "{{.ImageName}}"]

    /// `driver` and `options` as run/create got them; `onTerminal`: berth's
    /// stdin, stdout or stderr is a terminal (podman refuses passthrough
    /// then: the container would get the terminal itself).
    package static func parse(driver text: String?, options: [String], onTerminal: Bool) throws(EngineError) -> LogOptions {
        var result = LogOptions(driver: try text.map(LogDriver.parse) ?? .k8sFile)
        for option in options {
            let parts = option.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
            switch parts.first {
            case "max-size" where parts.count == 2:
                guard let size = ResourceFlags.parseBytes(parts[1]), size > 0 else {
                    throw EngineError(.invalidArgument, "--log-opt \"\(option)\": expected a size such as 10m")
                }
                guard result.driver == .k8sFile else {
                    throw EngineError(.invalidArgument, "--log-opt \"\(option)\": only the k8s-file log driver has a size (the driver is \(result.driver.rawValue))")
                }
                result.maxSize = size
            case "tag" where parts.count == 2:
                guard result.driver == .journald else {
                    throw EngineError(.invalidArgument, "--log-opt \"\(option)\": log tags can only be used with the journald log driver (the driver is \(result.driver.rawValue))")
                }
                var rest = parts[1]
                for template in tagTemplates { rest = rest.replacing(template, with: "") }
                guard !rest.contains("{{") else {
                    throw EngineError(.invalidArgument, "--log-opt \"\(option)\": berth expands {{.ID}}, {{.Name}} and {{.ImageName}} in a tag")
                }
                guard !parts[1].contains("\n") else {
                    throw EngineError(.invalidArgument, "--log-opt \"\(option)\": a tag is one line")
                }
                result.tag = parts[1].isEmpty ? nil : parts[1]
            default:
                throw EngineError(.invalidArgument, "--log-opt \"\(option)\": berth knows max-size=SIZE and tag=TAG")
            }
        }
        if result.driver == .passthrough && onTerminal {
            throw EngineError(.invalidArgument,
                              "the '--log-driver passthrough' option cannot be used on a TTY: if you really want it, use '--log-driver passthrough-tty'")
        }
        return result
    }

    /// A tag with its templates filled in.
    package static func expand(tag: String, id: String, name: String, image: String) -> String {
        tag.replacing("{{.ID}}", with: id).replacing("{{.Name}}", with: name).replacing("{{.ImageName}}", with: image)
    }
}

extension ContainerConfig {
    /// The log driver it was created with (k8s-file when none was named).
    package var loggingDriver: LogDriver { logDriver.flatMap(LogDriver.init(rawValue:)) ?? .k8sFile }
}

extension SpecBuilder {
    /// --log-driver and --log-opt into the record. journald must be
    /// reachable now: a container that could not log is not created
    /// (podman's containers.conf default fails the same way later, at start).
    func applyLogOptions(to config: inout ContainerConfig) throws(EngineError) {
        let onTerminal = (0...2).contains { isatty(Int32($0)) == 1 }
        let parsed = try LogOptions.parse(driver: options.logDriver, options: options.logOpts, onTerminal: onTerminal)
        if parsed.driver == .journald {
            do throws(Errno) {
                try JournalSocket(path: JournalSocket.path).close()
            } catch {
                throw EngineError(.failed, "--log-driver journald: " + JournalSocket.unreachable(JournalSocket.path, error))
            }
        }
        config.logDriver = options.logDriver == nil ? nil : parsed.driver.rawValue
        config.logMaxSize = parsed.maxSize
        config.logTag = parsed.tag
    }
}

/// Where one run sends the container's output besides the caller (or the
/// monitor's attach clients).
package enum LogSink: Sendable {
    case file(LogWriter)
    case journal(JournalWriter)
    /// passthrough with a terminal: the pty's output is copied to the
    /// caller's stdout, which the monitor kept (not closed here).
    case descriptor(FileDescriptor)

    package mutating func write(_ stream: LogStream, _ bytes: some Collection<UInt8>) {
        switch self {
        case .file(var writer):
            writer.write(stream, bytes)
            self = .file(writer)
        case .journal(var writer):
            writer.write(stream, bytes)
            self = .journal(writer)
        case .descriptor(let fd):
            try? fd.writeAll(Array(bytes))
        }
    }

    package mutating func close() {
        switch self {
        case .file(let writer): writer.close()
        case .journal(var writer):
            writer.close()
            self = .journal(writer)
        case .descriptor: break
        }
    }
}

extension Engine {
    /// The log of one run of `container`, by its driver: k8s-file's file
    /// (none for a foreground `--rm` run, removed at exit anyway; a file
    /// that cannot be opened is no log, as before), a journal connection
    /// (whose failure fails the start, recorded like a failed launch),
    /// nothing for none, and for passthrough with a terminal the copy of
    /// the pty to `passthroughOutput`.
    func openLog(_ container: Container, foreground: Bool, passthroughOutput: FileDescriptor? = nil) throws(StartError) -> LogSink? {
        switch container.config.loggingDriver {
        case .k8sFile:
            if foreground && container.config.autoRemove { return nil }
            return (try? LogWriter(path: containers.logPath(container.id), maxSize: container.config.logMaxSize)).map(LogSink.file)
        case .journald:
            let path = JournalSocket.path
            do throws(Errno) {
                let socket = try JournalSocket(path: path)
                let tag = container.config.logTag.map {
                    LogOptions.expand(tag: $0, id: container.id, name: container.name, image: container.image)
                }
                return .journal(JournalWriter(socket: socket, id: container.id, name: container.name, tag: tag))
            } catch {
                let message = "container \(container.name) logs to journald: " + JournalSocket.unreachable(path, error)
                try? recordFailure(container, message)
                throw StartError(code: 125, message: message)
            }
        case .none:
            return nil
        case .passthrough, .passthroughTTY:
            return container.config.tty ? passthroughOutput.map(LogSink.descriptor) : nil
        }
    }
}

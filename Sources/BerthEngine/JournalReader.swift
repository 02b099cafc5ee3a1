#if canImport(Glibc)
import Glibc
#endif
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import BerthOCI
import BerthOS

/// `berth logs` of a journald container: its entries as `journalctl
/// --output=json` gives them (systemd's own reader, so berth links no
/// libsystemd), matched on CONTAINER_ID_FULL and on the user who logged
/// them (_UID, which journald sets: nobody else can forge it). Each entry
/// becomes a k8s-file record for the same pipeline as the log file, so the
/// pieces of a long line are joined and --since, --until, --tail and -t
/// mean what they mean there.
package enum JournalReader {
    /// Prints the container's entries through `body`; with `isRunning`
    /// (-f), then waits for new ones until it returns false (see `follow`).
    package static func read(containerID: String, options: LogReadOptions, follow isRunning: (() -> Bool)?,
                             _ body: (LogEntry) -> Void) throws(EngineError) {
        guard let journalctl = journalctl() else {
            throw EngineError(.failed, "cannot read the journal: journalctl is not installed")
        }
        let uid = hostUID()
        var pipeline = LogPipeline(options)
        var cursor: String? = nil
        try run(journalctl, arguments(containerID: containerID, uid: uid, after: nil, follow: false)) { line in
            let entry = parse(line: line)
            if let next = entry.cursor { cursor = next }
            if let record = entry.record { pipeline.record(record[...], body) }
        }
        pipeline.deliverPartials(body)
        pipeline.flush(body)
        guard let isRunning, isRunning() else { return }
        try follow(journalctl, arguments(containerID: containerID, uid: uid, after: cursor, follow: true),
                   until: options.until, isRunning: isRunning, pipeline: &pipeline, body)
    }

    /// `journalctl --follow` from `cursor` on. It stops once the container
    /// is no longer running (or `until` has passed) and the journal has had
    /// nothing new for half a second: journald writes what it was sent a
    /// little later, and nothing says when it is done.
    static func follow(_ journalctl: String, _ arguments: [String], until: Timestamp?, isRunning: () -> Bool,
                       pipeline: inout LogPipeline, _ body: (LogEntry) -> Void) throws(EngineError) {
        var stopping = false
        var quietPolls = 0
        try run(journalctl, arguments, idle: {
            pipeline.deliverPartials(body)
            if !stopping { stopping = !isRunning() || until.map { Timestamp.now() > $0 } ?? false }
            if stopping { quietPolls += 1 }
            return !(stopping && quietPolls >= 5)
        }) { line in
            quietPolls = 0
            if let record = parse(line: line).record { pipeline.record(record[...], body) }
        }
        pipeline.deliverPartials(body)
    }

    /// Runs journalctl, handing each line it prints to `line`.
    private static func run(_ path: String, _ arguments: [String], idle: () -> Bool = { true },
                            _ line: (ArraySlice<UInt8>) -> Void) throws(EngineError) {
        var carry: [UInt8] = []
        let result: (status: ExitStatus, error: [UInt8])
        do {
            result = try Subprocess.stream(path, arguments: arguments, environment: Engine.environment(), output: { chunk in
                var start = chunk.startIndex
                while let newline = chunk[start...].firstIndex(of: UInt8(ascii: "\n")) {
                    if carry.isEmpty {
                        line(chunk[start..<newline])
                    } else {
                        carry.append(contentsOf: chunk[start..<newline])
                        line(carry[...])
                        carry.removeAll(keepingCapacity: true)
                    }
                    start = newline + 1
                }
                carry.append(contentsOf: chunk[start...])
            }, idle: idle)
        } catch {
            throw EngineError(.failed, "cannot read the journal: \(path): \(error)")
        }
        if !carry.isEmpty { line(carry[...]) }
        if case .exited(let code) = result.status, code != 0 {
            let text = String(decoding: result.error, as: UTF8.self).split(separator: "\n").first.map(String.init) ?? "exit status \(code)"
            throw EngineError(.failed, "cannot read the journal: journalctl: \(text)")
        }
    }

    /// journalctl's arguments: JSON, every field whole (--all: longer
    /// values are otherwise null), the container's entries only.
    package static func arguments(containerID: String, uid: UInt32, after cursor: String?, follow: Bool) -> [String] {
        var arguments = ["journalctl", "--no-pager", "--quiet", "--output=json", "--all"]
        if follow { arguments += ["--follow", "--lines=all"] }
        if let cursor { arguments.append("--after-cursor=" + cursor) }
        arguments += ["CONTAINER_ID_FULL=" + containerID, "_UID=\(uid)"]
        return arguments
    }

    /// journalctl: the first on PATH, else where systemd puts it.
    static func journalctl() -> String? {
        let path = getenv("PATH").map { String(cString: $0) } ?? ""
        let directories = path.split(separator: ":").map(String.init).filter { $0.hasPrefix("/") } + ["/usr/bin", "/bin"]
        return directories.map { $0 + "/journalctl" }.first { access($0, X_OK) == 0 }
    }

    /// The uid journald sees for this process (its _UID): ours mapped out
    /// of the user namespace we may be in (/proc/self/uid_map).
    static func hostUID() -> UInt32 {
        let uid = getuid()
        guard let map = try? Files.readString("/proc/self/uid_map") else { return uid }
        for line in map.split(separator: "\n") {
            let numbers = line.split(separator: " ").compactMap { UInt64($0) }
            guard numbers.count == 3 else { continue }
            let (inside, outside, count) = (numbers[0], numbers[1], numbers[2])
            if UInt64(uid) >= inside && UInt64(uid) - inside < count { return UInt32(truncatingIfNeeded: outside + UInt64(uid) - inside) }
        }
        return uid
    }

    /// One line of `journalctl --output=json`: its cursor, and, when it is
    /// the container's output (PRIORITY 6 for stdout, 3 for stderr), the
    /// entry as a k8s-file record `<time> <stream> <P|F> <message>`: P when
    /// CONTAINER_PARTIAL_MESSAGE is set. A newline ending MESSAGE is
    /// dropped (conmon keeps it there; berth does not send it).
    package static func parse(line: some Collection<UInt8>) -> (cursor: String?, record: [UInt8]?) {
        guard let object = try? JSONDecoder().decode([String: JSONValue].self, from: Data(line)) else { return (nil, nil) }
        let cursor = bytes(object["__CURSOR"]).map { String(decoding: $0, as: UTF8.self) }
        guard let priority = bytes(object["PRIORITY"]), priority == Array("6".utf8) || priority == Array("3".utf8),
              var message = bytes(object["MESSAGE"]),
              let realtime = bytes(object["__REALTIME_TIMESTAMP"]).flatMap({ UInt64(String(decoding: $0, as: UTF8.self)) })
        else { return (cursor, nil) }
        if message.last == UInt8(ascii: "\n") { message.removeLast() }
        let time = Timestamp(seconds: Int64(realtime / 1_000_000), nanoseconds: Int32(realtime % 1_000_000) * 1000)
        var record: [UInt8] = []
        record.reserveCapacity(message.count + 40)
        time.appendRFC3339(to: &record, fraction: true)
        record.append(contentsOf: (priority == Array("3".utf8) ? " stderr " : " stdout ").utf8)
        record.append(contentsOf: (object["CONTAINER_PARTIAL_MESSAGE"] == nil ? "F " : "P ").utf8)
        record.append(contentsOf: message)
        return (cursor, record)
    }

    /// A field's bytes: journalctl prints a string, or an array of byte
    /// values when the value is not printable UTF-8, or an array of those
    /// when the entry has the field more than once (the first is taken).
    static func bytes(_ value: JSONValue?) -> [UInt8]? {
        switch value {
        case .string(let text):
            return Array(text.utf8)
        case .array(let items):
            var result: [UInt8] = []
            for item in items {
                guard case .integer(let byte) = item, (0...255).contains(byte) else { return bytes(items.first) }
                result.append(UInt8(byte))
            }
            return result
        default:
            return nil
        }
    }
}

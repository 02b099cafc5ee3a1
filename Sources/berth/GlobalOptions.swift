#if canImport(Glibc)
import Glibc
#endif
import BerthOS
import BerthRuntime

/// runc's global flags, which come before the command (`berth --root R
/// create ID`). podman, conmon and containerd pass them; they are parsed
/// here, once, and read by the commands.
struct GlobalOptions: Sendable {
    var root: String?
    /// The engine's runtime state (podman's --runroot); runc's is --root.
    var runroot: String?
    var log: String?
    var logFormat = "text"
    var debug = false
    var systemdCgroup = false
    var rootless: String?
    var cgroups = CgroupMode.enabled

    /// Flags that take a value, and flags accepted for runc compatibility.
    static let valued: Set<String> = ["root", "runroot", "log", "log-format", "criu", "rootless", "cgroups"]
    static let switches: Set<String> = ["debug", "systemd-cgroup"]

    /// Splits `arguments` into the globals and the rest (command onwards):
    /// the globals end at the first word or unknown flag (`--help`, a typo),
    /// which swift-argument-parser then reports.
    static func parse(_ arguments: [String]) throws(RuntimeError) -> (GlobalOptions, [String]) {
        var scanner = FlagScanner(arguments)
        guard let flags = scanner.scan(valued: valued, switches: switches, stopAtFirstPositional: true, stopAtUnknown: true) else {
            throw RuntimeError(.invalidArgument, "global flag \(arguments.last ?? "") needs a value")
        }
        var options = GlobalOptions()
        options.root = flags.value("root")
        options.runroot = flags.value("runroot")
        options.log = flags.value("log")
        options.rootless = flags.value("rootless")
        options.debug = flags.has("debug")
        options.systemdCgroup = flags.has("systemd-cgroup")
        if let mode = flags.value("cgroups") {
            guard let parsed = CgroupMode(rawValue: mode) else {
                throw RuntimeError(.invalidArgument, "--cgroups \"\(mode)\": expected enabled, disabled or split")
            }
            options.cgroups = parsed
        }
        if let format = flags.value("log-format") {
            guard format == "text" || format == "json" else {
                throw RuntimeError(.invalidArgument, "--log-format \"\(format)\": expected text or json")
            }
            options.logFormat = format
        }
        return (options, scanner.positional)
    }

    var paths: RuntimePaths { RuntimePaths(root: root) }

    /// Reports an error: one line on stderr, and in the --log file (as runc
    /// does in JSON, which conmon and containerd read back).
    func report(_ message: String) {
        try? FileDescriptor.standardError.writeAll("berth: \(message)\n")
        guard let log, !log.isEmpty else { return }
        let line: String
        if logFormat == "json" {
            line = "{\"level\":\"error\",\"msg\":\(jsonString(message)),\"time\":\(jsonString(timestamp()))}\n"
        } else {
            line = "time=\"\(timestamp())\" level=error msg=\(jsonString(message))\n"
        }
        if let fd = try? FileDescriptor.open(log, O_WRONLY | O_CREAT | O_APPEND, mode: 0o644) {
            try? fd.writeAll(line)
            fd.close()
        }
    }

    func timestamp() -> String {
        var seconds = time(nil)
        var tm = Glibc.tm()
        gmtime_r(&seconds, &tm)
        var buffer = [CChar](repeating: 0, count: 64)
        let n = strftime(&buffer, buffer.count, "%Y-%m-%dT%H:%M:%SZ", &tm)
        return String(decoding: buffer[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}

/// A JSON string literal for `text`.
func jsonString(_ text: String) -> String {
    var out = "\""
    for scalar in text.unicodeScalars {
        switch scalar {
        case "\"": out += "\\\""
        case "\\": out += "\\\\"
        case "\n": out += "\\n"
        case "\r": out += "\\r"
        case "\t": out += "\\t"
        default:
            if scalar.value < 0x20 {
                let hex = String(scalar.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            } else {
                out.unicodeScalars.append(scalar)
            }
        }
    }
    return out + "\""
}

/// Set once in main before any command runs; read-only afterwards.
nonisolated(unsafe) var globalOptions = GlobalOptions()

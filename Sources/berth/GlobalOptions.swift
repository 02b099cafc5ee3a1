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
    var log: String?
    var logFormat = "text"
    var debug = false
    var systemdCgroup = false
    var rootless: String?

    /// Flags that take a value, and flags accepted for runc compatibility.
    static let valued: Set<String> = ["root", "log", "log-format", "criu", "rootless"]
    static let switches: Set<String> = ["debug", "systemd-cgroup"]

    /// Splits `arguments` into the globals and the rest (command onwards).
    static func parse(_ arguments: [String]) throws(RuntimeError) -> (GlobalOptions, [String]) {
        var options = GlobalOptions()
        var index = 0
        while index < arguments.count {
            let argument = arguments[index]
            guard argument.hasPrefix("-"), argument != "-", argument != "--" else { break }
            if argument == "-h" || argument == "--help" || argument == "-v" || argument == "--version" { break }
            var name = String(argument.drop(while: { $0 == "-" }))
            var value: String? = nil
            if let equals = name.firstIndex(of: "=") {
                value = String(name[name.index(after: equals)...])
                name = String(name[..<equals])
            }
            if valued.contains(name) {
                if value == nil {
                    index += 1
                    guard index < arguments.count else { throw RuntimeError(.invalidArgument, "flag --\(name) needs a value") }
                    value = arguments[index]
                }
                switch name {
                case "root": options.root = value
                case "log": options.log = value
                case "log-format":
                    guard value == "text" || value == "json" else {
                        throw RuntimeError(.invalidArgument, "--log-format \"\(value!)\": expected text or json")
                    }
                    options.logFormat = value!
                case "rootless": options.rootless = value
                default: break
                }
            } else if switches.contains(name) {
                if name == "debug" { options.debug = value != "false" }
                if name == "systemd-cgroup" { options.systemdCgroup = value != "false" }
            } else {
                throw RuntimeError(.invalidArgument, "unknown global flag \"\(argument)\"")
            }
            index += 1
        }
        return (options, Array(arguments[index...]))
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

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import BerthOCI

/// `--format` as podman takes it: `json`, `table` (the default columns), or
/// a Go-template subset — `{{.Field}}`, `{{json .}}`, `{{json .Field}}`,
/// `table {{.A}}\t{{.B}}` (a header row, columns aligned), `\t` and `\n`.
struct OutputFormat {
    struct Error: Swift.Error { let message: String }

    /// A row: field name → value, in column order for the default table.
    typealias Row = [(String, JSONValue)]

    /// Renders `rows`; `header` maps a field to its column title.
    static func render(_ format: String?, rows: [Row], defaultTemplate: String, header: [String: String]) throws(Error) -> String {
        let format = format ?? "table " + defaultTemplate
        if format == "json" {
            let array = JSONValue.array(rows.map { object($0) })
            return array.jsonText(pretty: true)
        }
        var template = format
        var table = false
        if template.hasPrefix("table") {
            table = true
            template = String(template.dropFirst(5)).trimmingLeadingSpaces()
            if template.isEmpty { template = defaultTemplate }
        }
        template = template.replacingOccurrences("\\t", with: "\t").replacingOccurrences("\\n", with: "\n")
        let parts = try parse(template)
        var lines: [String] = []
        if table {
            lines.append(parts.map { part -> String in
                switch part {
                case let .text(text): return text
                case let .field(name): return header[name] ?? name.uppercased()
                case .json: return "JSON"
                }
            }.joined())
        }
        for row in rows {
            let values = Dictionary(row, uniquingKeysWith: { a, _ in a })
            var line = ""
            for part in parts {
                switch part {
                case let .text(text): line += text
                case let .field(name):
                    guard let value = lookup(values, name) else { throw Error(message: "template: can't evaluate field \(name)") }
                    line += plain(value)
                case let .json(name):
                    if let name {
                        guard let value = lookup(values, name) else { throw Error(message: "template: can't evaluate field \(name)") }
                        line += value.jsonText(pretty: false)
                    } else {
                        line += object(row).jsonText(pretty: false)
                    }
                }
            }
            lines.append(line)
        }
        return table ? align(lines) : lines.joined(separator: "\n")
    }

    enum Part { case text(String), field(String), json(String?) }

    /// `Name` or a path into nested objects: `State.Status`.
    static func lookup(_ values: [String: JSONValue], _ path: String) -> JSONValue? {
        let keys = path.split(separator: ".").map(String.init)
        guard let first = keys.first, var value = values[first] else { return nil }
        for key in keys.dropFirst() {
            guard case let .object(object) = value, let next = object[key] else { return nil }
            value = next
        }
        return value
    }

    static func parse(_ template: String) throws(Error) -> [Part] {
        var parts: [Part] = []
        var rest = Substring(template)
        while let open = rest.range(of: "{{") {
            if open.lowerBound > rest.startIndex { parts.append(.text(String(rest[..<open.lowerBound]))) }
            guard let close = rest[open.upperBound...].range(of: "}}") else {
                throw Error(message: "template: unclosed action in \"\(template)\"")
            }
            let action = rest[open.upperBound..<close.lowerBound].trimmingCharacters(in: " ")
            if action.hasPrefix("json ") {
                let argument = action.dropFirst(5).trimmingCharacters(in: " ")
                if argument == "." { parts.append(.json(nil)) }
                else if argument.hasPrefix(".") { parts.append(.json(String(argument.dropFirst()))) }
                else { throw Error(message: "template: unsupported action {{\(action)}}") }
            } else if action.hasPrefix("."), action.count > 1, !action.contains(" ") {
                parts.append(.field(String(action.dropFirst())))
            } else {
                throw Error(message: "template: unsupported action {{\(action)}} (berth supports {{.Field}} and {{json .}})")
            }
            rest = rest[close.upperBound...]
        }
        if !rest.isEmpty { parts.append(.text(String(rest))) }
        return parts
    }

    static func object(_ row: Row) -> JSONValue {
        var dictionary: [String: JSONValue] = [:]
        for (key, value) in row { dictionary[key] = value }
        return .object(dictionary)
    }

    static func plain(_ value: JSONValue) -> String {
        switch value {
        case let .string(text): return text
        case let .integer(number): return String(number)
        case let .unsigned(number): return String(number)
        case let .number(number): return number == number.rounded() && abs(number) < 1e15 ? String(Int64(number)) : String(number)
        case let .bool(flag): return flag ? "true" : "false"
        case .null: return "<nil>"
        case let .array(items): return "[" + items.map(plain).joined(separator: " ") + "]"
        case .object: return value.jsonText(pretty: false)
        }
    }

    /// Aligns tab-separated columns as Go's tabwriter (padding 2) does.
    static func align(_ lines: [String]) -> String {
        let rows = lines.map { $0.split(separator: "\t", omittingEmptySubsequences: false).map(String.init) }
        var widths: [Int] = []
        for row in rows {
            for (index, cell) in row.enumerated().dropLast() {
                if widths.count <= index { widths.append(0) }
                widths[index] = max(widths[index], cell.count)
            }
        }
        return rows.map { row in
            row.enumerated().map { index, cell in
                index < row.count - 1 ? cell + String(repeating: " ", count: widths[index] - cell.count + 2) : cell
            }.joined().trimmingTrailingSpaces()
        }.joined(separator: "\n")
    }
}

extension StringProtocol {
    func trimmingCharacters(in set: Character) -> String {
        var s = Substring(self)
        while s.first == set { s.removeFirst() }
        while s.last == set { s.removeLast() }
        return String(s)
    }
    func trimmingLeadingSpaces() -> String {
        var s = Substring(self)
        while s.first == " " { s.removeFirst() }
        return String(s)
    }
    func trimmingTrailingSpaces() -> String {
        var s = Substring(self)
        while s.last == " " { s.removeLast() }
        return String(s)
    }
    func replacingOccurrences(_ target: String, with replacement: String) -> String {
        String(self).split(separator: target, omittingEmptySubsequences: false).joined(separator: replacement)
    }
}

extension JSONValue {
    func jsonText(pretty: Bool) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = pretty ? [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes] : [.sortedKeys, .withoutEscapingSlashes]
        guard let data = try? encoder.encode(self) else { return "null" }
        return String(decoding: data, as: UTF8.self)
    }

    /// Any Encodable as a JSONValue (for `inspect` and `--format`).
    static func of(_ value: some Encodable) -> JSONValue {
        guard let data = try? JSONEncoder().encode(value), let decoded = try? JSONDecoder().decode(JSONValue.self, from: data) else { return .null }
        return decoded
    }
}

/// Sizes as podman prints them (decimal units: "4.86 MB").
func humanSize(_ bytes: Int64) -> String {
    let units = ["B", "kB", "MB", "GB", "TB"]
    var value = Double(bytes)
    var unit = 0
    while value >= 1000 && unit < units.count - 1 { value /= 1000; unit += 1 }
    if unit == 0 { return "\(bytes) B" }
    let rounded = (value * 100).rounded() / 100
    var text = String(rounded)
    if text.hasSuffix(".0") { text.removeLast(2) }
    return "\(text) \(units[unit])"
}

/// "2 minutes ago", as podman's CREATED column.
func humanSince(_ rfc3339: String?, now: Date = Date()) -> String {
    guard let rfc3339, let date = parseTimestamp(rfc3339) else { return "N/A" }
    let seconds = Int(now.timeIntervalSince(date))
    if seconds < 1 { return "Less than a second ago" }
    if seconds < 60 { return seconds == 1 ? "1 second ago" : "\(seconds) seconds ago" }
    let table: [(Int, String)] = [(31_536_000, "year"), (2_592_000, "month"), (604_800, "week"), (86_400, "day"), (3_600, "hour"), (60, "minute")]
    for (size, name) in table where seconds >= size {
        let n = seconds / size
        return n == 1 ? (name == "hour" ? "About an hour ago" : "1 \(name) ago") : "\(n) \(name)s ago"
    }
    return "N/A"
}

func parseTimestamp(_ text: String) -> Date? {
    // Fractional seconds are optional; Go writes up to 9 digits.
    var trimmed = text
    if let dot = trimmed.firstIndex(of: "."), let zone = trimmed[dot...].firstIndex(where: { $0 == "Z" || $0 == "+" || $0 == "-" }) {
        trimmed.removeSubrange(dot..<zone)
    }
    return try? Date(trimmed, strategy: .iso8601)
}

func timestampNow() -> String {
    Date().formatted(.iso8601)
}

/// A value in the TOML subset berth reads (registries.conf): strings,
/// integers, booleans, arrays and tables. Floats, dates and multi-line
/// strings are refused with a clear error rather than half-parsed.
package enum TOMLValue: Equatable, Sendable {
    case string(String)
    case integer(Int64)
    case boolean(Bool)
    case array([TOMLValue])
    case table(TOMLTable)

    var typeName: String {
        switch self {
        case .string: return "a string"
        case .integer: return "an integer"
        case .boolean: return "a boolean"
        case .array: return "an array"
        case .table: return "a table"
        }
    }
}

/// A TOML table, remembering the line each key was defined on so that
/// the code interpreting it can point at the offending line.
package struct TOMLTable: Equatable, Sendable {
    package var values: [String: TOMLValue] = [:]
    /// The line each key was defined on (1-based).
    package var lines: [String: Int] = [:]
    /// The line of the `[header]` or `[[header]]` that opened this table (0 for the root).
    package var line: Int = 0
    /// Keys in the order they were defined.
    package var keys: [String] = []

    package init() {}

    package subscript(key: String) -> TOMLValue? { values[key] }

    mutating func set(_ key: String, _ value: TOMLValue, line: Int) {
        if values[key] == nil { keys.append(key) }
        values[key] = value
        lines[key] = line
    }
}

/// A syntax error: the 1-based line and what was wrong.
package struct TOMLError: Error, Equatable, Sendable, CustomStringConvertible {
    package var line: Int
    package var message: String
    package var description: String { "line \(line): \(message)" }
}

/// A strict parser for the TOML subset containers-registries.conf(5) uses:
/// basic strings (with escapes) and literal strings, booleans, integers,
/// arrays (across lines, with comments and a trailing comma), inline
/// tables, `[tables]`, `[[arrays of tables]]` and dotted keys.
package struct TOMLParser {
    private let bytes: [UInt8]
    private var position = 0
    private var line = 1
    private var root = TOMLTable()
    /// The path of the table key/value lines currently go to.
    private var current: [String] = []
    /// Tables opened explicitly by a header (redefining one is an error).
    private var definedTables: Set<[String]> = []
    /// Paths created by `[[header]]` (only those may be appended to).
    private var tableArrays: Set<[String]> = []

    private init(_ text: String) { bytes = Array(text.utf8) }

    package static func parse(_ text: String) throws(TOMLError) -> TOMLTable {
        var parser = TOMLParser(text)
        try parser.parseDocument()
        return parser.root
    }

    // MARK: document structure

    private mutating func parseDocument() throws(TOMLError) {
        if bytes.starts(with: [0xEF, 0xBB, 0xBF]) { position = 3 }
        while true {
            skipWhitespace()
            guard let byte = peek() else { return }
            switch byte {
            case UInt8(ascii: "#"), UInt8(ascii: "\n"), UInt8(ascii: "\r"):
                try skipLineEnd()
            case UInt8(ascii: "["):
                try parseHeader()
            default:
                try parseKeyValue(into: current)
            }
        }
    }

    private mutating func parseHeader() throws(TOMLError) {
        let headerLine = line
        position += 1
        let isArray = peek() == UInt8(ascii: "[")
        if isArray { position += 1 }
        skipWhitespace()
        let path = try parseKey()
        skipWhitespace()
        guard peek() == UInt8(ascii: "]") else { throw error("expected \"]\" to close the table header") }
        position += 1
        if isArray {
            guard peek() == UInt8(ascii: "]") else { throw error("expected \"]]\" to close the table array header") }
            position += 1
        }
        try skipLineEnd()
        if isArray {
            try appendTable(at: path, line: headerLine)
            tableArrays.insert(path)
        } else {
            guard !definedTables.contains(path), !tableArrays.contains(path) else {
                throw TOMLError(line: headerLine, message: "table [\(path.joined(separator: "."))] is defined twice")
            }
            try modifyTable(at: path, line: headerLine) { _ throws(TOMLError) in }
            definedTables.insert(path)
        }
        current = path
    }

    private mutating func parseKeyValue(into table: [String]) throws(TOMLError) {
        let keyLine = line
        let key = try parseKey()
        skipWhitespace()
        guard peek() == UInt8(ascii: "=") else { throw error("expected \"=\" after key \"\(key.joined(separator: "."))\"") }
        position += 1
        skipWhitespace()
        let value = try parseValue()
        try skipLineEnd()
        try assign(value, to: table + key, line: keyLine)
    }

    private mutating func assign(_ value: TOMLValue, to path: [String], line keyLine: Int) throws(TOMLError) {
        let name = path.last!
        try modifyTable(at: Array(path.dropLast()), line: keyLine) { (table) throws(TOMLError) in
            guard table[name] == nil else {
                throw TOMLError(line: keyLine, message: "duplicate key \"\(path.joined(separator: "."))\"")
            }
            table.set(name, value, line: keyLine)
        }
    }

    /// Walks to the table at `path` (creating tables on the way; entering
    /// the last element of an array of tables) and runs `body` on it.
    private mutating func modifyTable(at path: [String], line: Int, _ body: (inout TOMLTable) throws(TOMLError) -> Void) throws(TOMLError) {
        try TOMLParser.walk(&root, path[...], fullPath: path, line: line, body)
    }

    private static func walk(_ table: inout TOMLTable, _ path: ArraySlice<String>, fullPath: [String], line: Int,
                             _ body: (inout TOMLTable) throws(TOMLError) -> Void) throws(TOMLError) {
        guard let first = path.first else { return try body(&table) }
        let rest = path.dropFirst()
        switch table[first] {
        case nil:
            var child = TOMLTable()
            child.line = line
            try walk(&child, rest, fullPath: fullPath, line: line, body)
            table.set(first, .table(child), line: line)
        case .table(var child):
            try walk(&child, rest, fullPath: fullPath, line: line, body)
            table.values[first] = .table(child)
        case .array(var elements):
            guard case .table(var last)? = elements.last else {
                throw TOMLError(line: line, message: "\"\(fullPath.joined(separator: "."))\": \"\(first)\" is not a table")
            }
            try walk(&last, rest, fullPath: fullPath, line: line, body)
            elements[elements.count - 1] = .table(last)
            table.values[first] = .array(elements)
        default:
            throw TOMLError(line: line, message: "\"\(fullPath.joined(separator: "."))\": \"\(first)\" is not a table")
        }
    }

    private mutating func appendTable(at path: [String], line headerLine: Int) throws(TOMLError) {
        let name = path.last!
        let isTableArray = tableArrays.contains(path)
        try modifyTable(at: Array(path.dropLast()), line: headerLine) { (table) throws(TOMLError) in
            var fresh = TOMLTable()
            fresh.line = headerLine
            switch table[name] {
            case nil:
                table.set(name, .array([.table(fresh)]), line: headerLine)
            case .array(var elements) where isTableArray:
                elements.append(.table(fresh))
                table.values[name] = .array(elements)
            default:
                throw TOMLError(line: headerLine, message: "[[\(path.joined(separator: "."))]] conflicts with a key of the same name")
            }
        }
        // A fresh element: the sub-tables of the previous element may be defined again.
        definedTables = definedTables.filter { !($0.starts(with: path) && $0.count > path.count) }
        tableArrays = tableArrays.filter { !($0.starts(with: path) && $0.count > path.count) }
    }

    // MARK: keys

    private mutating func parseKey() throws(TOMLError) -> [String] {
        var parts: [String] = []
        while true {
            skipWhitespace()
            guard let byte = peek() else { throw error("expected a key") }
            if byte == UInt8(ascii: "\"") {
                parts.append(try parseBasicString())
            } else if byte == UInt8(ascii: "'") {
                parts.append(try parseLiteralString())
            } else {
                let start = position
                while let b = peek(), isBareKeyByte(b) { position += 1 }
                guard position > start else { throw error("expected a key, found \(describe(byte))") }
                parts.append(String(decoding: bytes[start..<position], as: UTF8.self))
            }
            skipWhitespace()
            guard peek() == UInt8(ascii: ".") else { return parts }
            position += 1
        }
    }

    private func isBareKeyByte(_ b: UInt8) -> Bool {
        (b >= 48 && b <= 57) || (b >= 65 && b <= 90) || (b >= 97 && b <= 122) || b == UInt8(ascii: "_") || b == UInt8(ascii: "-")
    }

    // MARK: values

    private mutating func parseValue() throws(TOMLError) -> TOMLValue {
        guard let byte = peek() else { throw error("expected a value") }
        switch byte {
        case UInt8(ascii: "\""):
            if bytes[position...].starts(with: Array("\"\"\"".utf8)) { throw error("multi-line strings are not supported") }
            return .string(try parseBasicString())
        case UInt8(ascii: "'"):
            if bytes[position...].starts(with: Array("'''".utf8)) { throw error("multi-line strings are not supported") }
            return .string(try parseLiteralString())
        case UInt8(ascii: "["):
            return try parseArray()
        case UInt8(ascii: "{"):
            return try parseInlineTable()
        case UInt8(ascii: "t"), UInt8(ascii: "f"):
            if consume("true") { return .boolean(true) }
            if consume("false") { return .boolean(false) }
            throw error("invalid value \(describeWord())")
        case UInt8(ascii: "+"), UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            return try parseInteger()
        default:
            throw error("invalid value \(describeWord())")
        }
    }

    private mutating func parseInteger() throws(TOMLError) -> TOMLValue {
        let start = position
        while let b = peek(), !isValueEnd(b) { position += 1 }
        let text = String(decoding: bytes[start..<position], as: UTF8.self)
        var digits = Substring(text)
        var negative = false
        if let sign = digits.first, sign == "+" || sign == "-" {
            negative = sign == "-"
            digits = digits.dropFirst()
        }
        guard let first = digits.first, let last = digits.last, first.isASCII, first.isNumber, last.isNumber,
              !digits.contains("__"), digits.allSatisfy({ ($0.isASCII && $0.isNumber) || $0 == "_" }),
              !(digits.count > 1 && first == "0") else {
            if text.contains(".") || text.contains("e") || text.contains("E") || text == "inf" || text == "nan" {
                throw TOMLError(line: line, message: "floating-point values are not supported: \(text)")
            }
            if text.count >= 10, text.dropFirst(4).first == "-" {
                throw TOMLError(line: line, message: "dates are not supported: \(text)")
            }
            throw TOMLError(line: line, message: "invalid value \"\(text)\"")
        }
        guard let magnitude = Int64(digits.filter { $0 != "_" }) else {
            throw TOMLError(line: line, message: "integer out of range: \(text)")
        }
        return .integer(negative ? -magnitude : magnitude)
    }

    private func isValueEnd(_ b: UInt8) -> Bool {
        b == UInt8(ascii: " ") || b == UInt8(ascii: "\t") || b == UInt8(ascii: "\n") || b == UInt8(ascii: "\r")
            || b == UInt8(ascii: ",") || b == UInt8(ascii: "]") || b == UInt8(ascii: "}") || b == UInt8(ascii: "#")
    }

    private mutating func parseArray() throws(TOMLError) -> TOMLValue {
        let openLine = line
        position += 1
        var elements: [TOMLValue] = []
        while true {
            try skipWhitespaceCommentsAndNewlines()
            guard let byte = peek() else { throw TOMLError(line: openLine, message: "unterminated array") }
            if byte == UInt8(ascii: "]") { position += 1; return .array(elements) }
            elements.append(try parseValue())
            try skipWhitespaceCommentsAndNewlines()
            guard let next = peek() else { throw TOMLError(line: openLine, message: "unterminated array") }
            if next == UInt8(ascii: ",") { position += 1; continue }
            if next == UInt8(ascii: "]") { position += 1; return .array(elements) }
            throw error("expected \",\" or \"]\" in array, found \(describe(next))")
        }
    }

    private mutating func parseInlineTable() throws(TOMLError) -> TOMLValue {
        position += 1
        var table = TOMLTable()
        table.line = line
        skipWhitespace()
        if peek() == UInt8(ascii: "}") { position += 1; return .table(table) }
        while true {
            skipWhitespace()
            let keyLine = line
            let key = try parseKey()
            skipWhitespace()
            guard peek() == UInt8(ascii: "=") else { throw error("expected \"=\" after key \"\(key.joined(separator: "."))\"") }
            position += 1
            skipWhitespace()
            let value = try parseValue()
            try TOMLParser.walk(&table, key.dropLast(), fullPath: key, line: keyLine) { (inner) throws(TOMLError) in
                guard inner[key.last!] == nil else {
                    throw TOMLError(line: keyLine, message: "duplicate key \"\(key.joined(separator: "."))\"")
                }
                inner.set(key.last!, value, line: keyLine)
            }
            skipWhitespace()
            guard let next = peek() else { throw error("unterminated inline table") }
            if next == UInt8(ascii: ",") { position += 1; continue }
            if next == UInt8(ascii: "}") { position += 1; return .table(table) }
            throw error("expected \",\" or \"}\" in inline table, found \(describe(next))")
        }
    }

    private mutating func parseBasicString() throws(TOMLError) -> String {
        position += 1
        var output: [UInt8] = []
        while true {
            guard let byte = peek(), byte != UInt8(ascii: "\n") else { throw error("unterminated string") }
            position += 1
            switch byte {
            case UInt8(ascii: "\""):
                return String(decoding: output, as: UTF8.self)
            case UInt8(ascii: "\\"):
                guard let escape = peek() else { throw error("unterminated string") }
                position += 1
                switch escape {
                case UInt8(ascii: "b"): output.append(8)
                case UInt8(ascii: "t"): output.append(9)
                case UInt8(ascii: "n"): output.append(10)
                case UInt8(ascii: "f"): output.append(12)
                case UInt8(ascii: "r"): output.append(13)
                case UInt8(ascii: "\""): output.append(34)
                case UInt8(ascii: "\\"): output.append(92)
                case UInt8(ascii: "u"), UInt8(ascii: "U"):
                    let count = escape == UInt8(ascii: "u") ? 4 : 8
                    guard position + count <= bytes.count,
                          let scalarValue = UInt32(String(decoding: bytes[position..<position + count], as: UTF8.self), radix: 16),
                          let scalar = Unicode.Scalar(scalarValue) else {
                        throw error("invalid unicode escape in string")
                    }
                    position += count
                    output.append(contentsOf: Array(String(Character(scalar)).utf8))
                default:
                    throw error("invalid escape \"\\\(describeByte(escape))\" in string")
                }
            default:
                if byte < 0x20 && byte != 9 || byte == 0x7F { throw error("control character in string") }
                output.append(byte)
            }
        }
    }

    private mutating func parseLiteralString() throws(TOMLError) -> String {
        position += 1
        let start = position
        while let byte = peek(), byte != UInt8(ascii: "'") {
            if byte == UInt8(ascii: "\n") { break }
            if byte < 0x20 && byte != 9 || byte == 0x7F { throw error("control character in string") }
            position += 1
        }
        guard peek() == UInt8(ascii: "'") else { throw error("unterminated string") }
        let text = String(decoding: bytes[start..<position], as: UTF8.self)
        position += 1
        return text
    }

    // MARK: whitespace, comments, line ends

    private func peek() -> UInt8? { position < bytes.count ? bytes[position] : nil }

    private mutating func consume(_ word: String) -> Bool {
        let wordBytes = Array(word.utf8)
        guard bytes[position...].starts(with: wordBytes) else { return false }
        let end = position + wordBytes.count
        if end < bytes.count, !isValueEnd(bytes[end]) { return false }
        position = end
        return true
    }

    private mutating func skipWhitespace() {
        while let b = peek(), b == UInt8(ascii: " ") || b == UInt8(ascii: "\t") { position += 1 }
    }

    private mutating func skipComment() throws(TOMLError) {
        guard peek() == UInt8(ascii: "#") else { return }
        while let b = peek(), b != UInt8(ascii: "\n") {
            if b < 0x20 && b != 9 && b != 13 || b == 0x7F { throw error("control character in comment") }
            position += 1
        }
    }

    /// After a value or header: optional spaces and comment, then a newline or the end.
    private mutating func skipLineEnd() throws(TOMLError) {
        skipWhitespace()
        try skipComment()
        guard let byte = peek() else { return }
        if byte == UInt8(ascii: "\r"), position + 1 < bytes.count, bytes[position + 1] == UInt8(ascii: "\n") { position += 1 }
        guard peek() == UInt8(ascii: "\n") else { throw error("expected the end of the line, found \(describeWord())") }
        position += 1
        line += 1
    }

    private mutating func skipWhitespaceCommentsAndNewlines() throws(TOMLError) {
        while true {
            skipWhitespace()
            try skipComment()
            guard let byte = peek() else { return }
            if byte == UInt8(ascii: "\n") { position += 1; line += 1; continue }
            if byte == UInt8(ascii: "\r") { position += 1; continue }
            return
        }
    }

    // MARK: errors

    private func error(_ message: String) -> TOMLError { TOMLError(line: line, message: message) }

    private func describe(_ byte: UInt8) -> String {
        byte == UInt8(ascii: "\n") ? "the end of the line" : "\"\(describeByte(byte))\""
    }

    private func describeByte(_ byte: UInt8) -> String {
        byte >= 0x20 && byte < 0x7F ? String(UnicodeScalar(byte)) : "\\x" + String(byte, radix: 16)
    }

    /// The text from here to the next space or line end, quoted, for error messages.
    private func describeWord() -> String {
        var end = position
        while end < bytes.count, !isValueEnd(bytes[end]), end - position < 40 { end += 1 }
        if end == position { return position < bytes.count ? describe(bytes[position]) : "the end of the file" }
        return "\"" + String(decoding: bytes[position..<end], as: UTF8.self) + "\""
    }
}

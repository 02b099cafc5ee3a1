import BerthOS

/// A systemd unit file as systemd.syntax(7) reads it: `[Section]` headers,
/// `Key=Value` lines, `#` and `;` comment lines, a backslash at the end of
/// a line continuing it (replaced by a space; comment lines inside a
/// continuation are skipped), repeated keys kept in order and repeated
/// sections merged. Every entry keeps the line it came from, so a quadlet
/// error can name `FILE:LINE`.
package struct UnitFile: Sendable {
    package struct Entry: Sendable, Equatable {
        package var key: String
        package var value: String
        /// 1-based line of the key in its file (0: added, not read).
        package var line: Int
        /// The file it came from (a drop-in's, once merged).
        package var path: String

        package init(key: String, value: String, line: Int = 0, path: String = "") {
            self.key = key
            self.value = value
            self.line = line
            self.path = path
        }
    }

    package struct Section: Sendable {
        package var name: String
        package var entries: [Entry]

        package init(name: String, entries: [Entry] = []) {
            self.name = name
            self.entries = entries
        }
    }

    package var path: String
    package var sections: [Section] = []

    package init(path: String, sections: [Section] = []) {
        self.path = path
        self.sections = sections
    }

    /// The file name without its directory (`web.container`).
    package var fileName: String { String(path.split(separator: "/").last ?? Substring(path)) }

    /// Reads `text`; errors name `path` and the line.
    package static func parse(_ text: String, path: String) throws(UnitFileError) -> UnitFile {
        var file = UnitFile(path: path)
        var current: Int? = nil
        var pending: (text: String, line: Int)? = nil
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false)

        func take(_ logical: String, _ number: Int) throws(UnitFileError) {
            if logical.hasPrefix("[") {
                guard logical.hasSuffix("]"), logical.count > 2 else {
                    throw UnitFileError(path: path, line: number, "\"\(logical)\" is not a [section] header")
                }
                let name = String(logical.dropFirst().dropLast())
                guard !name.contains("["), !name.contains("]"), !name.unicodeScalars.contains(where: { $0.value < 0x20 }) else {
                    throw UnitFileError(path: path, line: number, "\"\(logical)\" is not a [section] header")
                }
                if let index = file.sections.firstIndex(where: { $0.name == name }) {
                    current = index
                } else {
                    file.sections.append(Section(name: name))
                    current = file.sections.count - 1
                }
                return
            }
            guard let equals = logical.firstIndex(of: "=") else {
                throw UnitFileError(path: path, line: number, "\"\(logical)\" is not a [section], a KEY=VALUE line or a comment")
            }
            let key = String(logical[..<equals]).trimmed
            guard !key.isEmpty else {
                throw UnitFileError(path: path, line: number, "\"\(logical)\" has no key before the =")
            }
            guard let section = current else {
                throw UnitFileError(path: path, line: number, "\(key)= comes before any [section]")
            }
            let value = String(logical[logical.index(after: equals)...]).trimmed
            file.sections[section].entries.append(Entry(key: key, value: value, line: number, path: path))
        }

        // systemd's reading: a comment line is skipped even inside a
        // continuation, an empty one ends it; the backslash becomes a space
        // and the next line is added as it is.
        for (index, raw) in lines.enumerated() {
            let number = index + 1
            let line = String(raw).trimmed
            if line.hasPrefix("#") || line.hasPrefix(";") { continue }
            if let started = pending {
                var tail = String(raw)
                while let last = tail.unicodeScalars.last, last == " " || last == "\t" || last == "\r" { tail.unicodeScalars.removeLast() }
                if tail.hasSuffix("\\") && !line.isEmpty {
                    pending = (started.text + tail.dropLast() + " ", started.line)
                    continue
                }
                pending = nil
                try take((started.text + tail).trimmed, started.line)
                continue
            }
            if line.isEmpty { continue }
            if line.hasSuffix("\\") {
                pending = (line.dropLast() + " ", number)
                continue
            }
            try take(line, number)
        }
        if let started = pending {
            try take(started.text.trimmed, started.line)
        }
        return file
    }

    /// Reads the file at `path`.
    package static func load(_ path: String) throws(UnitFileError) -> UnitFile {
        guard let text = try? Files.readString(path) else {
            throw UnitFileError(path: path, line: nil, "cannot read it")
        }
        return try parse(text, path: path)
    }

    /// `other`'s entries after this file's, section by section (a drop-in).
    package mutating func merge(_ other: UnitFile) {
        for section in other.sections {
            if let index = sections.firstIndex(where: { $0.name == section.name }) {
                sections[index].entries += section.entries
            } else {
                sections.append(section)
            }
        }
    }

    package func section(_ name: String) -> Section? { sections.first { $0.name == name } }

    package func has(_ section: String, _ key: String) -> Bool {
        self.section(section)?.entries.contains { $0.key == key } ?? false
    }

    /// The last `key` of `section`, with one pair of surrounding double
    /// quotes removed (quadlet's Lookup); nil when absent.
    package func value(_ section: String, _ key: String) -> Entry? {
        guard var entry = self.section(section)?.entries.last(where: { $0.key == key }) else { return nil }
        if entry.value.count >= 2, entry.value.hasPrefix("\""), entry.value.hasSuffix("\"") {
            entry.value = String(entry.value.dropFirst().dropLast())
        }
        return entry
    }

    /// The last `key` of `section` as written (Exec=, whose quotes are the command's).
    package func rawValue(_ section: String, _ key: String) -> Entry? {
        self.section(section)?.entries.last { $0.key == key }
    }

    /// Every `key` of `section` in order; an empty value drops those before it (systemd's reset).
    package func values(_ section: String, _ key: String) -> [Entry] {
        var result: [Entry] = []
        for entry in self.section(section)?.entries ?? [] where entry.key == key {
            if entry.value.isEmpty { result = [] } else { result.append(entry) }
        }
        return result
    }

    /// The last `key` as a boolean (1, yes, true, on / 0, no, false, off).
    package func bool(_ section: String, _ key: String) throws(UnitFileError) -> Bool? {
        guard let entry = value(section, key) else { return nil }
        switch entry.value.lowercased() {
        case "1", "yes", "true", "on": return true
        case "0", "no", "false", "off": return false
        default: throw UnitFileError(entry, "\(key)=\(entry.value): expected true or false (yes, no, 1, 0, on, off)")
        }
    }

    /// Every `key`'s value split into words as systemd splits command
    /// lines (quotes removed, C escapes applied): quadlet's LookupAllArgs.
    package func arguments(_ section: String, _ key: String) throws(UnitFileError) -> [String] {
        var words: [String] = []
        for entry in values(section, key) {
            do { words += try SystemdWords.split(entry.value) } catch {
                throw UnitFileError(entry, "\(key)=: \(error.message)")
            }
        }
        return words
    }

    /// Every `key`'s value split into words, quotes removed but backslashes
    /// kept as they are (systemd's strv keys: WantedBy=, AddCapability=).
    package func list(_ section: String, _ key: String) -> [String] {
        values(section, key).flatMap { (try? SystemdWords.split($0.value, escapes: false)) ?? [] }
    }

    /// The file as text: each section, a blank line between them.
    package func render(header: [String] = []) -> String {
        var out = header.map { $0 + "\n" }.joined()
        for (index, section) in sections.enumerated() {
            if index > 0 || !header.isEmpty { out += "\n" }
            out += "[\(section.name)]\n"
            for entry in section.entries { out += "\(entry.key)=\(entry.value)\n" }
        }
        return out
    }
}

/// A unit file that cannot be read or turned into a service: `FILE:LINE: message`.
package struct UnitFileError: Error, Sendable, CustomStringConvertible {
    package var path: String
    package var line: Int?
    package var message: String

    package init(path: String, line: Int?, _ message: String) {
        self.path = path
        self.line = line
        self.message = message
    }

    package init(_ entry: UnitFile.Entry, _ message: String) {
        self.init(path: entry.path, line: entry.line > 0 ? entry.line : nil, message)
    }

    package var description: String { path + (line.map { ":\($0)" } ?? "") + ": " + message }
}

/// Words of systemd command lines (systemd.service(5) "Command lines"):
/// splitting as systemd's extract_first_word does for ExecStart= and
/// quadlet for Exec=, and quoting words back so systemd reads them again.
package enum SystemdWords {
    package struct SplitError: Error, Sendable {
        package var message: String
    }

    /// Splits at unquoted whitespace; `"…"` and `'…'` quote (anywhere in a
    /// word) and are removed; with `escapes`, C escapes (`\n`, `\t`, `\"`,
    /// `\\`, `\s`, `\xNN`, `\NNN`, `\uNNNN`, `\UNNNNNNNN`) are applied, an
    /// unknown one is an error. An unbalanced quote ends the word, a
    /// trailing backslash is dropped (systemd's relaxed mode).
    package static func split(_ text: String, escapes: Bool = true) throws(SplitError) -> [String] {
        let bytes = Array(text.utf8)
        var words: [String] = []
        var index = 0
        func isSpace(_ byte: UInt8) -> Bool { byte == 0x20 || byte == 0x09 || byte == 0x0A || byte == 0x0D }
        while true {
            while index < bytes.count, isSpace(bytes[index]) { index += 1 }
            guard index < bytes.count else { break }
            var word: [UInt8] = []
            var quote: UInt8? = nil
            while index < bytes.count {
                let byte = bytes[index]
                if let open = quote {
                    if byte == open { quote = nil; index += 1; continue }
                } else {
                    if isSpace(byte) { break }
                    if byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "'") { quote = byte; index += 1; continue }
                }
                if byte == UInt8(ascii: "\\") && escapes {
                    index += 1
                    guard index < bytes.count else { break }
                    let (length, unescaped) = try unescape(bytes, at: index)
                    word += unescaped
                    index += length
                    continue
                }
                word.append(byte)
                index += 1
            }
            words.append(String(decoding: word, as: UTF8.self))
        }
        return words
    }

    /// One C escape after a backslash at `index`: its length and bytes.
    static func unescape(_ bytes: [UInt8], at index: Int) throws(SplitError) -> (Int, [UInt8]) {
        func hex(_ offset: Int) -> UInt32? {
            guard index + offset < bytes.count, let value = UInt32(String(UnicodeScalar(bytes[index + offset])), radix: 16) else { return nil }
            return value
        }
        func scalar(_ count: Int) throws(SplitError) -> [UInt8] {
            var value: UInt32 = 0
            for offset in 1...count {
                guard let digit = hex(offset) else { throw SplitError(message: "bad escape \\\(Character(UnicodeScalar(bytes[index])))") }
                value = value << 4 | digit
            }
            guard value != 0, let scalar = UnicodeScalar(value) else { throw SplitError(message: "bad unicode escape") }
            return Array(String(Character(scalar)).utf8)
        }
        let simple: [UInt8: UInt8] = [
            UInt8(ascii: "a"): 0x07, UInt8(ascii: "b"): 0x08, UInt8(ascii: "f"): 0x0C, UInt8(ascii: "n"): 0x0A,
            UInt8(ascii: "r"): 0x0D, UInt8(ascii: "t"): 0x09, UInt8(ascii: "v"): 0x0B, UInt8(ascii: "\\"): 0x5C,
            UInt8(ascii: "\""): 0x22, UInt8(ascii: "'"): 0x27, UInt8(ascii: "s"): 0x20,
        ]
        let byte = bytes[index]
        if let value = simple[byte] { return (1, [value]) }
        switch byte {
        case UInt8(ascii: "x"):
            guard let high = hex(1), let low = hex(2), high | low != 0 else { throw SplitError(message: "bad escape \\x") }
            return (3, [UInt8(high << 4 | low)])
        case UInt8(ascii: "u"):
            return (5, try scalar(4))
        case UInt8(ascii: "U"):
            return (9, try scalar(8))
        case UInt8(ascii: "0")...UInt8(ascii: "7"):
            var value: UInt32 = 0
            for offset in 0..<3 {
                guard index + offset < bytes.count, (UInt8(ascii: "0")...UInt8(ascii: "7")).contains(bytes[index + offset]) else {
                    throw SplitError(message: "bad octal escape")
                }
                value = value << 3 | UInt32(bytes[index + offset] - UInt8(ascii: "0"))
            }
            guard value != 0, value <= 255 else { throw SplitError(message: "bad octal escape") }
            return (3, [UInt8(value)])
        default:
            throw SplitError(message: "unknown escape \\\(Character(UnicodeScalar(byte)))")
        }
    }

    /// A command line systemd splits back into `words`: a word with
    /// whitespace, a quote, a backslash or a control character is written
    /// in double quotes with C escapes (quadlet's escapeWords). `%`
    /// specifiers and `$` variables are left for systemd to expand.
    package static func join(_ words: [String]) -> String {
        words.map(quote).joined(separator: " ")
    }

    /// `words` taken literally: `%` and `$` doubled, so systemd expands
    /// neither (values copied from a container's record).
    package static func joinLiteral(_ words: [String]) -> String {
        join(words.map(literal))
    }

    package static func literal(_ word: String) -> String {
        var out = ""
        for character in word {
            if character == "$" || character == "%" { out.append(character) }
            out.append(character)
        }
        return out
    }

    package static func quote(_ word: String) -> String {
        func needs(_ scalar: UnicodeScalar) -> Bool {
            scalar.value < 0x21 || scalar.value == 0x7F || scalar == "\"" || scalar == "'" || scalar == "\\"
        }
        if word.isEmpty { return "\"\"" }
        guard word.unicodeScalars.contains(where: needs) else { return word }
        var out = "\""
        for scalar in word.unicodeScalars {
            switch scalar {
            case "\u{07}": out += "\\a"
            case "\u{08}": out += "\\b"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case "\u{0B}": out += "\\v"
            case "\u{0C}": out += "\\f"
            case "\\": out += "\\\\"
            case "\"": out += "\\\""
            case " ", "'": out.unicodeScalars.append(scalar)
            default:
                if scalar.value < 0x20 || scalar.value == 0x7F {
                    let hex = String(scalar.value, radix: 16)
                    out += "\\x" + (hex.count < 2 ? "0" : "") + hex
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        return out + "\""
    }
}

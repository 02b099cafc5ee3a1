#if canImport(Glibc)
import Glibc
#endif
import Testing
import BerthEngine
import BerthOS
import BerthTestSupport
import CBerth

private func bytes(_ text: String) -> [UInt8] { Array(text.utf8) }

/// The native protocol's fields of one entry, decoded as journald does:
/// `NAME=value\n`, or `NAME\n` + 64-bit little-endian size + value + `\n`.
private func decode(_ entry: [UInt8]) -> [(String, [UInt8])]? {
    var fields: [(String, [UInt8])] = []
    var index = 0
    while index < entry.count {
        guard let end = entry[index...].firstIndex(where: { $0 == UInt8(ascii: "=") || $0 == UInt8(ascii: "\n") }) else { return nil }
        let name = String(decoding: entry[index..<end], as: UTF8.self)
        if entry[end] == UInt8(ascii: "=") {
            guard let newline = entry[end...].firstIndex(of: UInt8(ascii: "\n")) else { return nil }
            fields.append((name, Array(entry[(end + 1)..<newline])))
            index = newline + 1
        } else {
            guard end + 9 <= entry.count else { return nil }
            var size: UInt64 = 0
            for (shift, byte) in entry[(end + 1)..<(end + 9)].enumerated() { size |= UInt64(byte) << (8 * UInt64(shift)) }
            let start = end + 9
            guard start + Int(size) < entry.count, entry[start + Int(size)] == UInt8(ascii: "\n") else { return nil }
            fields.append((name, Array(entry[start..<(start + Int(size))])))
            index = start + Int(size) + 1
        }
    }
    return fields
}

@Suite struct JournaldTests {
    @Test func simpleFields() {
        let entry = JournalEntry.encode([("MESSAGE", bytes("hello world")), ("PRIORITY", bytes("6"))])
        #expect(entry == bytes("MESSAGE=hello world\nPRIORITY=6\n"))
        // An empty value, and "=" inside a value, stay in the simple form.
        #expect(JournalEntry.encode([("MESSAGE", []), ("A", bytes("x=y"))]) == bytes("MESSAGE=\nA=x=y\n"))
    }

    @Test func binarySafeForm() {
        let value = bytes("two\nlines")
        let entry = JournalEntry.encode([("MESSAGE", value), ("PRIORITY", bytes("3"))])
        #expect(entry == bytes("MESSAGE\n") + [9, 0, 0, 0, 0, 0, 0, 0] + value + bytes("\nPRIORITY=3\n"))
        // Any byte survives the binary form, NUL and a trailing newline too.
        let binary: [UInt8] = [0, 10, 255, 61, 10]
        let decoded = decode(JournalEntry.encode([("DATA", binary), ("B", bytes("b"))]))
        #expect(decoded?.map(\.0) == ["DATA", "B"])
        #expect(decoded?.first?.1 == binary)
    }

    @Test func containerEntries() throws {
        let id = String(repeating: "ab", count: 32)
        let fixed = JournalEntry.encode(JournalWriter.containerFields(id: id, name: "web", tag: nil))
        let out = try #require(decode(JournalWriter.entry(message: bytes("hi"), stream: .stdout, partial: false, fixed: fixed)))
        #expect(out.map(\.0) == ["MESSAGE", "PRIORITY", "CONTAINER_ID_FULL", "CONTAINER_ID", "CONTAINER_NAME", "SYSLOG_IDENTIFIER"])
        #expect(out.map { String(decoding: $0.1, as: UTF8.self) } == ["hi", "6", id, String(id.prefix(12)), "web", "web"])
        // stderr is PRIORITY 3; a piece of a line is marked partial; a tag names it.
        let tagged = JournalEntry.encode(JournalWriter.containerFields(id: id, name: "web", tag: "front"))
        let err = try #require(decode(JournalWriter.entry(message: bytes("oops"), stream: .stderr, partial: true, fixed: tagged)))
        let fields = Dictionary(err.map { ($0.0, String(decoding: $0.1, as: UTF8.self)) }, uniquingKeysWith: { a, _ in a })
        #expect(fields["PRIORITY"] == "3")
        #expect(fields["CONTAINER_TAG"] == "front")
        #expect(fields["SYSLOG_IDENTIFIER"] == "front")
        #expect(fields["CONTAINER_PARTIAL_MESSAGE"] == "true")
    }

    @Test(arguments: [
        (100, 212_992, JournalTransport.datagram),
        (212_960, 212_992, .datagram),
        (212_961, 212_992, .memfd),
        (300_000, 212_992, .memfd),
        (300_000, 8_388_608, .datagram),
        (300_000, -1, .datagram), // unknown buffer: try, EMSGSIZE falls back
    ])
    func memfdFallbackDecision(size: Int, sendBuffer: Int, expected: JournalTransport) {
        #expect(JournalTransport.choose(entrySize: size, sendBuffer: sendBuffer) == expected)
    }

    @Test func logOptions() throws {
        #expect(try LogOptions.parse(driver: nil, options: ["max-size=1k"], onTerminal: true) == LogOptions(maxSize: 1024))
        #expect(try LogOptions.parse(driver: "json-file", options: [], onTerminal: false).driver == .k8sFile)
        #expect(try LogOptions.parse(driver: "journald", options: ["tag={{.Name}}-x"], onTerminal: false)
            == LogOptions(driver: .journald, tag: "{{.Name}}-x"))
        #expect(try LogOptions.parse(driver: "passthrough", options: [], onTerminal: false).driver == .passthrough)
        #expect(try LogOptions.parse(driver: "passthrough-tty", options: [], onTerminal: true).driver == .passthroughTTY)
        let refused: [(String?, [String], Bool)] = [
            ("syslog", [], false),
            ("passthrough", [], true),
            (nil, ["tag=x"], false),
            ("none", ["max-size=1k"], false),
            ("journald", ["tag={{.Labels}}"], false),
            (nil, ["max-size="], false),
            (nil, ["path=/x"], false),
        ]
        for (driver, options, onTerminal) in refused {
            #expect(throws: EngineError.self) { try LogOptions.parse(driver: driver, options: options, onTerminal: onTerminal) }
        }
        #expect(LogOptions.expand(tag: "{{.Name}}/{{.ImageName}}/{{.ID}}", id: "abc", name: "web", image: "busybox") == "web/busybox/abc")
    }

    @Test func journalctlLines() throws {
        let line = #"{"__CURSOR":"s=1","__REALTIME_TIMESTAMP":"1795000000123456","PRIORITY":"3","MESSAGE":"oops"}"#
        let parsed = JournalReader.parse(line: Array(line.utf8))
        #expect(parsed.cursor == "s=1")
        #expect(parsed.record.map { String(decoding: $0, as: UTF8.self) } == "2026-11-18T11:06:40.123456000Z stderr F oops")
        // Binary values come as byte arrays; conmon's trailing newline is dropped; a piece is P.
        let binary = #"{"__REALTIME_TIMESTAMP":"0","PRIORITY":"6","MESSAGE":[104,105,10],"CONTAINER_PARTIAL_MESSAGE":"true"}"#
        #expect(JournalReader.parse(line: Array(binary.utf8)).record.map { String(decoding: $0, as: UTF8.self) }
            == "1970-01-01T00:00:00.000000000Z stdout P hi")
        // Not the container's output (another priority), or not JSON: no record.
        #expect(JournalReader.parse(line: Array(#"{"__CURSOR":"c","__REALTIME_TIMESTAMP":"1","PRIORITY":"5","MESSAGE":"x"}"#.utf8)) == ("c", nil))
        #expect(JournalReader.parse(line: Array("-- No entries --".utf8)) == (nil, nil))
        #expect(JournalReader.arguments(containerID: "abc", uid: 1000, after: "c9", follow: true)
            == ["journalctl", "--no-pager", "--quiet", "--output=json", "--all", "--follow", "--lines=all", "--after-cursor=c9",
                "CONTAINER_ID_FULL=abc", "_UID=1000"])
    }

    /// A JournalWriter on a socketpair-like datagram socket: lines become
    /// entries, pieces wait for their newline, a long line goes whole
    /// through a sealed memfd, and close sends what was left.
    @Test func writerSendsLinesAndMemfds() throws {
        let directory = TemporaryDirectory("journal")
        defer { directory.remove() }
        let path = directory.subpath("journal.sock")
        let server = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        #expect(server >= 0)
        defer { close(server) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (index, byte) in path.utf8.enumerated() { raw[index] = byte }
        }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(server, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        #expect(bound == 0)

        let id = String(repeating: "0123456789abcdef", count: 4)
        var writer = JournalWriter(socket: try JournalSocket(path: path), id: id, name: "n", tag: nil)
        let long = [UInt8](repeating: UInt8(ascii: "x"), count: 300_000)
        writer.write(.stdout, bytes("one\ntw"))
        writer.write(.stderr, bytes("err\n"))
        writer.write(.stdout, bytes("o\n") + long + bytes("\nrest"))
        writer.close()
        #expect(writer.lastError == nil)

        var messages: [(String, [UInt8], Bool)] = []
        var buffer = [UInt8](repeating: 0, count: 1 << 20)
        for _ in 0..<5 {
            var fd: Int32 = -1
            let n = buffer.withUnsafeMutableBytes { berth_recv_message(server, $0.baseAddress, UInt($0.count), &fd) }
            #expect(n >= 0)
            var entry = Array(buffer[0..<max(0, n)])
            if fd >= 0 {
                // The memfd form: an empty datagram, a sealed memfd.
                #expect(n == 0)
                #expect(fcntl(fd, 1034 /* F_GET_SEALS */) & 0xf == 0xf)
                var st = stat()
                fstat(fd, &st)
                entry = [UInt8](repeating: 0, count: Int(st.st_size))
                _ = entry.withUnsafeMutableBytes { pread(fd, $0.baseAddress, $0.count, 0) }
                close(fd)
            }
            let fields = try #require(decode(entry))
            let message = try #require(fields.first { $0.0 == "MESSAGE" }?.1)
            let priority = fields.first { $0.0 == "PRIORITY" }.map { String(decoding: $0.1, as: UTF8.self) } ?? ""
            messages.append((priority, message, fd >= 0))
            #expect(fields.contains { $0.0 == "CONTAINER_PARTIAL_MESSAGE" } == (message == bytes("rest")))
        }
        #expect(messages.map(\.0) == ["6", "3", "6", "6", "6"])
        #expect(messages.map(\.1) == [bytes("one"), bytes("err"), bytes("two"), long, bytes("rest")])
        #expect(messages.map(\.2) == [false, false, false, true, false])
    }
}

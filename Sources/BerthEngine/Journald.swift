#if canImport(Glibc)
import Glibc
#endif
import BerthOS
import CBerth

// The journald log driver: each line the container writes becomes one entry
// in the systemd journal, sent with journald's native protocol
// (https://systemd.io/JOURNAL_NATIVE_PROTOCOL/, what sd_journal_sendv does)
// and carrying the fields conmon gives podman's containers, so `journalctl
// CONTAINER_NAME=web` and podman's tools find berth's entries too.

/// One journal entry in the native protocol's encoding.
package enum JournalEntry {
    /// The fields in order, each `NAME=value\n`; a value with a newline in it
    /// takes the binary-safe form `NAME\n`, its size as a 64-bit
    /// little-endian integer, the value, `\n`. Names are journald's: upper
    /// case letters, digits and `_`, not starting with `_` (the trusted
    /// fields journald adds itself).
    package static func encode(_ fields: [(name: String, value: [UInt8])]) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(fields.reduce(0) { $0 + $1.name.utf8.count + $1.value.count + 10 })
        for (name, value) in fields { append(name, value, to: &out) }
        return out
    }

    static func append(_ name: String, _ value: some Collection<UInt8>, to out: inout [UInt8]) {
        out.append(contentsOf: name.utf8)
        if value.contains(UInt8(ascii: "\n")) {
            out.append(UInt8(ascii: "\n"))
            var size = UInt64(value.count).littleEndian
            withUnsafeBytes(of: &size) { out.append(contentsOf: $0) }
        } else {
            out.append(UInt8(ascii: "="))
        }
        out.append(contentsOf: value)
        out.append(UInt8(ascii: "\n"))
    }
}

/// How an entry reaches journald.
package enum JournalTransport: Sendable, Equatable {
    /// The entry is the datagram.
    case datagram
    /// An empty datagram carrying a sealed memfd that holds the entry: the
    /// protocol's way for entries larger than a datagram may be.
    case memfd

    /// A datagram on a unix socket holds at most its send buffer less 32
    /// bytes (the kernel's unix_dgram_sendmsg); larger entries go through a
    /// memfd. A datagram the kernel still refuses (EMSGSIZE, ENOBUFS) is
    /// sent through a memfd too.
    package static func choose(entrySize: Int, sendBuffer: Int) -> JournalTransport {
        sendBuffer > 0 && entrySize > sendBuffer - 32 ? .memfd : .datagram
    }
}

/// A socket to journald (or, for tests, whatever listens at
/// `BERTH_JOURNAL_SOCKET`).
package struct JournalSocket: Sendable {
    /// Where journald listens for the native protocol.
    package static let systemPath = "/run/systemd/journal/socket"

    /// `BERTH_JOURNAL_SOCKET` when set (a knob for tests and diagnosis,
    /// Specs/logs.md), else journald's socket.
    package static var path: String {
        if let value = getenv("BERTH_JOURNAL_SOCKET"), value.pointee != 0 { return String(cString: value) }
        return systemPath
    }

    package let path: String
    private var descriptor: FileDescriptor
    private let sendBuffer: Int

    /// Connects to `path`: fails when nothing listens there.
    package init(path: String = JournalSocket.path) throws(Errno) {
        self.path = path
        descriptor = FileDescriptor(rawValue: try check(berth_unix_dgram_connect(path)))
        sendBuffer = Int(berth_socket_send_buffer(descriptor.rawValue))
    }

    /// "the systemd journal is not reachable at PATH: ERROR", the one line
    /// that create and start report.
    package static func unreachable(_ path: String, _ error: Errno) -> String {
        "the systemd journal is not reachable at \(path): \(error)"
    }

    /// Sends one encoded entry; blocks while journald's queue is full (as
    /// sd_journal_sendv does). A journald that was restarted meanwhile is
    /// connected to again, once.
    package mutating func send(_ entry: [UInt8]) throws(Errno) {
        do {
            try sendOnce(entry)
        } catch let error where [ECONNREFUSED, ENOTCONN, ECONNRESET].contains(error.rawValue) {
            let fresh = try check(berth_unix_dgram_connect(path))
            descriptor.close()
            descriptor = FileDescriptor(rawValue: fresh)
            try sendOnce(entry)
        }
    }

    private func sendOnce(_ entry: [UInt8]) throws(Errno) {
        if JournalTransport.choose(entrySize: entry.count, sendBuffer: sendBuffer) == .datagram {
            let sent = entry.withUnsafeBytes { Glibc.send(descriptor.rawValue, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if sent >= 0 { return }
            let error = Errno.current
            if error == .interrupted { return try sendOnce(entry) }
            guard error.rawValue == EMSGSIZE || error.rawValue == ENOBUFS else { throw error }
        }
        try sendThroughMemfd(entry)
    }

    private func sendThroughMemfd(_ entry: [UInt8]) throws(Errno) {
        let memfd = try check(entry.withUnsafeBytes { berth_sealed_memfd("berth-journal", $0.baseAddress, UInt($0.count)) })
        defer { Glibc.close(memfd) }
        _ = try check(berth_send_only_fd(descriptor.rawValue, memfd))
    }

    package func close() { descriptor.close() }
}

/// Sends a container's output to the journal, one entry a line.
///
/// A line is sent once its newline comes (the newline is not part of
/// MESSAGE); a line longer than `lineLimit` is sent in pieces of that size,
/// each but the last marked `CONTAINER_PARTIAL_MESSAGE=true`, and so is the
/// unfinished line left when the writer closes. Readers join the pieces
/// (podman does; so does `berth logs`). Errors do not stop the container:
/// the entry is dropped and `lastError` says why.
package struct JournalWriter: Sendable {
    /// The longest line kept back waiting for its newline.
    package static let lineLimit = 1 << 20

    private var socket: JournalSocket
    /// The fields after MESSAGE and PRIORITY, encoded once.
    private let fixed: [UInt8]
    private var stdout: [UInt8] = []
    private var stderr: [UInt8] = []
    package private(set) var lastError: Errno?

    package init(socket: JournalSocket, id: String, name: String, tag: String?) {
        self.socket = socket
        fixed = JournalEntry.encode(Self.containerFields(id: id, name: name, tag: tag))
    }

    /// conmon's fields: the id in full and in short, the name, the tag if
    /// any; SYSLOG_IDENTIFIER is the tag, or else the name.
    package static func containerFields(id: String, name: String, tag: String?) -> [(name: String, value: [UInt8])] {
        var fields: [(name: String, value: [UInt8])] = [
            ("CONTAINER_ID_FULL", Array(id.utf8)),
            ("CONTAINER_ID", Array(id.prefix(12).utf8)),
            ("CONTAINER_NAME", Array(name.utf8)),
        ]
        if let tag { fields.append(("CONTAINER_TAG", Array(tag.utf8))) }
        fields.append(("SYSLOG_IDENTIFIER", Array((tag ?? name).utf8)))
        return fields
    }

    /// The entry for one line (or piece of one): MESSAGE, PRIORITY (6,
    /// info, for stdout; 3, error, for stderr), `fixed`, and
    /// CONTAINER_PARTIAL_MESSAGE=true for a piece that does not end its line.
    package static func entry(message: some Collection<UInt8>, stream: LogStream, partial: Bool, fixed: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(message.count + fixed.count + 64)
        JournalEntry.append("MESSAGE", message, to: &out)
        JournalEntry.append("PRIORITY", (stream == .stderr ? "3" : "6").utf8, to: &out)
        out.append(contentsOf: fixed)
        if partial { JournalEntry.append("CONTAINER_PARTIAL_MESSAGE", "true".utf8, to: &out) }
        return out
    }

    package mutating func write(_ stream: LogStream, _ bytes: some Collection<UInt8>) {
        var pending = stream == .stderr ? stderr : stdout
        if stream == .stderr { stderr = [] } else { stdout = [] }
        defer { if stream == .stderr { stderr = pending } else { stdout = pending } }
        var rest = Array(bytes)[...]
        while let newline = rest.firstIndex(of: UInt8(ascii: "\n")) {
            if pending.isEmpty {
                send(rest[..<newline], stream, partial: false)
            } else {
                pending.append(contentsOf: rest[..<newline])
                send(pending, stream, partial: false)
                pending.removeAll(keepingCapacity: true)
            }
            rest = rest[(newline + 1)...]
        }
        pending.append(contentsOf: rest)
        while pending.count >= Self.lineLimit {
            send(pending[..<Self.lineLimit], stream, partial: true)
            pending.removeFirst(Self.lineLimit)
        }
    }

    private mutating func send(_ message: some Collection<UInt8>, _ stream: LogStream, partial: Bool) {
        do {
            try socket.send(Self.entry(message: message, stream: stream, partial: partial, fixed: fixed))
        } catch {
            lastError = error
        }
    }

    /// Sends what is left of unfinished lines, then closes the socket.
    package mutating func close() {
        if !stdout.isEmpty { send(stdout, .stdout, partial: true) }
        if !stderr.isEmpty { send(stderr, .stderr, partial: true) }
        stdout = []
        stderr = []
        socket.close()
    }
}

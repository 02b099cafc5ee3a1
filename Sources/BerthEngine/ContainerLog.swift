#if canImport(Glibc)
import Glibc
#endif
import BerthOS

// A container's log in podman's k8s-file format (the CRI log format), one
// record a line:
//
//     2026-11-22T10:04:05.123456789Z stdout F hello
//     2026-11-22T10:04:05.200000000Z stderr P progress: 50%
//     2026-11-22T10:04:06.000000000Z stderr F , done
//
// `F` ends a line (its newline is not written inside the content); `P` is
// the part of a line the container has written so far. The writer never
// holds output back waiting for a newline, and the reader joins the `P`
// pieces of one stream with the next piece of that stream.

/// Which of the container's output streams a log line came from.
package enum LogStream: String, Sendable, Codable {
    case stdout, stderr
}

// MARK: - Timestamp

/// A point in time with nanoseconds, in UTC (a `timespec`). Log records,
/// `--since` and `--until` use it.
package struct Timestamp: Sendable, Hashable, Comparable, CustomStringConvertible {
    /// Seconds since the Unix epoch.
    package var seconds: Int64
    /// 0 ..< 1_000_000_000.
    package var nanoseconds: Int32

    package init(seconds: Int64, nanoseconds: Int32 = 0) {
        self.seconds = seconds
        self.nanoseconds = nanoseconds
    }

    /// clock_gettime(CLOCK_REALTIME).
    package static func now() -> Timestamp {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return Timestamp(seconds: Int64(ts.tv_sec), nanoseconds: Int32(ts.tv_nsec))
    }

    package static func < (a: Timestamp, b: Timestamp) -> Bool {
        (a.seconds, a.nanoseconds) < (b.seconds, b.nanoseconds)
    }

    /// This time moved by `nanoseconds` (negative: earlier); saturates
    /// instead of overflowing.
    package func advanced(byNanoseconds delta: Int64) -> Timestamp {
        let (carry, rest) = delta.quotientAndRemainder(dividingBy: 1_000_000_000)
        var nanos = Int64(nanoseconds) + rest
        var secs = seconds.addingReportingOverflow(carry)
        if secs.overflow { return carry < 0 ? Timestamp(seconds: .min) : Timestamp(seconds: .max, nanoseconds: 999_999_999) }
        if nanos < 0 { nanos += 1_000_000_000; secs.partialValue -= 1 }
        if nanos >= 1_000_000_000 { nanos -= 1_000_000_000; secs.partialValue += 1 }
        return Timestamp(seconds: secs.partialValue, nanoseconds: Int32(nanos))
    }

    /// RFC 3339 in UTC with all nine digits of nanoseconds,
    /// `2026-11-22T10:04:05.123456789Z`: fixed width, so log lines align
    /// and sort as text (Go's RFC3339NanoFixed, which `docker logs -t` prints).
    package var rfc3339Nano: String {
        var bytes: [UInt8] = []
        appendRFC3339(to: &bytes, fraction: true)
        return String(decoding: bytes, as: UTF8.self)
    }

    /// RFC 3339 in UTC to the second, `2026-11-22T10:04:05Z` (record times).
    package var rfc3339: String {
        var bytes: [UInt8] = []
        appendRFC3339(to: &bytes, fraction: false)
        return String(decoding: bytes, as: UTF8.self)
    }

    package var description: String { rfc3339Nano }

    func appendRFC3339(to out: inout [UInt8], fraction: Bool) {
        let (days, secondOfDay) = floorDivision(seconds, 86_400)
        let (year, month, day) = Self.civil(fromDays: days)
        func digits(_ value: Int64, _ width: Int) {
            var divisor: Int64 = 1
            for _ in 1..<width { divisor *= 10 }
            var rest = value
            if rest >= divisor * 10 { out.append(contentsOf: String(rest / (divisor * 10)).utf8); rest %= divisor * 10 }
            while divisor > 0 {
                out.append(UInt8(ascii: "0") + UInt8(rest / divisor))
                rest %= divisor
                divisor /= 10
            }
        }
        if year < 0 { out.append(UInt8(ascii: "-")) }
        digits(abs(year), 4)
        out.append(UInt8(ascii: "-"))
        digits(month, 2)
        out.append(UInt8(ascii: "-"))
        digits(day, 2)
        out.append(UInt8(ascii: "T"))
        digits(secondOfDay / 3600, 2)
        out.append(UInt8(ascii: ":"))
        digits(secondOfDay / 60 % 60, 2)
        out.append(UInt8(ascii: ":"))
        digits(secondOfDay % 60, 2)
        if fraction {
            out.append(UInt8(ascii: "."))
            digits(Int64(nanoseconds), 9)
        }
        out.append(UInt8(ascii: "Z"))
    }

    // MARK: parsing

    /// A `--since`/`--until` value, the forms docker and podman accept:
    /// - RFC 3339, with or without fractional seconds, `Z` or `±hh:mm`
    ///   (`2026-11-22T10:04:05Z`, `2026-11-22T11:04:05.5+01:00`); without a
    ///   zone (`2026-11-22T10:04:05`, `2026-11-22`) it is local time;
    /// - a Unix time with an optional fraction (`1700000000`, `1700000000.5`);
    /// - a Go duration (`10m`, `1h30m`, `45s`, `500ms`, `1.5h`): `now` minus it.
    /// Anything else is nil.
    package static func parse(_ text: String, now: Timestamp) -> Timestamp? {
        let bytes = Array(text.utf8)[...]
        if let time = parseUnix(bytes) { return time }
        if let time = parseDateTime(bytes, allowLocal: true) { return time }
        if let duration = parseDuration(bytes) { return now.advanced(byNanoseconds: -duration) }
        return nil
    }

    /// An RFC 3339 time with a zone (the form log records carry); nil otherwise.
    package init?(rfc3339 text: some StringProtocol) {
        guard let time = Self.parseDateTime(Array(text.utf8)[...], allowLocal: false) else { return nil }
        self = time
    }

    /// `seconds[.fraction]`.
    static func parseUnix(_ bytes: ArraySlice<UInt8>) -> Timestamp? {
        var scanner = ByteScanner(bytes)
        let whole = scanner.digitRun()
        guard !whole.isEmpty, whole.count <= 18, let seconds = Int64(decimal: whole) else { return nil }
        var nanoseconds: Int32 = 0
        if scanner.take(UInt8(ascii: ".")) {
            let fraction = scanner.digitRun()
            guard !fraction.isEmpty else { return nil }
            nanoseconds = Int32(nanosecondsOf(fraction))
        }
        return scanner.atEnd ? Timestamp(seconds: seconds, nanoseconds: nanoseconds) : nil
    }

    /// `YYYY-MM-DD[(T|t| )hh:mm[:ss[.fraction]]][Z|z|±hh[:]mm]`; without a
    /// zone the time is local (only when `allowLocal`).
    static func parseDateTime(_ bytes: ArraySlice<UInt8>, allowLocal: Bool) -> Timestamp? {
        var s = ByteScanner(bytes)
        guard let year = s.digits(4), s.take(UInt8(ascii: "-")), let month = s.digits(2), s.take(UInt8(ascii: "-")),
              let day = s.digits(2), (1...12).contains(month), day >= 1, day <= daysIn(month: month, year: year)
        else { return nil }
        var hour: Int64 = 0, minute: Int64 = 0, second: Int64 = 0, nanoseconds: Int64 = 0
        if s.take(UInt8(ascii: "T")) || s.take(UInt8(ascii: "t")) || s.take(UInt8(ascii: " ")) {
            guard let h = s.digits(2), s.take(UInt8(ascii: ":")), let m = s.digits(2), h <= 23, m <= 59 else { return nil }
            (hour, minute) = (h, m)
            if s.take(UInt8(ascii: ":")) {
                guard let sec = s.digits(2), sec <= 59 else { return nil }
                second = sec
                if s.take(UInt8(ascii: ".")) {
                    let fraction = s.digitRun()
                    guard !fraction.isEmpty else { return nil }
                    nanoseconds = nanosecondsOf(fraction)
                }
            }
        }
        var offset: Int64? = nil
        if s.take(UInt8(ascii: "Z")) || s.take(UInt8(ascii: "z")) {
            offset = 0
        } else if let sign = s.peek, sign == UInt8(ascii: "+") || sign == UInt8(ascii: "-") {
            s.skip()
            guard let h = s.digits(2) else { return nil }
            _ = s.take(UInt8(ascii: ":"))
            guard let m = s.digits(2), h <= 23, m <= 59 else { return nil }
            offset = (h * 3600 + m * 60) * (sign == UInt8(ascii: "-") ? -1 : 1)
        }
        guard s.atEnd else { return nil }
        let local = days(fromYear: year, month: month, day: day) * 86_400 + hour * 3600 + minute * 60 + second
        if let offset { return Timestamp(seconds: local - offset, nanoseconds: Int32(nanoseconds)) }
        guard allowLocal else { return nil }
        var tm = Glibc.tm()
        tm.tm_year = Int32(year - 1900)
        tm.tm_mon = Int32(month - 1)
        tm.tm_mday = Int32(day)
        tm.tm_hour = Int32(hour)
        tm.tm_min = Int32(minute)
        tm.tm_sec = Int32(second)
        tm.tm_isdst = -1
        let seconds = mktime(&tm)
        guard seconds != -1 || (year == 1969 && month == 12 && day == 31) else { return nil }
        return Timestamp(seconds: Int64(seconds), nanoseconds: Int32(nanoseconds))
    }

    /// A Go duration (`300ms`, `-1.5h`, `2h45m`) in nanoseconds.
    static func parseDuration(_ bytes: ArraySlice<UInt8>) -> Int64? {
        var s = ByteScanner(bytes)
        var negative = false
        if s.take(UInt8(ascii: "-")) { negative = true } else { _ = s.take(UInt8(ascii: "+")) }
        guard !s.atEnd else { return nil }
        // Units longest first, so "ms" is not read as "m" followed by "s".
        let units: [([UInt8], Int64)] = [
            (Array("ns".utf8), 1), (Array("us".utf8), 1_000), (Array("µs".utf8), 1_000), (Array("μs".utf8), 1_000),
            (Array("ms".utf8), 1_000_000), (Array("s".utf8), 1_000_000_000),
            (Array("m".utf8), 60_000_000_000), (Array("h".utf8), 3_600_000_000_000),
        ]
        var total: Int64 = 0
        while !s.atEnd {
            let whole = s.digitRun()
            var fraction: ArraySlice<UInt8> = []
            if s.take(UInt8(ascii: ".")) { fraction = s.digitRun() }
            guard !whole.isEmpty || !fraction.isEmpty, whole.count <= 18,
                  let unit = units.first(where: { s.take($0.0) })?.1 else { return nil }
            let wholeValue = whole.isEmpty ? 0 : Int64(decimal: whole)!
            let (scaled, overflow) = wholeValue.multipliedReportingOverflow(by: unit)
            guard !overflow else { return nil }
            var value = scaled
            if !fraction.isEmpty {
                var fractionValue = 0.0, place = 0.1
                for digit in fraction.prefix(18) { fractionValue += Double(digit - UInt8(ascii: "0")) * place; place /= 10 }
                value += Int64((fractionValue * Double(unit)).rounded())
            }
            let (sum, sumOverflow) = total.addingReportingOverflow(value)
            guard !sumOverflow else { return nil }
            total = sum
        }
        return negative ? -total : total
    }

    /// The first nine digits of a fraction as nanoseconds ("5" → 500000000).
    static func nanosecondsOf(_ fraction: ArraySlice<UInt8>) -> Int64 {
        var value: Int64 = 0
        var count = 0
        for digit in fraction.prefix(9) {
            value = value * 10 + Int64(digit - UInt8(ascii: "0"))
            count += 1
        }
        while count < 9 { value *= 10; count += 1 }
        return value
    }

    static func daysIn(month: Int64, year: Int64) -> Int64 {
        switch month {
        case 2: return (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 ? 29 : 28
        case 4, 6, 9, 11: return 30
        default: return 31
        }
    }

    /// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's
    /// days_from_civil), so formatting and parsing need neither gmtime nor TZ.
    static func days(fromYear year: Int64, month: Int64, day: Int64) -> Int64 {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yearOfEra = y - era * 400
        let dayOfYear = (153 * (month > 2 ? month - 3 : month + 9) + 2) / 5 + day - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        return era * 146_097 + dayOfEra - 719_468
    }

    static func civil(fromDays days: Int64) -> (year: Int64, month: Int64, day: Int64) {
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let dayOfEra = z - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36_524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let mp = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * mp + 2) / 5 + 1
        let month = mp < 10 ? mp + 3 : mp - 9
        return (yearOfEra + era * 400 + (month <= 2 ? 1 : 0), month, day)
    }
}

private func floorDivision(_ value: Int64, _ divisor: Int64) -> (Int64, Int64) {
    let (q, r) = value.quotientAndRemainder(dividingBy: divisor)
    return r < 0 ? (q - 1, r + divisor) : (q, r)
}

private extension Int64 {
    /// ASCII decimal digits (already checked to be digits and at most 18).
    init?(decimal digits: ArraySlice<UInt8>) {
        var value: Int64 = 0
        for digit in digits {
            guard digit >= UInt8(ascii: "0"), digit <= UInt8(ascii: "9") else { return nil }
            value = value * 10 + Int64(digit - UInt8(ascii: "0"))
        }
        self = value
    }
}

/// Reads ASCII tokens off the front of a byte slice.
private struct ByteScanner {
    let bytes: ArraySlice<UInt8>
    var index: Int

    init(_ bytes: ArraySlice<UInt8>) {
        self.bytes = bytes
        index = bytes.startIndex
    }

    var atEnd: Bool { index == bytes.endIndex }
    var peek: UInt8? { atEnd ? nil : bytes[index] }
    mutating func skip() { index += 1 }

    mutating func take(_ byte: UInt8) -> Bool {
        guard peek == byte else { return false }
        index += 1
        return true
    }

    mutating func take(_ word: [UInt8]) -> Bool {
        guard bytes.endIndex - index >= word.count, bytes[index..<index + word.count].elementsEqual(word) else { return false }
        index += word.count
        return true
    }

    mutating func digitRun() -> ArraySlice<UInt8> {
        let start = index
        while let byte = peek, byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") { index += 1 }
        return bytes[start..<index]
    }

    mutating func digits(_ count: Int) -> Int64? {
        guard bytes.endIndex - index >= count else { return nil }
        let run = bytes[index..<index + count]
        guard let value = Int64(decimal: run) else { return nil }
        index += count
        return value
    }
}

// MARK: - Entries and options

/// One line of a container's output as `berth logs` shows it.
package struct LogEntry: Sendable, Equatable {
    /// When the line was started (the time of its first piece).
    package var time: Timestamp
    package var stream: LogStream
    /// The whole line, its `P` pieces joined, without the newline.
    package var content: [UInt8]
    /// The line has no newline yet: its last piece is a `P` with no `F`
    /// after it (so far).
    package var partial: Bool
    /// Only while following: the rest of a line whose beginning was already
    /// delivered as a partial entry (rendered without a timestamp prefix,
    /// so the output reads as the container wrote it).
    package var continuation: Bool

    package init(time: Timestamp, stream: LogStream, content: [UInt8], partial: Bool = false, continuation: Bool = false) {
        self.time = time
        self.stream = stream
        self.content = content
        self.partial = partial
        self.continuation = continuation
    }
}

/// `berth logs` flags that choose lines.
package struct LogReadOptions: Sendable {
    /// Only the last `tail` lines (nil or negative: all). With `follow`,
    /// it limits what is shown of the existing log only.
    package var tail: Int?
    /// Lines started at or after this time.
    package var since: Timestamp?
    /// Lines started at or before this time. `follow` returns once it has passed.
    package var until: Timestamp?
    /// Prefix each line with its time (see `LogReader.render`).
    package var timestamps: Bool

    package init(tail: Int? = nil, since: Timestamp? = nil, until: Timestamp? = nil, timestamps: Bool = false) {
        self.tail = tail
        self.since = since
        self.until = until
        self.timestamps = timestamps
    }
}

// MARK: - Writer

/// Appends a container's output to its log file, one record per line
/// (`P` for a chunk that ends mid-line), each `write` in one write(2).
///
/// Rotation rule (`maxSize`, in bytes; nil or ≤ 0: unlimited): before a
/// record is appended, if the file is not empty and the record would take
/// it past `maxSize`, the file is renamed to `<path>.1` (replacing an older
/// `.1`) and a new, empty file is started. Records are never split, so a
/// file exceeds `maxSize` only when a single record is larger than it. The
/// log takes at most about 2 × `maxSize` on disk and readers still see at
/// least the last `maxSize` bytes of output (`.1` and then the current file).
///
/// Errors (a full disk) do not stop the writer: the container's output must
/// keep being drained. The bytes are dropped and `lastError` says why.
package struct LogWriter: Sendable {
    package let path: String
    package let maxSize: Int64?
    private var descriptor: FileDescriptor
    private var size: Int64
    package private(set) var lastError: Errno?

    /// Opens (creating, mode 0600) `path` for appending.
    package init(path: String, maxSize: Int64? = nil) throws(EngineError) {
        self.path = path
        self.maxSize = maxSize.flatMap { $0 > 0 ? $0 : nil }
        do {
            descriptor = try Self.open(path)
            size = Int64(try descriptor.stat().st_size)
        } catch {
            throw EngineError(.failed, "cannot open the log file \(path): \(error)")
        }
    }

    private static func open(_ path: String) throws(Errno) -> FileDescriptor {
        try FileDescriptor.open(path, O_WRONLY | O_CREAT | O_APPEND, mode: 0o600)
    }

    /// Appends `bytes` from `stream`: a record for each line, and a `P`
    /// record for what follows the last newline. All records get `time`.
    package mutating func write(_ stream: LogStream, _ bytes: some Collection<UInt8>, time: Timestamp = .now()) {
        let input = Array(bytes)
        guard !input.isEmpty else { return }
        var prefix: [UInt8] = []
        time.appendRFC3339(to: &prefix, fraction: true)
        prefix.append(UInt8(ascii: " "))
        prefix.append(contentsOf: stream.rawValue.utf8)
        prefix.append(UInt8(ascii: " "))

        var output: [UInt8] = []
        output.reserveCapacity(input.count + 48)
        var start = 0
        while start < input.count {
            let newline = input[start...].firstIndex(of: UInt8(ascii: "\n"))
            let end = newline ?? input.count
            let recordSize = Int64(prefix.count + 3 + (end - start))
            if let maxSize, size + Int64(output.count) > 0, size + Int64(output.count) + recordSize > maxSize {
                append(output)
                output.removeAll(keepingCapacity: true)
                rotate()
            }
            output.append(contentsOf: prefix)
            output.append(newline == nil ? UInt8(ascii: "P") : UInt8(ascii: "F"))
            output.append(UInt8(ascii: " "))
            output.append(contentsOf: input[start..<end])
            output.append(UInt8(ascii: "\n"))
            start = end + 1
        }
        append(output)
    }

    private mutating func append(_ bytes: [UInt8]) {
        guard !bytes.isEmpty else { return }
        do {
            try descriptor.writeAll(bytes)
            size += Int64(bytes.count)
        } catch {
            lastError = error
            if let st = try? descriptor.stat() { size = Int64(st.st_size) }
        }
    }

    /// The current file becomes `<path>.1`; a new one is started. If either
    /// step fails, writing goes on in the file that is open.
    private mutating func rotate() {
        if Glibc.rename(path, path + ".1") != 0 {
            lastError = Errno.current
            return
        }
        do {
            let fresh = try Self.open(path)
            descriptor.close()
            descriptor = fresh
            size = Int64((try? fresh.stat().st_size) ?? 0)
        } catch {
            lastError = error
        }
    }

    package func close() { descriptor.close() }
}

// MARK: - Reader

/// Reads a log the way `berth logs` shows it.
package enum LogReader {
    /// Calls `body` with each line of `<path>.1` then `<path>` that passes
    /// `options`. A missing log is an empty one.
    package static func read(path: String, options: LogReadOptions, _ body: (LogEntry) -> Void) throws(EngineError) {
        var pipeline = LogPipeline(options)
        let (older, current) = try openFiles(path)
        for var file in [older, current].compactMap({ $0 }) {
            file.drain(final: true) { pipeline.record($0, body) }
            file.close()
        }
        pipeline.deliverPartials(body)
        pipeline.flush(body)
    }

    /// Like `read`, then waits for more: polls every `pollMilliseconds` and
    /// delivers new lines (a line still without its newline as a partial
    /// entry, and its rest later as a continuation) until `isRunning()`
    /// returns false or `options.until` has passed; then it reads what was
    /// written before that and returns. A rotation while following (the file
    /// renamed to `.1` and a new one started) is followed into the new file.
    /// `isRunning` must turn false only once the writer has written its
    /// last record (the monitor closes the log before it records the exit).
    /// Two rotations within one poll would skip the file between them.
    package static func follow(
        path: String, options: LogReadOptions, pollMilliseconds: Int = 100,
        isRunning: () -> Bool, _ body: (LogEntry) -> Void
    ) throws(EngineError) {
        var pipeline = LogPipeline(options)
        let files = try openFiles(path)
        if var older = files.older {
            older.drain(final: true) { pipeline.record($0, body) }
            older.close()
        }
        var current = files.current
        current?.drain(final: false) { pipeline.record($0, body) }
        pipeline.deliverPartials(body)
        pipeline.flush(body)

        while true {
            // Decided before reading, so what the writer wrote before it stopped is read below.
            let stopping = !isRunning() || options.until.map { Timestamp.now() > $0 } ?? false
            if current == nil { current = try? LogFile.open(path) }
            var progressed = current?.drain(final: false) { pipeline.record($0, body) } ?? false
            if let file = current, file.isReplaced(at: path) {
                // Renamed away by the writer, which now writes only to the new file.
                current?.drain(final: true) { pipeline.record($0, body) }
                file.close()
                current = try? LogFile.open(path)
                current?.drain(final: false) { pipeline.record($0, body) }
                progressed = true
            }
            if stopping {
                current?.drain(final: true) { pipeline.record($0, body) }
                current?.close()
                pipeline.deliverPartials(body)
                return
            }
            pipeline.deliverPartials(body)
            if !progressed { usleep(useconds_t(max(1, pollMilliseconds) * 1000)) }
        }
    }

    /// What `berth logs` prints for `entry`: the content and its newline
    /// (none while the line is partial), after `<RFC 3339 time> ` when
    /// `timestamps` (not before a continuation, which goes on a line
    /// already printed).
    package static func render(_ entry: LogEntry, timestamps: Bool) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(entry.content.count + 32)
        if timestamps && !entry.continuation {
            entry.time.appendRFC3339(to: &out, fraction: true)
            out.append(UInt8(ascii: " "))
        }
        out.append(contentsOf: entry.content)
        if !entry.partial { out.append(UInt8(ascii: "\n")) }
        return out
    }

    /// Opens the current file first, then `.1`: if a rotation happens in
    /// between, `.1` is the file just opened and is skipped, so nothing is
    /// read twice.
    private static func openFiles(_ path: String) throws(EngineError) -> (older: LogFile?, current: LogFile?) {
        do {
            let current = try LogFile.openIfPresent(path)
            var older = try LogFile.openIfPresent(path + ".1")
            if let file = older, let current, file.identity == current.identity {
                file.close()
                older = nil
            }
            return (older, current)
        } catch {
            throw EngineError(.failed, "cannot read the log file \(path): \(error)")
        }
    }
}

/// An open log file and the part of a record read but not yet ended by a newline.
private struct LogFile {
    let descriptor: FileDescriptor
    let identity: FileIdentity
    var carry: [UInt8] = []

    struct FileIdentity: Equatable {
        var device: UInt64
        var inode: UInt64
        init(_ st: Glibc.stat) {
            device = UInt64(st.st_dev)
            inode = UInt64(st.st_ino)
        }
    }

    static func open(_ path: String) throws(Errno) -> LogFile {
        let descriptor = try FileDescriptor.open(path, O_RDONLY)
        do {
            return LogFile(descriptor: descriptor, identity: FileIdentity(try descriptor.stat()))
        } catch {
            descriptor.close()
            throw error
        }
    }

    static func openIfPresent(_ path: String) throws(Errno) -> LogFile? {
        do { return try open(path) } catch {
            if error == .noSuchFile { return nil }
            throw error
        }
    }

    func close() { descriptor.close() }

    /// Whether `path` now names another file (or none): the writer has rotated.
    func isReplaced(at path: String) -> Bool {
        guard let st = try? Files.stat(path) else { return true }
        return FileIdentity(st) != identity
    }

    /// Reads to the current end of the file, calling `record` with each
    /// complete record (without its newline). With `final`, an unterminated
    /// last record counts too (a writer that died mid-write). Returns
    /// whether anything was read.
    @discardableResult
    mutating func drain(final: Bool, _ record: (ArraySlice<UInt8>) -> Void) -> Bool {
        var any = false
        var chunk = [UInt8](repeating: 0, count: 65_536)
        while true {
            let count = (try? chunk.withUnsafeMutableBytes { (buffer) throws(Errno) in try descriptor.read(into: buffer) }) ?? 0
            if count <= 0 { break }
            any = true
            var start = 0
            while let newline = chunk[start..<count].firstIndex(of: UInt8(ascii: "\n")) {
                if carry.isEmpty {
                    record(chunk[start..<newline])
                } else {
                    carry.append(contentsOf: chunk[start..<newline])
                    record(carry[...])
                    carry.removeAll(keepingCapacity: true)
                }
                start = newline + 1
            }
            carry.append(contentsOf: chunk[start..<count])
        }
        if final && !carry.isEmpty {
            record(carry[...])
            carry.removeAll()
        }
        return any
    }
}

/// Turns records into entries: joins each stream's `P` pieces with the
/// piece that ends the line.
struct LogRecordParser {
    struct Pending {
        var time: Timestamp
        var content: [UInt8]
        /// Some of the line was already handed out as a partial entry.
        var delivered: Bool
    }

    var stdout: Pending?
    var stderr: Pending?

    /// The entry `line` completes, if any. Lines that are not records are skipped.
    mutating func consume(_ line: ArraySlice<UInt8>) -> LogEntry? {
        // <time> <stream> <tag> <content>
        guard let firstSpace = line.firstIndex(of: UInt8(ascii: " ")),
              let time = Timestamp.parseDateTime(line[line.startIndex..<firstSpace], allowLocal: false)
        else { return nil }
        let afterTime = line[(firstSpace + 1)...]
        guard let secondSpace = afterTime.firstIndex(of: UInt8(ascii: " ")),
              let stream = LogStream(rawValue: String(decoding: afterTime[afterTime.startIndex..<secondSpace], as: UTF8.self))
        else { return nil }
        let afterStream = afterTime[(secondSpace + 1)...]
        let tagEnd = afterStream.firstIndex(of: UInt8(ascii: " ")) ?? afterStream.endIndex
        let tag = afterStream[afterStream.startIndex..<tagEnd]
        // CRI allows more tag fields after a ':'; the first is P or F.
        guard let kind = tag.first, kind == UInt8(ascii: "P") || kind == UInt8(ascii: "F"),
              tag.count == 1 || tag[tag.startIndex + 1] == UInt8(ascii: ":") else { return nil }
        let content = tagEnd < afterStream.endIndex ? afterStream[(tagEnd + 1)...] : []

        var pending = stream == .stdout ? stdout : stderr
        defer { if stream == .stdout { stdout = pending } else { stderr = pending } }
        if kind == UInt8(ascii: "P") {
            if pending == nil { pending = Pending(time: time, content: [], delivered: false) }
            pending!.content.append(contentsOf: content)
            return nil
        }
        guard let started = pending else { return LogEntry(time: time, stream: stream, content: Array(content)) }
        pending = nil
        return LogEntry(time: started.time, stream: stream, content: started.content + content,
                        continuation: started.delivered)
    }

    /// What has been read of unfinished lines, as partial entries (oldest
    /// first); the rest of those lines will come as continuations.
    mutating func takePartials() -> [LogEntry] {
        var entries: [LogEntry] = []
        func take(_ pending: inout Pending?, _ stream: LogStream) {
            guard var line = pending, !line.content.isEmpty || !line.delivered else { return }
            entries.append(LogEntry(time: line.time, stream: stream, content: line.content, partial: true,
                                    continuation: line.delivered))
            line.content.removeAll()
            line.delivered = true
            pending = line
        }
        take(&stdout, .stdout)
        take(&stderr, .stderr)
        if entries.count == 2 && entries[1].time < entries[0].time { entries.swapAt(0, 1) }
        return entries
    }
}

/// Records in, filtered entries out.
struct LogPipeline {
    var parser = LogRecordParser()
    var emitter: LogEmitter

    init(_ options: LogReadOptions) { emitter = LogEmitter(options) }

    mutating func record(_ line: ArraySlice<UInt8>, _ body: (LogEntry) -> Void) {
        if let entry = parser.consume(line) { emitter.add(entry, body) }
    }

    mutating func deliverPartials(_ body: (LogEntry) -> Void) {
        for entry in parser.takePartials() { emitter.add(entry, body) }
    }

    mutating func flush(_ body: (LogEntry) -> Void) { emitter.flush(body) }
}

/// Applies `since`/`until` and, until `flush`, keeps only the last `tail` entries.
struct LogEmitter {
    let since: Timestamp?
    let until: Timestamp?
    var tail: Int?
    var buffer: [LogEntry] = []
    var next = 0

    init(_ options: LogReadOptions) {
        since = options.since
        until = options.until
        tail = options.tail.flatMap { $0 >= 0 ? $0 : nil }
    }

    mutating func add(_ entry: LogEntry, _ body: (LogEntry) -> Void) {
        if let since, entry.time < since { return }
        if let until, entry.time > until { return }
        guard let tail else { return body(entry) }
        if tail == 0 { return }
        if buffer.count < tail {
            buffer.append(entry)
        } else {
            buffer[next] = entry
            next = (next + 1) % tail
        }
    }

    /// Delivers the kept entries; from then on entries go straight to `body`.
    mutating func flush(_ body: (LogEntry) -> Void) {
        guard tail != nil else { return }
        for index in 0..<buffer.count { body(buffer[(next + index) % buffer.count]) }
        buffer = []
        tail = nil
    }
}

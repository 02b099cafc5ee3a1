#if canImport(Glibc)
import Glibc
#endif
import Synchronization
import Testing
import BerthEngine
import BerthOS
import BerthTestSupport

/// A joinable pthread (FoundationEssentials has no Thread).
struct TestThread {
    final class Box: @unchecked Sendable {
        let body: @Sendable () -> Void
        init(_ body: @escaping @Sendable () -> Void) { self.body = body }
    }

    private let thread: pthread_t

    init(_ body: @escaping @Sendable () -> Void) {
        let box = Unmanaged.passRetained(Box(body)).toOpaque()
        var thread = pthread_t()
        let result = pthread_create(&thread, nil, { raw in
            Unmanaged<Box>.fromOpaque(raw!).takeRetainedValue().body()
            return nil
        }, box)
        precondition(result == 0, "pthread_create failed: \(result)")
        self.thread = thread
    }

    func join() { pthread_join(thread, nil) }
}

private func bytes(_ text: String) -> [UInt8] { Array(text.utf8) }
private func text(_ bytes: [UInt8]) -> String { String(decoding: bytes, as: UTF8.self) }

private func readAll(_ path: String, _ options: LogReadOptions = LogReadOptions()) throws -> [LogEntry] {
    var entries: [LogEntry] = []
    try LogReader.read(path: path, options: options) { entries.append($0) }
    return entries
}

/// What `berth logs` would print.
private func rendered(_ entries: [LogEntry], timestamps: Bool = false) -> String {
    text(entries.flatMap { LogReader.render($0, timestamps: timestamps) })
}

private let t0 = Timestamp(seconds: 1_795_341_845, nanoseconds: 123_456_789)  // 2026-11-22T10:04:05.123456789Z

@Suite("Container log")
struct ContainerLogTests {
    @Test("lines of both streams round-trip, partial pieces joined per stream")
    func roundTrip() throws {
        let dir = TemporaryDirectory("log")
        defer { dir.remove() }
        let path = dir.subpath("ctr.log")
        var writer = try LogWriter(path: path)
        writer.write(.stdout, bytes("hello\nwor"), time: t0)
        writer.write(.stderr, bytes("oops\n"), time: t0.advanced(byNanoseconds: 1))
        writer.write(.stdout, bytes("ld\n\nlast"), time: t0.advanced(byNanoseconds: 2))
        writer.write(.stdout, [], time: t0.advanced(byNanoseconds: 3))
        writer.close()
        #expect(writer.lastError == nil)

        let lines = try Files.readString(path).split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        #expect(lines == [
            "2026-11-22T10:04:05.123456789Z stdout F hello",
            "2026-11-22T10:04:05.123456789Z stdout P wor",
            "2026-11-22T10:04:05.123456790Z stderr F oops",
            "2026-11-22T10:04:05.123456791Z stdout F ld",
            "2026-11-22T10:04:05.123456791Z stdout F ",
            "2026-11-22T10:04:05.123456791Z stdout P last",
            "",
        ])

        let entries = try readAll(path)
        #expect(entries.map { text($0.content) } == ["hello", "oops", "world", "", "last"])
        #expect(entries.map(\.stream) == [.stdout, .stderr, .stdout, .stdout, .stdout])
        #expect(entries.map(\.partial) == [false, false, false, false, true])
        #expect(entries[2].time == t0, "a joined line has the time it started")
        #expect(rendered(entries) == "hello\noops\nworld\n\nlast")
        #expect(rendered(entries, timestamps: true) == """
            2026-11-22T10:04:05.123456789Z hello
            2026-11-22T10:04:05.123456790Z oops
            2026-11-22T10:04:05.123456789Z world
            2026-11-22T10:04:05.123456791Z \n2026-11-22T10:04:05.123456791Z last
            """)
    }

    @Test("interleaved partial pieces of stdout and stderr do not mix")
    func interleavedPartials() throws {
        let dir = TemporaryDirectory("log")
        defer { dir.remove() }
        let path = dir.subpath("ctr.log")
        var writer = try LogWriter(path: path)
        writer.write(.stdout, bytes("out-1 "))
        writer.write(.stderr, bytes("err-1 "))
        writer.write(.stdout, bytes("out-2 "))
        writer.write(.stderr, bytes("err-2\n"))
        writer.write(.stdout, bytes("out-3\n"))
        writer.close()
        let entries = try readAll(path)
        #expect(entries.map { "\($0.stream.rawValue): \(text($0.content))" } == [
            "stderr: err-1 err-2", "stdout: out-1 out-2 out-3",
        ])
        #expect(entries.allSatisfy { !$0.partial })
    }

    @Test("a missing log reads as empty; a log from another writer's format is read leniently")
    func lenientReading() throws {
        let dir = TemporaryDirectory("log")
        defer { dir.remove() }
        #expect(try readAll(dir.subpath("absent.log")).isEmpty)
        // conmon writes the local offset; CRI allows tag fields after ':'; junk lines are skipped.
        let path = dir.subpath("conmon.log")
        try Files.write(path, """
            2026-11-22T11:04:05.000000001+01:00 stdout F from conmon
            not a log line
            2026-11-22T10:04:06Z stderr F:x tagged
            2026-11-22T10:04:07Z stdout F
            2026-11-22T10:04:08Z stdout F unterminated
            """)
        let entries = try readAll(path)
        #expect(entries.map { text($0.content) } == ["from conmon", "tagged", "", "unterminated"])
        #expect(entries[0].time == Timestamp(seconds: 1_795_341_845, nanoseconds: 1))
    }

    @Test("--tail keeps the last lines; nil and negative mean all")
    func tail() throws {
        let dir = TemporaryDirectory("log")
        defer { dir.remove() }
        let path = dir.subpath("ctr.log")
        var writer = try LogWriter(path: path)
        for i in 1...10 { writer.write(i % 2 == 0 ? .stderr : .stdout, bytes("line \(i)\n")) }
        writer.write(.stdout, bytes("prompt> "))
        writer.close()
        #expect(rendered(try readAll(path, LogReadOptions(tail: 3))) == "line 9\nline 10\nprompt> ")
        #expect(try readAll(path, LogReadOptions(tail: 0)).isEmpty)
        #expect(try readAll(path, LogReadOptions(tail: 1)).map { text($0.content) } == ["prompt> "])
        #expect(try readAll(path, LogReadOptions(tail: nil)).count == 11)
        #expect(try readAll(path, LogReadOptions(tail: -1)).count == 11)
        #expect(try readAll(path, LogReadOptions(tail: 100)).count == 11)
    }

    @Test("--since and --until select by time, both inclusive, combined with --tail")
    func sinceUntil() throws {
        let dir = TemporaryDirectory("log")
        defer { dir.remove() }
        let path = dir.subpath("ctr.log")
        var writer = try LogWriter(path: path)
        for i in 0..<6 { writer.write(.stdout, bytes("at \(i)\n"), time: Timestamp(seconds: 1000 + Int64(i))) }
        writer.close()
        func contents(_ options: LogReadOptions) throws -> [String] { try readAll(path, options).map { text($0.content) } }
        #expect(try contents(LogReadOptions(since: Timestamp(seconds: 1004))) == ["at 4", "at 5"])
        #expect(try contents(LogReadOptions(until: Timestamp(seconds: 1001))) == ["at 0", "at 1"])
        #expect(try contents(LogReadOptions(since: Timestamp(seconds: 1002), until: Timestamp(seconds: 1003, nanoseconds: 1)))
                == ["at 2", "at 3"])
        #expect(try contents(LogReadOptions(tail: 1, since: Timestamp(seconds: 1001), until: Timestamp(seconds: 1003)))
                == ["at 3"])
        #expect(try contents(LogReadOptions(since: Timestamp(seconds: 2000))).isEmpty)
    }

    @Test("rotation keeps the newest output readable across .1 and the current file")
    func rotation() throws {
        let dir = TemporaryDirectory("log")
        defer { dir.remove() }
        let path = dir.subpath("ctr.log")
        let maxSize: Int64 = 400
        var writer = try LogWriter(path: path, maxSize: maxSize)
        for i in 1...101 {
            // Some lines arrive in two pieces, some chunks hold two lines.
            if i % 7 == 0 {
                writer.write(.stdout, bytes("line "))
                writer.write(.stdout, bytes("\(i)\n"))
            } else if i % 5 == 0 {
                writer.write(.stderr, bytes("line \(i)\nline \(i + 1000)\n"))
            } else {
                writer.write(.stdout, bytes("line \(i)\n"))
            }
        }
        writer.close()
        #expect(writer.lastError == nil)
        let current = try Files.stat(path), older = try Files.stat(path + ".1")
        #expect(current.st_size <= maxSize && older.st_size <= maxSize)
        #expect(!Files.exists(path + ".2"))

        #expect(current.st_size + older.st_size > maxSize, "at least maxSize of output is kept")

        // The first line may be the end of one whose start went with an older file.
        let shown = try readAll(path).map { text($0.content) }.dropFirst()
        #expect(shown.last == "line 101")
        #expect(shown.allSatisfy { $0.hasPrefix("line ") }, "no piece of a line is lost at a rotation: \(shown)")
        let numbers = shown.compactMap { Int($0.dropFirst(5)) }.filter { $0 < 1000 }
        #expect(numbers == Array(numbers.first!...101), "the lines shown are the newest, in order, with no gap")
    }

    @Test("a log that starts over the limit is rotated at the first write; a huge record gets a file of its own")
    func rotationOfExistingFile() throws {
        let dir = TemporaryDirectory("log")
        defer { dir.remove() }
        let path = dir.subpath("ctr.log")
        try Files.write(path, String(repeating: "2026-11-22T10:04:05Z stdout F old\n", count: 10))
        var writer = try LogWriter(path: path, maxSize: 100)
        writer.write(.stdout, bytes(String(repeating: "x", count: 300) + "\n"))
        writer.write(.stdout, bytes("after\n"))
        writer.close()
        #expect(try readAll(path + ".1").map { text($0.content) } == [String(repeating: "x", count: 300)])
        #expect(try readAll(path).map { text($0.content) } == [String(repeating: "x", count: 300), "after"])
    }

    @Test("follow returns after isRunning turns false, with every line written meanwhile, across rotations")
    func follow() throws {
        let dir = TemporaryDirectory("log")
        defer { dir.remove() }
        let path = dir.subpath("ctr.log")
        var first = try LogWriter(path: path, maxSize: 240)
        first.write(.stdout, bytes("before 1\nbefore 2\n"))
        first.close()

        final class Shared: Sendable {
            let following = Atomic<Bool>(false)
            let running = Atomic<Bool>(true)
        }
        let shared = Shared()
        let thread = TestThread {
            // Start once the reader has shown the existing log and polls.
            while !shared.following.load(ordering: .sequentiallyConsistent) { usleep(1000) }
            guard var writer = try? LogWriter(path: path, maxSize: 240) else {
                shared.running.store(false, ordering: .sequentiallyConsistent)
                return
            }
            for i in 1...20 {
                usleep(20_000)
                if i % 4 == 0 {
                    writer.write(.stderr, bytes("during "))
                    usleep(20_000)
                    writer.write(.stderr, bytes("\(i)\n"))
                } else {
                    writer.write(.stdout, bytes("during \(i)\n"))
                }
            }
            writer.write(.stdout, bytes("exit"))  // the last output has no newline
            writer.close()
            shared.running.store(false, ordering: .sequentiallyConsistent)
        }
        defer {
            shared.following.store(true, ordering: .sequentiallyConsistent)
            thread.join()
        }

        var entries: [LogEntry] = []
        let started = Timestamp.now()
        try LogReader.follow(path: path, options: LogReadOptions(tail: 1), pollMilliseconds: 5,
                             isRunning: {
            shared.following.store(true, ordering: .sequentiallyConsistent)
            return shared.running.load(ordering: .sequentiallyConsistent)
        }) { entries.append($0) }
        let stillRunning = shared.running.load(ordering: .sequentiallyConsistent)
        #expect(!stillRunning)
        #expect(Timestamp.now().seconds - started.seconds < 10)
        #expect(Files.exists(path + ".1"), "the writer rotated while the reader followed")
        let expected = ["before 2"] + (1...20).map { "during \($0)" }
        #expect(rendered(entries) == expected.map { $0 + "\n" }.joined() + "exit")
        #expect(entries.last?.partial == true)
    }

    @Test("follow delivers a line without its newline at once, and its rest as a continuation")
    func followPartialLine() throws {
        let dir = TemporaryDirectory("log")
        defer { dir.remove() }
        let path = dir.subpath("ctr.log")
        var writer = try LogWriter(path: path)
        writer.write(.stdout, bytes("name? "), time: t0)
        var entries: [LogEntry] = []
        var polls = 0
        try LogReader.follow(path: path, options: LogReadOptions(), pollMilliseconds: 1, isRunning: {
            polls += 1
            // The reader has shown the prompt before the answer is written.
            if polls == 3 {
                #expect(entries.count == 1 && entries.first?.partial == true)
                writer.write(.stdout, bytes("bob\n"), time: t0.advanced(byNanoseconds: 5))
            }
            return polls < 5
        }) { entries.append($0) }
        writer.close()
        #expect(entries.map(\.continuation) == [false, true])
        #expect(rendered(entries, timestamps: true) == "2026-11-22T10:04:05.123456789Z name? bob\n")
    }

    @Test("follow waits for a log that does not exist yet")
    func followBeforeTheLogExists() throws {
        let dir = TemporaryDirectory("log")
        defer { dir.remove() }
        let path = dir.subpath("ctr.log")
        var polls = 0
        var entries: [LogEntry] = []
        try LogReader.follow(path: path, options: LogReadOptions(), pollMilliseconds: 1, isRunning: {
            polls += 1
            if polls == 3, var writer = try? LogWriter(path: path) {
                writer.write(.stdout, bytes("late\n"))
                writer.close()
            }
            return polls < 3
        }) { entries.append($0) }
        #expect(entries.map { text($0.content) } == ["late"])
    }

    @Test("follow stops once --until has passed")
    func followUntil() throws {
        let dir = TemporaryDirectory("log")
        defer { dir.remove() }
        let path = dir.subpath("ctr.log")
        var writer = try LogWriter(path: path)
        writer.write(.stdout, bytes("one\n"))
        writer.close()
        var entries: [LogEntry] = []
        try LogReader.follow(path: path, options: LogReadOptions(until: Timestamp.now()), isRunning: { true }) {
            entries.append($0)
        }
        #expect(entries.count == 1)
    }
}

@Suite("Timestamps")
struct TimestampTests {
    static let now = Timestamp(seconds: 1_795_341_845, nanoseconds: 500_000_000)

    @Test("formats as RFC 3339 with nine digits in UTC", arguments: [
        (Timestamp(seconds: 0), "1970-01-01T00:00:00.000000000Z", "1970-01-01T00:00:00Z"),
        (Timestamp(seconds: 1_795_341_845, nanoseconds: 123_456_789), "2026-11-22T10:04:05.123456789Z", "2026-11-22T10:04:05Z"),
        (Timestamp(seconds: 951_782_400, nanoseconds: 7), "2000-02-29T00:00:00.000000007Z", "2000-02-29T00:00:00Z"),
        (Timestamp(seconds: -1, nanoseconds: 999_999_999), "1969-12-31T23:59:59.999999999Z", "1969-12-31T23:59:59Z"),
        (Timestamp(seconds: 253_402_300_799), "9999-12-31T23:59:59.000000000Z", "9999-12-31T23:59:59Z"),
    ])
    func formatting(time: Timestamp, nano: String, seconds: String) {
        #expect(time.rfc3339Nano == nano)
        #expect(time.rfc3339 == seconds)
        #expect(Timestamp(rfc3339: nano) == time)
    }

    @Test("formatting agrees with gmtime for many times")
    func formattingMatchesGmtime() {
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<2000 {
            let seconds = Int64.random(in: -2_000_000_000...8_000_000_000, using: &generator)
            var value = time_t(seconds)
            var tm = Glibc.tm()
            gmtime_r(&value, &tm)
            var buffer = [CChar](repeating: 0, count: 64)
            let count = strftime(&buffer, buffer.count, "%Y-%m-%dT%H:%M:%SZ", &tm)
            let expected = String(decoding: buffer[0..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self)
            #expect(Timestamp(seconds: seconds).rfc3339 == expected)
            #expect(Timestamp(rfc3339: expected) == Timestamp(seconds: seconds))
        }
    }

    @Test("parses the forms --since and --until accept", arguments: [
        ("2026-11-22T10:04:05Z", Timestamp(seconds: 1_795_341_845)),
        ("2026-11-22t10:04:05z", Timestamp(seconds: 1_795_341_845)),
        ("2026-11-22 10:04:05Z", Timestamp(seconds: 1_795_341_845)),
        ("2026-11-22T10:04:05.123456789Z", Timestamp(seconds: 1_795_341_845, nanoseconds: 123_456_789)),
        ("2026-11-22T10:04:05.1234567891234Z", Timestamp(seconds: 1_795_341_845, nanoseconds: 123_456_789)),
        ("2026-11-22T11:04:05.5+01:00", Timestamp(seconds: 1_795_341_845, nanoseconds: 500_000_000)),
        ("2026-11-22T05:04:05-05:00", Timestamp(seconds: 1_795_341_845)),
        ("2026-11-22T15:34:05+0530", Timestamp(seconds: 1_795_341_845)),
        ("1700000000", Timestamp(seconds: 1_700_000_000)),
        ("1700000000.5", Timestamp(seconds: 1_700_000_000, nanoseconds: 500_000_000)),
        ("0", Timestamp(seconds: 0)),
        ("10m", now.advanced(byNanoseconds: -600_000_000_000)),
        ("1h30m", now.advanced(byNanoseconds: -5_400_000_000_000)),
        ("45s", now.advanced(byNanoseconds: -45_000_000_000)),
        ("500ms", Timestamp(seconds: 1_795_341_845)),
        ("1.5h", now.advanced(byNanoseconds: -5_400_000_000_000)),
        ("2h45m30.5s", now.advanced(byNanoseconds: -9_930_500_000_000)),
        ("250us", now.advanced(byNanoseconds: -250_000)),
        ("250µs", now.advanced(byNanoseconds: -250_000)),
        ("7ns", now.advanced(byNanoseconds: -7)),
        ("-1m", now.advanced(byNanoseconds: 60_000_000_000)),
    ])
    func parsing(input: String, expected: Timestamp) {
        #expect(Timestamp.parse(input, now: Self.now) == expected)
    }

    @Test("a date or time without a zone is local time")
    func localTime() throws {
        var tm = Glibc.tm()
        tm.tm_year = 2026 - 1900
        tm.tm_mon = 10
        tm.tm_mday = 22
        tm.tm_hour = 10
        tm.tm_min = 4
        tm.tm_isdst = -1
        let local = Int64(mktime(&tm))
        #expect(Timestamp.parse("2026-11-22T10:04", now: Self.now) == Timestamp(seconds: local))
        #expect(Timestamp.parse("2026-11-22T10:04:05.25", now: Self.now) == Timestamp(seconds: local + 5, nanoseconds: 250_000_000))
        let midnight = try #require(Timestamp.parse("2026-11-22", now: Self.now))
        #expect(midnight.seconds == local - 10 * 3600 - 4 * 60)
        #expect(Timestamp(rfc3339: "2026-11-22T10:04:05") == nil, "log records need a zone")
    }

    @Test("rejects anything else", arguments: [
        "", " ", "yesterday", "now", "10x", "1h-", "h", "-", "+", ".", "1.", ".s", "1700000000.", "1700000000.5s5",
        "12:00", "2026-11-22T", "2026-11-22T10", "2026-11-22T10:04:", "2026-11-22T10:04:05.", "2026-11-22T10:04:05+1:00",
        "2026-11-22T10:04:05Z ", "2026-13-01T00:00:00Z", "2026-02-29T00:00:00Z", "2026-11-31T00:00:00Z",
        "2026-11-22T24:00:00Z", "2026-11-22T10:60:00Z", "2026-11-22T10:04:60Z", "2026-11-22T10:04:05+24:00",
        "2026/11/22", "99999999999999999999", "9999999999999999999h", "--1h", "1hh",
    ])
    func garbage(input: String) {
        #expect(Timestamp.parse(input, now: Self.now) == nil)
    }
}

#if canImport(Glibc)
import Glibc
#endif
#if canImport(FoundationEssentials)
import FoundationEssentials
#endif
import Synchronization
import Testing
import BerthEngine
import BerthOS
import BerthTestSupport

/// The error `body` throws, or nil.
private func engineError<R>(_ body: () throws(EngineError) -> R) -> EngineError? {
    do { _ = try body() } catch { return error }
    return nil
}

@Suite("Volumes")
struct VolumeStoreTests {
    @Test("create, get, list and remove a volume")
    func lifecycle() throws {
        let dir = TemporaryDirectory("volumes")
        defer { dir.remove() }
        let store = VolumeStore(storeRoot: dir.path)
        #expect(store.list().isEmpty)

        let record = try store.create(name: "data", labels: ["app": "web"])
        #expect(record.name == "data" && record.driver == "local" && record.scope == "local" && !record.anonymous)
        #expect(record.mountpoint == dir.path + "/volumes/data/_data")
        #expect(record.mountpoint == store.dataPath("data"))
        #expect(Timestamp(rfc3339: record.createdAt) != nil)
        let st = try Files.stat(store.dataPath("data"))
        #expect(st.st_mode & S_IFMT == S_IFDIR && st.st_mode & 0o7777 == 0o755)
        #expect(store.get("data") == record)

        _ = try store.create(name: "b")
        _ = try store.create(name: "a")
        #expect(store.list().map(\.name) == ["a", "b", "data"])

        try Files.write(store.dataPath("data") + "/file", "contents")
        #expect(try store.remove("data", inUseBy: []) == nil)
        #expect(store.get("data") == nil)
        #expect(!Files.exists(dir.path + "/volumes/data"))
        #expect(Files.list(dir.path + "/tmp").isEmpty, "nothing is left behind")
        #expect(store.list().map(\.name) == ["a", "b"])
    }

    @Test("the record uses docker's keys for volume inspect and decodes leniently")
    func recordEncoding() throws {
        let dir = TemporaryDirectory("volumes")
        defer { dir.remove() }
        let store = VolumeStore(storeRoot: dir.path)
        _ = try store.create(name: "web", options: ["type": "tmpfs", "o": "size=1m"], labels: ["a": "b"])
        let json = try Files.readString(dir.path + "/volumes/web/volume.json")
        for key in ["Name", "Driver", "Mountpoint", "CreatedAt", "Labels", "Options", "Scope", "Anonymous"] {
            #expect(json.contains("\"\(key)\""), "\(key) in \(json)")
        }
        let minimal = try JSONDecoder().decode(VolumeRecord.self, from: Data(#"{"Name":"x"}"#.utf8))
        #expect(minimal.driver == "local" && minimal.scope == "local" && minimal.labels.isEmpty && !minimal.anonymous)
    }

    @Test("valid names are accepted", arguments: ["a", "0", "A1_b.c-d", "my-volume.v2", String(repeating: "x", count: 200)])
    func validNames(name: String) throws {
        let dir = TemporaryDirectory("volumes")
        defer { dir.remove() }
        #expect(try VolumeStore(storeRoot: dir.path).create(name: name).name == name)
    }

    @Test("invalid names are refused", arguments: ["", "-x", ".x", "_x", "a/b", "..", "a b", "é", "a\u{0}b", "a:b"])
    func invalidNames(name: String) {
        let dir = TemporaryDirectory("volumes")
        defer { dir.remove() }
        let store = VolumeStore(storeRoot: dir.path)
        let error = engineError { () throws(EngineError) in try store.create(name: name) }
        #expect(error?.kind == .invalidArgument)
        #expect(error?.message == "invalid volume name \"\(name)\": use letters, digits, '_', '.' and '-'")
        #expect(store.get(name) == nil)
        #expect(Files.list(dir.path).allSatisfy { $0 == "tmp" || $0 == "volumes" })
    }

    @Test("an existing name is an error, or with ignoreIfExists the existing volume")
    func duplicate() throws {
        let dir = TemporaryDirectory("volumes")
        defer { dir.remove() }
        let store = VolumeStore(storeRoot: dir.path)
        let first = try store.create(name: "data", labels: ["v": "1"])
        let error = engineError { () throws(EngineError) in try store.create(name: "data") }
        #expect(error?.kind == .exists)
        #expect(error?.message == "volume \"data\" already exists")
        #expect(try store.create(name: "data", labels: ["v": "2"], ignoreIfExists: true) == first)
    }

    @Test("without a name, a volume gets 64 random hex digits")
    func generatedName() throws {
        let dir = TemporaryDirectory("volumes")
        defer { dir.remove() }
        let store = VolumeStore(storeRoot: dir.path)
        let one = try store.create(name: nil, anonymous: true)
        let two = try store.create(name: nil, anonymous: true)
        #expect(one.name.count == 64 && one.name.allSatisfy { $0.isHexDigit && !$0.isUppercase })
        #expect(one.name != two.name)
        #expect(store.get(one.name)?.anonymous == true)
    }

    @Test("only the local driver exists")
    func driver() {
        let dir = TemporaryDirectory("volumes")
        defer { dir.remove() }
        let error = engineError { () throws(EngineError) in try VolumeStore(storeRoot: dir.path).create(name: "x", driver: "nfs") }
        #expect(error?.message == "volume driver \"nfs\" is not supported: berth has the local driver")
    }

    @Test("two berths creating the same name at once: exactly one wins")
    func concurrentCreate() throws {
        let dir = TemporaryDirectory("volumes")
        defer { dir.remove() }
        let store = VolumeStore(storeRoot: dir.path)
        for round in 0..<20 {
            let name = "race\(round)"
            final class Race: Sendable {
                let results = Mutex<[Result<VolumeRecord, EngineError>]>([])
                let ready = Atomic<Int>(0)
            }
            let race = Race()
            let threads = (0..<3).map { _ in
                TestThread {
                    race.ready.add(1, ordering: .sequentiallyConsistent)
                    while race.ready.load(ordering: .sequentiallyConsistent) < 3 {}  // start together
                    let result: Result<VolumeRecord, EngineError>
                    do throws(EngineError) { result = .success(try store.create(name: name)) } catch { result = .failure(error) }
                    race.results.withLock { $0.append(result) }
                }
            }
            threads.forEach { $0.join() }
            let all = race.results.withLock { $0 }
            let winners = all.compactMap { try? $0.get() }
            let losers = all.compactMap { if case .failure(let error) = $0 { error } else { nil } }
            #expect(winners.count == 1, "round \(round): \(all)")
            #expect(losers.allSatisfy { $0.kind == .exists }, "round \(round): \(losers)")
            #expect(store.get(name) == winners.first)
        }
        #expect(store.list().count == 20)
        #expect(Files.list(dir.path + "/tmp").isEmpty, "losers remove their attempts")
    }

    @Test("the loser of a creation race learns the name exists from rename(2)")
    func renameRace() throws {
        let dir = TemporaryDirectory("volumes")
        defer { dir.remove() }
        let store = VolumeStore(storeRoot: dir.path)
        let winner = try store.create(name: "data")
        // A second berth that looked before the first one renamed: its get()
        // found nothing, so it goes on to rename its own directory.
        try Files.makeDirectories(dir.path + "/tmp/other/_data")
        #expect(rename(dir.path + "/tmp/other", dir.path + "/volumes/data") != 0)
        #expect(Errno.current == Errno(ENOTEMPTY) || Errno.current == .exists)
        #expect(store.get("data") == winner)
    }

    @Test("a volume in use is not removed")
    func inUse() throws {
        let dir = TemporaryDirectory("volumes")
        defer { dir.remove() }
        let store = VolumeStore(storeRoot: dir.path)
        _ = try store.create(name: "data")
        let one = String(repeating: "a", count: 64), two = String(repeating: "b", count: 64)
        let error = engineError { () throws(EngineError) in try store.remove("data", inUseBy: [one, two]) }
        #expect(error?.kind == .invalidState)
        #expect(error?.message == "volume \"data\" is in use by container(s) aaaaaaaaaaaa, bbbbbbbbbbbb")
        #expect(store.get("data") != nil)
    }

    @Test("removing a volume that does not exist", arguments: ["missing", "../volumes", ""])
    func removeMissing(name: String) {
        let dir = TemporaryDirectory("volumes")
        defer { dir.remove() }
        let error = engineError { () throws(EngineError) in try VolumeStore(storeRoot: dir.path).remove(name, inUseBy: []) }
        #expect(error?.kind == .notFound)
        #expect(error?.message == "no such volume \"\(name)\"")
    }

    @Test("what cannot be removed is left under tmp/ and its path returned", .enabled(if: geteuid() != 0, "root can remove anything"))
    func leftover() throws {
        let dir = TemporaryDirectory("volumes")
        defer {
            for name in Files.list(dir.path + "/tmp") { _ = chmod(dir.path + "/tmp/" + name + "/_data/locked", 0o755) }
            dir.remove()
        }
        let store = VolumeStore(storeRoot: dir.path)
        _ = try store.create(name: "data")
        try Files.makeDirectories(store.dataPath("data") + "/locked")
        try Files.write(store.dataPath("data") + "/locked/file", "x")
        #expect(chmod(store.dataPath("data") + "/locked", 0o555) == 0)
        let leftover = try #require(try store.remove("data", inUseBy: []))
        #expect(leftover.hasPrefix(dir.path + "/tmp/"))
        #expect(Files.exists(leftover + "/_data/locked/file"))
        #expect(store.get("data") == nil && !Files.exists(dir.path + "/volumes/data"))
    }

    @Test("tmpfs volumes: type, device and o like docker's local driver")
    func tmpfsOptions() throws {
        let dir = TemporaryDirectory("volumes")
        defer { dir.remove() }
        let store = VolumeStore(storeRoot: dir.path)
        let tmpfs = try store.create(name: "scratch", options: ["type": "tmpfs", "device": "tmpfs", "o": "size=64m,mode=1777,,noexec"])
        let spec = try #require(store.mountSpec(for: tmpfs))
        #expect(spec.type == "tmpfs" && spec.source == "tmpfs" && spec.options == ["size=64m", "mode=1777", "noexec"])
        let bare = try #require(store.mountSpec(for: try store.create(name: "bare", options: ["type": "tmpfs"])))
        #expect(bare.options.isEmpty)
        #expect(store.mountSpec(for: try store.create(name: "plain")) == nil)
    }

    @Test("unsupported volume options are refused", arguments: [
        (["size": "1g"], "invalid volume option \"size\": the local driver accepts type, device and o"),
        (["type": "nfs", "device": ":/export"], "volume type \"nfs\" is not supported: the local driver makes directories and tmpfs volumes"),
        (["type": "tmpfs", "device": "/dev/sda1"], "a tmpfs volume's device must be \"tmpfs\", not \"/dev/sda1\""),
        (["device": "tmpfs"], "volume options device and o need a type (-o type=tmpfs)"),
        (["o": "size=1m"], "volume options device and o need a type (-o type=tmpfs)"),
    ])
    func badOptions(options: [String: String], message: String) {
        let dir = TemporaryDirectory("volumes")
        defer { dir.remove() }
        let store = VolumeStore(storeRoot: dir.path)
        let error = engineError { () throws(EngineError) in try store.create(name: "v", options: options) }
        #expect(error?.kind == .invalidArgument)
        #expect(error?.message == message)
        #expect(store.get("v") == nil)
    }
}

#if canImport(Glibc)
import Glibc
#endif
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import BerthImage
import BerthOS

/// Container records in the store: `containers/<id>/container.json`.
/// Creating, renaming, updating and removing take the store's lock, so
/// names stay unique and no update is lost between concurrent berths;
/// reading does not (records are replaced by rename, never rewritten).
package struct ContainerStore: Sendable {
    package let images: ImageStore

    package init(images: ImageStore) { self.images = images }

    package var directory: String { images.root + "/containers" }
    package func path(_ id: String) -> String { directory + "/" + id }
    package func recordPath(_ id: String) -> String { path(id) + "/container.json" }
    package func logPath(_ id: String) -> String { path(id) + "/ctr.log" }

    package func load(_ id: String) -> Container? {
        guard let bytes = try? Files.read(recordPath(id)) else { return nil }
        return try? JSONDecoder().decode(Container.self, from: Data(bytes))
    }

    /// Every container, oldest first.
    package func list() -> [Container] {
        Files.list(directory).compactMap { name in name.utf8.count == 64 ? load(name) : nil }
            .sorted { $0.created < $1.created }
    }

    /// By full id, name, or unique id prefix (as podman and docker look up).
    package func lookup(_ text: String) throws(EngineError) -> Container {
        if text.utf8.count == 64, let container = load(text) { return container }
        let all = list()
        if let byName = all.first(where: { $0.name == text }) { return byName }
        let isHex = !text.isEmpty && text.utf8.allSatisfy { ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x61 && $0 <= 0x66) }
        if isHex {
            let matches = all.filter { $0.id.hasPrefix(text) }
            if matches.count == 1 { return matches[0] }
            if matches.count > 1 {
                throw EngineError(.invalidArgument, "more than one container matches \"\(text)\": give more of its id")
            }
        }
        throw EngineError(.notFound, "no container with name or ID \"\(text)\" found")
    }

    package func save(_ container: Container) throws(EngineError) {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        do {
            try Files.writeAtomically(recordPath(container.id), Array(try encoder.encode(container)), mode: 0o600)
        } catch {
            throw EngineError(.failed, "write the record of container \(container.shortID): \(error)")
        }
    }

    package func locked<R>(_ body: () throws(EngineError) -> R) throws(EngineError) -> R {
        do {
            return try images.withLock { () throws -> R in
                do { return try body() } catch let error as EngineError { throw error }
            }
        } catch let error as EngineError {
            throw error
        } catch {
            throw EngineError(.failed, "lock the store \(images.root): \(error)")
        }
    }

    /// Adds a container: under the lock, checks its name, makes its
    /// directory, lets `prepare` fill it, and writes the record last. A
    /// failure removes the directory again.
    package func create(_ container: Container, prepare: (String) throws(EngineError) -> Void) throws(EngineError) {
        do {
            try images.prepare()
            try Files.makeDirectories(directory, mode: 0o700)
        } catch {
            throw EngineError(.failed, "prepare the store \(images.root): \(error)")
        }
        try locked { () throws(EngineError) in
            removeIncomplete()
            if let other = list().first(where: { $0.name == container.name }) {
                throw EngineError(.exists, "the container name \"\(container.name)\" is already in use by \(other.shortID): remove that container or choose another name (--replace removes it)")
            }
            let directory = path(container.id)
            guard mkdir(directory, 0o700) == 0 else {
                throw EngineError(.failed, "create \(directory): \(Errno.current)")
            }
            do throws(EngineError) {
                try prepare(directory)
                try save(container)
            } catch {
                Files.removeTree(directory)
                throw error
            }
        }
    }

    /// Directories left by a create that was killed before its record was
    /// written (the lock is held, so none is being created now).
    package func removeIncomplete() {
        for name in Files.list(directory) where name.utf8.count == 64 && !Files.exists(recordPath(name)) {
            removeDirectory(path(name))
        }
    }

    /// Reads, changes and writes a record under the lock.
    @discardableResult
    package func update(_ id: String, _ body: (inout Container) throws(EngineError) -> Void) throws(EngineError) -> Container {
        try locked { () throws(EngineError) -> Container in
            guard var container = load(id) else {
                throw EngineError(.notFound, "no container with name or ID \"\(id)\" found")
            }
            try body(&container)
            try save(container)
            return container
        }
    }

    /// Removes the record (first: a container without a record does not
    /// exist) and then its directory.
    package func remove(_ id: String) {
        let trash = try? images.temporaryPath("container")
        try? locked { () throws(EngineError) in
            if let trash, rename(path(id), trash) == 0 {
                removeDirectory(trash)
            } else {
                _ = unlink(recordPath(id))
                removeDirectory(path(id))
            }
        }
    }

    /// Rootless, what the container made as its other users belongs to a
    /// subordinate id the caller may not remove: that part goes through
    /// `berth unshare rm -rf`.
    package func removeDirectory(_ directory: String) {
        Files.removeTree(directory)
        guard Files.exists(directory), geteuid() != 0 else { return }
        _ = try? Subprocess.run("/proc/self/exe", arguments: ["berth", "--root", images.root, "unshare", "rm", "-rf", "--", directory],
                                environment: Engine.environment())
    }

    /// A name like docker's: adjective_noun, unique among `taken`.
    package static func generateName(taken: Set<String>) -> String {
        let adjectives = ["brave", "calm", "clever", "eager", "fair", "gentle", "happy", "keen", "lucid", "merry",
                          "nimble", "proud", "quiet", "rapid", "sharp", "steady", "swift", "tidy", "vivid", "witty",
                          "bold", "bright", "cosmic", "daring"]
        let nouns = ["anchor", "beacon", "buoy", "cargo", "compass", "dock", "ferry", "galley", "harbor", "hull",
                     "jetty", "keel", "lantern", "mast", "pier", "quay", "rudder", "sail", "schooner", "skiff",
                     "tide", "wharf", "yacht", "voyage"]
        for attempt in 0..<100 {
            var name = "\(adjectives.randomElement()!)_\(nouns.randomElement()!)"
            if attempt >= 20 { name += "\(Int.random(in: 1...9999))" }
            if !taken.contains(name) { return name }
        }
        return "berth_" + String(UInt64.random(in: 0...UInt64.max), radix: 16)
    }

    /// Container names: as docker allows.
    package static func validate(name: String) throws(EngineError) {
        let bytes = Array(name.utf8)
        func allowed(_ c: UInt8, first: Bool) -> Bool {
            (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a) || (!first && (c == 0x5f || c == 0x2e || c == 0x2d))
        }
        guard let first = bytes.first, allowed(first, first: true), bytes.dropFirst().allSatisfy({ allowed($0, first: false) }),
              bytes.count <= 253 else {
            throw EngineError(.invalidArgument, "invalid container name \"\(name)\": use letters, digits, '_', '.' and '-', starting with a letter or digit")
        }
    }

    package static func newID() -> String {
        var bytes = [UInt8](repeating: 0, count: 32)
        for i in bytes.indices { bytes[i] = UInt8.random(in: 0...255) }
        return ImageStore.hexString(bytes)
    }
}

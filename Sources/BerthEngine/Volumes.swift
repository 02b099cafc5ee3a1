#if canImport(Glibc)
import Glibc
#endif
#if canImport(FoundationEssentials)
import FoundationEssentials
#endif
import BerthOS

/// A named volume as `berth volume inspect` shows it (docker's keys).
package struct VolumeRecord: Codable, Sendable, Equatable {
    package var name: String
    package var driver: String
    /// The directory containers see: `<storeRoot>/volumes/<name>/_data`.
    package var mountpoint: String
    /// RFC 3339, UTC.
    package var createdAt: String
    package var labels: [String: String]
    /// The `-o` options it was created with (`type`, `device`, `o`).
    package var options: [String: String]
    /// Made by `run -v /path` without a name: removed with its container.
    package var anonymous: Bool
    package var scope: String

    package init(name: String, driver: String = "local", mountpoint: String, createdAt: String,
                 labels: [String: String] = [:], options: [String: String] = [:], anonymous: Bool = false,
                 scope: String = "local") {
        self.name = name
        self.driver = driver
        self.mountpoint = mountpoint
        self.createdAt = createdAt
        self.labels = labels
        self.options = options
        self.anonymous = anonymous
        self.scope = scope
    }

    enum CodingKeys: String, CodingKey {
        case name = "Name", driver = "Driver", mountpoint = "Mountpoint", createdAt = "CreatedAt"
        case labels = "Labels", options = "Options", scope = "Scope", anonymous = "Anonymous"
    }

    package init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        name = try c.decode(String.self, forKey: .name)
        driver = try c.decodeIfPresent(String.self, forKey: .driver) ?? "local"
        mountpoint = try c.decodeIfPresent(String.self, forKey: .mountpoint) ?? ""
        createdAt = try c.decodeIfPresent(String.self, forKey: .createdAt) ?? ""
        labels = try c.decodeIfPresent([String: String].self, forKey: .labels) ?? [:]
        options = try c.decodeIfPresent([String: String].self, forKey: .options) ?? [:]
        anonymous = try c.decodeIfPresent(Bool.self, forKey: .anonymous) ?? false
        scope = try c.decodeIfPresent(String.self, forKey: .scope) ?? "local"
    }
}

/// Named volumes in the store:
///
///     <storeRoot>/volumes/<name>/_data         the data (0755), bind-mounted into containers
///     <storeRoot>/volumes/<name>/volume.json   the record
///     <storeRoot>/tmp/<pid>-<start>-…-volume   a volume being created or removed
///
/// A volume directory appears and disappears whole, by rename(2): it is
/// assembled under tmp/ and renamed into place, and renamed back into
/// tmp/ before its tree is removed. tmp/ entries follow the image store's
/// naming, so its clean-up removes what a killed berth left there.
package struct VolumeStore: Sendable {
    package let storeRoot: String

    package init(storeRoot: String) {
        self.storeRoot = Files.absolute(storeRoot)
    }

    package var directory: String { storeRoot + "/volumes" }
    package var temporaryDirectory: String { storeRoot + "/tmp" }
    package func path(_ name: String) -> String { directory + "/" + name }
    package func dataPath(_ name: String) -> String { path(name) + "/_data" }
    func recordPath(_ name: String) -> String { path(name) + "/volume.json" }

    // MARK: names and options

    /// Docker's rule: `[a-zA-Z0-9][a-zA-Z0-9_.-]*`.
    package static func isValid(name: String) -> Bool {
        let bytes = Array(name.utf8)
        guard let first = bytes.first, isAlphanumeric(first) else { return false }
        return bytes.allSatisfy { isAlphanumeric($0) || $0 == UInt8(ascii: "_") || $0 == UInt8(ascii: ".") || $0 == UInt8(ascii: "-") }
    }

    private static func isAlphanumeric(_ byte: UInt8) -> Bool {
        (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte) || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte)
            || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte)
    }

    package static func validate(name: String) throws(EngineError) {
        guard isValid(name: name) else {
            throw EngineError(.invalidArgument, "invalid volume name \"\(name)\": use letters, digits, '_', '.' and '-'")
        }
    }

    /// The local driver's options, as docker's: `type`, `device` and `o`.
    /// berth mounts one type, tmpfs (`-o type=tmpfs -o device=tmpfs
    /// -o o=size=64m`); without `type` a volume is a directory.
    package static func validate(options: [String: String]) throws(EngineError) {
        for key in options.keys.sorted() where !["type", "device", "o"].contains(key) {
            throw EngineError(.invalidArgument, "invalid volume option \"\(key)\": the local driver accepts type, device and o")
        }
        guard let type = options["type"] else {
            if options["device"] != nil || options["o"] != nil {
                throw EngineError(.invalidArgument, "volume options device and o need a type (-o type=tmpfs)")
            }
            return
        }
        guard type == "tmpfs" else {
            throw EngineError(.invalidArgument, "volume type \"\(type)\" is not supported: the local driver makes directories and tmpfs volumes")
        }
        if let device = options["device"], !device.isEmpty, device != "tmpfs" {
            throw EngineError(.invalidArgument, "a tmpfs volume's device must be \"tmpfs\", not \"\(device)\"")
        }
    }

    // MARK: creating

    /// Creates a volume: `name` nil makes an anonymous-style name of 64 hex
    /// digits. An existing name is an error, or with `ignoreIfExists` that
    /// volume's record. Safe between concurrent berths: exactly one
    /// rename(2) of a complete directory onto the name succeeds (a
    /// directory cannot be renamed onto a non-empty one).
    package func create(
        name: String?, driver: String = "local", options: [String: String] = [:], labels: [String: String] = [:],
        anonymous: Bool = false, ignoreIfExists: Bool = false
    ) throws(EngineError) -> VolumeRecord {
        let name = name ?? Self.randomName()
        try Self.validate(name: name)
        guard driver == "local" else {
            throw EngineError(.invalidArgument, "volume driver \"\(driver)\" is not supported: berth has the local driver")
        }
        try Self.validate(options: options)
        if let existing = get(name) {
            if ignoreIfExists { return existing }
            throw EngineError(.exists, "volume \"\(name)\" already exists")
        }

        let record = VolumeRecord(name: name, mountpoint: dataPath(name), createdAt: Timestamp.now().rfc3339,
                                  labels: labels, options: options, anonymous: anonymous)
        let data: [UInt8]
        do {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            data = Array(try encoder.encode(record))
        } catch {
            throw EngineError(.failed, "cannot encode the record of volume \"\(name)\": \(error)")
        }

        let temporary = try temporaryPath("volume")
        do {
            _ = try check(mkdir(temporary, 0o700))
            _ = try check(mkdir(temporary + "/_data", 0o755))
            _ = try check(chmod(temporary + "/_data", 0o755))  // whatever the umask
            try Files.writeAtomically(temporary + "/volume.json", data, mode: 0o600)
        } catch {
            Files.removeTree(temporary)
            throw EngineError(.failed, "cannot create volume \"\(name)\" in \(storeRoot): \(error)")
        }
        if rename(temporary, path(name)) != 0 {
            let error = Errno.current
            Files.removeTree(temporary)
            guard error == .exists || error == Errno(ENOTEMPTY) else {
                throw EngineError(.failed, "cannot create volume \"\(name)\" in \(directory): \(error)")
            }
            // Another berth created it first.
            if ignoreIfExists, let existing = get(name) { return existing }
            throw EngineError(.exists, "volume \"\(name)\" already exists")
        }
        return record
    }

    // MARK: reading

    /// The record of volume `name`, or nil when there is none (or the name is invalid).
    package func get(_ name: String) -> VolumeRecord? {
        guard Self.isValid(name: name), let bytes = try? Files.read(recordPath(name)),
              var record = try? JSONDecoder().decode(VolumeRecord.self, from: Data(bytes)), record.name == name
        else { return nil }
        record.mountpoint = dataPath(name)  // where the data is, even if the store was moved
        return record
    }

    /// Every volume, sorted by name.
    package func list() -> [VolumeRecord] {
        Files.list(directory).sorted().compactMap { get($0) }
    }

    // MARK: removing

    /// Removes volume `name` and its data. Refused while `inUseBy` (the ids
    /// of containers that use it) is not empty: removing those first, or
    /// `--force`, is the caller's part.
    ///
    /// The directory is first renamed under tmp/, so the name is free at
    /// once and a crash never leaves a half-removed volume under it. Returns
    /// nil when everything is gone, or the path of what the caller could
    /// not remove (rootless: files a container made as one of its other
    /// users): the caller removes it with `berth unshare rm -rf -- <path>`.
    @discardableResult
    package func remove(_ name: String, inUseBy containers: [String]) throws(EngineError) -> String? {
        guard Self.isValid(name: name), Files.isDirectory(path(name)) else {
            throw EngineError(.notFound, "no such volume \"\(name)\"")
        }
        if !containers.isEmpty {
            let ids = containers.map { String($0.prefix(12)) }.joined(separator: ", ")
            throw EngineError(.invalidState, "volume \"\(name)\" is in use by container(s) \(ids)")
        }
        let temporary = try temporaryPath("volume-removed")
        if rename(path(name), temporary) != 0 {
            let error = Errno.current
            if error == .noSuchFile { throw EngineError(.notFound, "no such volume \"\(name)\"") }
            throw EngineError(.failed, "cannot remove volume \"\(name)\": \(error)")
        }
        Files.removeTree(temporary)
        return Files.exists(temporary) ? temporary : nil
    }

    // MARK: mounting

    /// How to mount a volume that is not a directory: nil for a plain volume
    /// (bind-mount `mountpoint`), the tmpfs parameters for `type=tmpfs`
    /// (its `o` split at commas, e.g. `["size=64m", "mode=1777"]`). Each
    /// container gets its own tmpfs.
    package func mountSpec(for record: VolumeRecord) -> (type: String, source: String, options: [String])? {
        guard record.options["type"] == "tmpfs" else { return nil }
        let options = (record.options["o"] ?? "").split(separator: ",").map(String.init).filter { !$0.isEmpty }
        return ("tmpfs", "tmpfs", options)
    }

    // MARK: helpers

    /// 64 random hex digits, like docker's anonymous volume names.
    package static func randomName() -> String {
        var generator = SystemRandomNumberGenerator()
        let digits = Array("0123456789abcdef".utf8)
        return String(decoding: (0..<64).map { _ in digits[Int(generator.next() % 16)] }, as: UTF8.self)
    }

    /// A fresh path under tmp/, named as the image store names its
    /// temporaries (`<pid>-<start time>-…`), so leftovers of a dead process
    /// are removed by its clean-up and work in progress is not.
    private func temporaryPath(_ kind: String) throws(EngineError) -> String {
        do { try Files.makeDirectories(temporaryDirectory, mode: 0o700); try Files.makeDirectories(directory, mode: 0o700) } catch {
            throw EngineError(.failed, "cannot create the volume store in \(storeRoot): \(error)")
        }
        let pid = getpid()
        let random = String(UInt64.random(in: 0...UInt64.max), radix: 16)
        return "\(temporaryDirectory)/\(pid)-\(processStartTime(pid) ?? 0)-0-\(random)-\(kind)"
    }
}

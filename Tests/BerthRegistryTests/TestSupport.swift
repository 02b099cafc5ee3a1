#if canImport(Glibc)
import Glibc
#endif

/// A fresh directory under /tmp for one test, removed by `remove()`.
struct TemporaryDirectory: Sendable {
    let path: String

    init(_ label: String = "registry") {
        var template = Array("/tmp/berth-test-\(label)-XXXXXX".utf8CString)
        let made = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }
        precondition(made != nil, "mkdtemp failed")
        path = template.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
    }

    func remove() {
        _ = TestProcess.run(["/bin/rm", "-rf", "--one-file-system", path])
    }

    /// Writes `contents` to `relative`, creating its directories.
    func write(_ relative: String, _ contents: String) throws {
        try write(relative, Array(contents.utf8))
    }

    func write(_ relative: String, _ bytes: [UInt8]) throws {
        let full = path + "/" + relative
        if let slash = full.lastIndex(of: "/") {
            var current = ""
            for component in full[..<slash].split(separator: "/") {
                current += "/" + component
                mkdir(current, 0o755)
            }
        }
        guard let file = fopen(full, "w") else { throw TestFailure("cannot write \(full)") }
        defer { fclose(file) }
        guard fwrite(bytes, 1, bytes.count, file) == bytes.count else { throw TestFailure("short write to \(full)") }
    }

    func read(_ relative: String) throws -> String {
        String(decoding: try readBytes(path + "/" + relative), as: UTF8.self)
    }

    static func exists(_ path: String) -> Bool { access(path, F_OK) == 0 }
}

func readBytes(_ path: String) throws -> [UInt8] {
    guard let file = fopen(path, "r") else { throw TestFailure("cannot read \(path)") }
    defer { fclose(file) }
    var bytes: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 65536)
    while true {
        let count = fread(&buffer, 1, buffer.count, file)
        if count <= 0 { break }
        bytes += buffer[0..<count]
    }
    return bytes
}

struct TestFailure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// posix_spawn with stdout captured (stderr to a file or inherited).
enum TestProcess {
    struct Result {
        var status: Int32
        var output: String
    }

    static func run(_ arguments: [String], stderrPath: String? = nil) -> Result {
        var pipeFDs: [Int32] = [0, 0]
        guard pipe(&pipeFDs) == 0 else { return Result(status: -1, output: "") }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_adddup2(&actions, pipeFDs[1], 1)
        if let stderrPath {
            posix_spawn_file_actions_addopen(&actions, 2, stderrPath, O_WRONLY | O_CREAT | O_APPEND, 0o644)
        }
        posix_spawn_file_actions_addclose(&actions, pipeFDs[0])
        posix_spawn_file_actions_addclose(&actions, pipeFDs[1])
        // The child (and the registry it may leave running) gets default
        // signal handling and an empty mask, whatever the test runner blocked
        // or ignored; otherwise SIGTERM from scripts/registry stop is ignored.
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var signals = sigset_t()
        sigemptyset(&signals)
        posix_spawnattr_setsigmask(&attributes, &signals)
        sigfillset(&signals)
        posix_spawnattr_setsigdefault(&attributes, &signals)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        let argv: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        var pid = pid_t()
        let spawned = posix_spawn(&pid, arguments[0], &actions, &attributes, argv, environ)
        close(pipeFDs[1])
        guard spawned == 0 else {
            close(pipeFDs[0])
            return Result(status: -1, output: "")
        }
        var output: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = read(pipeFDs[0], &buffer, buffer.count)
            if count > 0 { output += buffer[0..<count]; continue }
            if count < 0 && errno == EINTR { continue }
            break
        }
        close(pipeFDs[0])
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        let exitCode = (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
        return Result(status: exitCode, output: String(decoding: output, as: UTF8.self))
    }
}

/// A throwaway docker-registry on 127.0.0.1 (plain HTTP), started and
/// stopped with the project's scripts/registry (which records and kills
/// the registry and token server by pid).
struct LocalRegistry: Sendable {
    enum Auth: String, Sendable { case none, basic, token }

    let directory: TemporaryDirectory
    /// `127.0.0.1:PORT`
    let address: String
    static let username = "berth"
    static let password = "s3cret"

    /// The repository root, from this file's path (Tests/BerthRegistryTests/TestSupport.swift).
    static var repositoryRoot: String {
        var path = #filePath
        if let resolved = realpath(path, nil) {
            path = String(cString: resolved)
            free(resolved)
        }
        var parts = path.split(separator: "/", omittingEmptySubsequences: false)
        parts.removeLast(3)
        return parts.joined(separator: "/")
    }

    /// Why the integration tests cannot run here, or nil.
    static var unavailableReason: String? {
        if !["/usr/bin/docker-registry", "/usr/local/bin/docker-registry"].contains(where: TemporaryDirectory.exists) {
            return "docker-registry is not installed (apt-get install docker-registry)"
        }
        if !TemporaryDirectory.exists(repositoryRoot + "/scripts/registry") { return "scripts/registry is missing" }
        if !TemporaryDirectory.exists("/usr/bin/curl") { return "curl is not installed" }
        return nil
    }

    static func start(_ auth: Auth = .none) throws -> LocalRegistry {
        let directory = TemporaryDirectory("registry-\(auth.rawValue)")
        let result = TestProcess.run(["/bin/bash", repositoryRoot + "/scripts/registry", "start", "--auth", auth.rawValue, directory.path],
                                     stderrPath: directory.path + "/start.log")
        let address = result.output.split(separator: "\n").last.map(String.init) ?? ""
        guard result.status == 0, address.hasPrefix("127.0.0.1:") else {
            let log = (try? directory.read("start.log")) ?? ""
            _ = TestProcess.run(["/bin/bash", repositoryRoot + "/scripts/registry", "stop", directory.path])
            directory.remove()
            throw TestFailure("scripts/registry start failed (\(result.status)): \(log)")
        }
        return LocalRegistry(directory: directory, address: address)
    }

    func stop() {
        _ = TestProcess.run(["/bin/bash", LocalRegistry.repositoryRoot + "/scripts/registry", "stop", directory.path])
        directory.remove()
    }

    /// Runs `body` with a started registry, always stopping it.
    static func with<T>(_ auth: Auth = .none, _ body: (LocalRegistry) async throws -> T) async throws -> T? {
        if let reason = unavailableReason {
            print("skipping registry integration test: \(reason)")
            return nil
        }
        let registry = try start(auth)
        defer { registry.stop() }
        return try await body(registry)
    }
}

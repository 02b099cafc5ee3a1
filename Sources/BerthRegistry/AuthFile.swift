#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import BerthOCI
import BerthOS

/// A user name and password (or token) for a registry.
package struct Credentials: Equatable, Sendable {
    package var username: String
    package var password: String

    package init(username: String, password: String) {
        self.username = username
        self.password = password
    }

    /// The value of an `Authorization: Basic` header, and of auth.json's `auth`.
    package var basic: String { Data("\(username):\(password)".utf8).base64EncodedString() }
}

/// Credentials as podman and docker keep them: containers-auth.json(5)
/// and ~/.docker/config.json, both `{"auths": {"key": {"auth": base64(user:pass)}}}`
/// where the key is `host`, `host/namespace/repo` or docker's `https://host/v1/`.
package enum AuthFile {
    /// The files credentials are read from, in order (podman's order):
    /// `$REGISTRY_AUTH_FILE`, `$XDG_RUNTIME_DIR/containers/auth.json`
    /// (root: /run/containers/0/auth.json), `$XDG_CONFIG_HOME/containers/auth.json`,
    /// `~/.docker/config.json` (`$DOCKER_CONFIG/config.json`).
    package static func readPaths(_ environment: RegistryEnvironment) -> [String] {
        var paths: [String] = []
        if let path = environment["REGISTRY_AUTH_FILE"] { paths.append(path) }
        paths.append(runtimePath(environment))
        paths.append(environment.configHome + "/containers/auth.json")
        paths.append((environment["DOCKER_CONFIG"] ?? environment.home + "/.docker") + "/config.json")
        var unique: [String] = []
        for path in paths where !unique.contains(path) { unique.append(path) }
        return unique
    }

    /// Where `login` writes: `$REGISTRY_AUTH_FILE`, else the runtime-directory file.
    package static func writePath(_ environment: RegistryEnvironment) -> String {
        environment["REGISTRY_AUTH_FILE"] ?? runtimePath(environment)
    }

    private static func runtimePath(_ environment: RegistryEnvironment) -> String {
        if environment.uid == 0 { return "/run/containers/0/auth.json" }
        let runtime = environment["XDG_RUNTIME_DIR"] ?? "/run/user/\(environment.uid)"
        return runtime + "/containers/auth.json"
    }

    // MARK: reading

    /// The credentials for `registry` (and repository, for keys naming a
    /// namespace): in the first file that has a matching key, the most
    /// specific key wins (`host/ns/repo`, then `host/ns`, then `host`).
    package static func credentials(registry: String, repository: String? = nil,
                                    environment: RegistryEnvironment = .current) throws(RegistryError) -> Credentials? {
        for path in readPaths(environment) {
            guard let auths = try readAuths(path) else { continue }
            if let found = try lookup(auths, registry: registry, repository: repository, path: path) { return found }
        }
        return nil
    }

    /// The lookup keys for a registry and repository, most specific first.
    package static func candidateKeys(registry: String, repository: String?) -> [String] {
        let host = normaliseKey(registry)
        var keys: [String] = []
        if let repository {
            var components = repository.split(separator: "/").map(String.init)
            while !components.isEmpty {
                keys.append(host + "/" + components.joined(separator: "/"))
                components.removeLast()
            }
        }
        keys.append(host)
        return keys
    }

    /// `https://index.docker.io/v1/` → `docker.io`; `http://host:5000/` → `host:5000`.
    package static func normaliseKey(_ key: String) -> String {
        var text = Substring(key)
        for scheme in ["https://", "http://"] where text.hasPrefix(scheme) { text = text.dropFirst(scheme.count) }
        for suffix in ["/v1/", "/v2/", "/v1", "/v2"] where text.hasSuffix(suffix) { text = text.dropLast(suffix.count) }
        while text.hasSuffix("/") { text = text.dropLast() }
        var normalised = String(text)
        for alias in ["index.docker.io", "registry-1.docker.io"] {
            if normalised == alias || normalised.hasPrefix(alias + "/") {
                normalised = ImageReference.defaultRegistry + normalised.dropFirst(alias.count)
            }
        }
        return normalised
    }

    private static func lookup(_ auths: [String: JSONValue], registry: String, repository: String?,
                               path: String) throws(RegistryError) -> Credentials? {
        var byKey: [String: JSONValue] = [:]
        for (key, value) in auths {
            let normalised = normaliseKey(key)
            // An exact key beats docker's URL form of the same key.
            if byKey[normalised] == nil || key == normalised { byKey[normalised] = value }
        }
        for key in candidateKeys(registry: registry, repository: repository) {
            guard let entry = byKey[key] else { continue }
            guard case .object(let fields) = entry else {
                throw RegistryError(.configuration, "\(path): the entry for \"\(key)\" is not an object")
            }
            if case .string(let auth)? = fields["auth"], !auth.isEmpty {
                guard let data = Data(base64Encoded: auth), case let text = String(decoding: data, as: UTF8.self),
                      let colon = text.firstIndex(of: ":") else {
                    throw RegistryError(.configuration, "\(path): the \"auth\" of \"\(key)\" is not base64 of user:password")
                }
                return Credentials(username: String(text[..<colon]), password: String(text[text.index(after: colon)...]))
            }
            if case .string(let username)? = fields["username"], case .string(let password)? = fields["password"] {
                return Credentials(username: username, password: password)
            }
            // An entry without credentials (docker's credsStore leaves these): keep looking.
        }
        return nil
    }

    /// The `auths` object of a file, nil when the file does not exist.
    private static func readAuths(_ path: String) throws(RegistryError) -> [String: JSONValue]? {
        guard let document = try readDocument(path) else { return nil }
        guard case .object(let auths)? = document["auths"] else { return [:] }
        return auths
    }

    private static func readDocument(_ path: String) throws(RegistryError) -> [String: JSONValue]? {
        let bytes: [UInt8]
        do {
            bytes = try Files.read(path)
        } catch {
            if error == .noSuchFile || error == .notDirectory { return nil }
            throw RegistryError(.configuration, "cannot read \(path): \(error)")
        }
        if bytes.allSatisfy({ $0 == 32 || $0 == 10 || $0 == 9 || $0 == 13 }) { return [:] }
        do {
            let value = try JSONDecoder().decode(JSONValue.self, from: Data(bytes))
            guard case .object(let document) = value else {
                throw RegistryError(.configuration, "\(path) is not a json object")
            }
            return document
        } catch let error as RegistryError {
            throw error
        } catch {
            throw RegistryError(.configuration, "\(path) is not valid json")
        }
    }

    // MARK: writing

    /// Stores credentials for `key` (a host or `host/namespace`) in the
    /// write file, keeping its other entries and fields; returns the path.
    @discardableResult
    package static func login(_ key: String, credentials: Credentials,
                              environment: RegistryEnvironment = .current) throws(RegistryError) -> String {
        let path = writePath(environment)
        var document = try readDocument(path) ?? [:]
        var auths: [String: JSONValue] = [:]
        if case .object(let existing)? = document["auths"] { auths = existing }
        let normalised = normaliseKey(key)
        for existingKey in auths.keys where existingKey != normalised && normaliseKey(existingKey) == normalised {
            auths[existingKey] = nil
        }
        var entry: [String: JSONValue] = [:]
        if case .object(let fields)? = auths[normalised] { entry = fields }
        entry["auth"] = .string(credentials.basic)
        entry["username"] = nil
        entry["password"] = nil
        entry["identitytoken"] = nil
        auths[normalised] = .object(entry)
        document["auths"] = .object(auths)
        try write(document, to: path)
        return path
    }

    /// Removes the credentials for `key` from the write file. Returns false
    /// when there were none there.
    package static func logout(_ key: String, environment: RegistryEnvironment = .current) throws(RegistryError) -> Bool {
        let path = writePath(environment)
        guard var document = try readDocument(path), case .object(var auths)? = document["auths"] else { return false }
        let normalised = normaliseKey(key)
        let matching = auths.keys.filter { normaliseKey($0) == normalised }
        guard !matching.isEmpty else { return false }
        for existingKey in matching { auths[existingKey] = nil }
        document["auths"] = .object(auths)
        try write(document, to: path)
        return true
    }

    /// The other files that still hold credentials for `key` (podman warns
    /// about ~/.docker/config.json after a logout).
    package static func otherFilesWithCredentials(_ key: String, environment: RegistryEnvironment = .current) -> [String] {
        let normalised = normaliseKey(key)
        let write = writePath(environment)
        return readPaths(environment).filter { path in
            guard path != write, let auths = try? readAuths(path) else { return false }
            return auths.keys.contains { normaliseKey($0) == normalised }
        }
    }

    private static func write(_ document: [String: JSONValue], to path: String) throws(RegistryError) {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        let data: Data
        do {
            data = try encoder.encode(JSONValue.object(document))
        } catch {
            throw RegistryError(.configuration, "cannot encode \(path): \(error)")
        }
        do {
            if let slash = path.lastIndex(of: "/"), slash != path.startIndex {
                try Files.makeDirectories(String(path[..<slash]), mode: 0o700)
            }
            try Files.writeAtomically(path, Array(data) + [10], mode: 0o600)
        } catch {
            throw RegistryError(.configuration, "cannot write \(path): \(error)")
        }
    }
}

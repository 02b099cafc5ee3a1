import BerthOCI
import BerthOS

/// Where to look for an image: registries.conf (containers-registries.conf(5),
/// version 2) as podman reads it, reduced to what berth uses: the search
/// list for short names, and per-prefix `[[registry]]` tables with a
/// location, `insecure`, `blocked` and mirrors.
package struct RegistriesConfiguration: Equatable, Sendable {
    package struct Mirror: Equatable, Sendable {
        package var location: String
        package var insecure: Bool

        package init(location: String, insecure: Bool = false) {
            self.location = location
            self.insecure = insecure
        }
    }

    package struct Registry: Equatable, Sendable {
        /// What references this table applies to: `host`, `host/namespace`,
        /// or `*.domain` (any host under domain).
        package var prefix: String
        /// Where the prefix really lives (defaults to the prefix).
        package var location: String
        package var insecure: Bool
        package var blocked: Bool
        /// Use mirrors only for references by digest (tags can move).
        package var mirrorByDigestOnly: Bool
        package var mirrors: [Mirror]

        package init(prefix: String, location: String? = nil, insecure: Bool = false, blocked: Bool = false,
                     mirrorByDigestOnly: Bool = false, mirrors: [Mirror] = []) {
            self.prefix = prefix
            self.location = location ?? prefix
            self.insecure = insecure
            self.blocked = blocked
            self.mirrorByDigestOnly = mirrorByDigestOnly
            self.mirrors = mirrors
        }
    }

    /// Registries tried, in order, for a name without a registry (`busybox`).
    package var unqualifiedSearchRegistries: [String]
    package var registries: [Registry]

    package init(unqualifiedSearchRegistries: [String] = [ImageReference.defaultRegistry], registries: [Registry] = []) {
        self.unqualifiedSearchRegistries = unqualifiedSearchRegistries
        self.registries = registries
    }

    /// No configuration file: search docker.io only.
    package static let `default` = RegistriesConfiguration()

    // MARK: loading

    /// The file berth reads: `$BERTH_REGISTRIES_CONF`, else (not root)
    /// `$XDG_CONFIG_HOME/berth/registries.conf` if it exists, else
    /// `/etc/berth/registries.conf` if it exists, else none.
    package static func path(in environment: RegistryEnvironment) -> String? {
        if let path = environment["BERTH_REGISTRIES_CONF"] { return path }
        if environment.uid != 0 {
            let user = environment.configHome + "/berth/registries.conf"
            if Files.exists(user) { return user }
        }
        return Files.exists(systemPath) ? systemPath : nil
    }

    package static let systemPath = "/etc/berth/registries.conf"

    /// Reads the configuration `path(in:)` names, or the default.
    package static func load(_ environment: RegistryEnvironment = .current) throws(RegistryError) -> RegistriesConfiguration {
        guard let path = path(in: environment) else { return .default }
        let text: String
        do {
            text = try Files.readString(path)
        } catch {
            throw RegistryError(.configuration, "cannot read \(path): \(error)")
        }
        return try RegistriesConfiguration(parsing: text)
    }

    // MARK: parsing

    /// Parses registries.conf text; errors read `registries.conf line N: …`.
    package init(parsing text: String) throws(RegistryError) {
        let table: TOMLTable
        do {
            table = try TOMLParser.parse(text)
        } catch {
            throw RegistriesConfiguration.error(error.line, error.message)
        }
        self.init(unqualifiedSearchRegistries: [ImageReference.defaultRegistry], registries: [])
        for key in table.keys {
            let line = table.lines[key] ?? 0
            let value = table[key]!
            switch key {
            case "unqualified-search-registries":
                let hosts = try RegistriesConfiguration.strings(value, key: key, line: line)
                for host in hosts where host.isEmpty || host.contains("/") {
                    throw RegistriesConfiguration.error(line, "\"\(host)\" in unqualified-search-registries is not a registry host")
                }
                unqualifiedSearchRegistries = hosts
            case "registry":
                guard case .array(let elements) = value else {
                    throw RegistriesConfiguration.error(line, "\"registry\" must be an array of tables ([[registry]])")
                }
                for element in elements {
                    guard case .table(let entry) = element else {
                        throw RegistriesConfiguration.error(line, "\"registry\" must be an array of tables ([[registry]])")
                    }
                    registries.append(try RegistriesConfiguration.registry(entry))
                }
            case "registries":
                throw RegistriesConfiguration.error(line, "the version 1 format ([registries.search]) is not supported; use unqualified-search-registries and [[registry]]")
            case "short-name-mode", "credential-helpers", "aliases", "additional-layer-store-auth-helper":
                continue // podman settings berth does not use
            default:
                throw RegistriesConfiguration.error(line, "unknown key \"\(key)\"")
            }
        }
        var seen: [String: Int] = [:]
        for registry in registries {
            if seen[registry.prefix] != nil {
                throw RegistriesConfiguration.error(0, "prefix \"\(registry.prefix)\" is configured twice")
            }
            seen[registry.prefix] = 1
        }
    }

    private static func registry(_ entry: TOMLTable) throws(RegistryError) -> Registry {
        var prefix: String?
        var location: String?
        var registry = Registry(prefix: "")
        for key in entry.keys {
            let line = entry.lines[key] ?? entry.line
            let value = entry[key]!
            switch key {
            case "prefix": prefix = try string(value, key: key, line: line)
            case "location": location = try string(value, key: key, line: line)
            case "insecure": registry.insecure = try boolean(value, key: key, line: line)
            case "blocked": registry.blocked = try boolean(value, key: key, line: line)
            case "mirror-by-digest-only": registry.mirrorByDigestOnly = try boolean(value, key: key, line: line)
            case "mirror":
                guard case .array(let elements) = value else {
                    throw error(line, "\"mirror\" must be an array of tables ([[registry.mirror]])")
                }
                for element in elements {
                    guard case .table(let table) = element else {
                        throw error(line, "\"mirror\" must be an array of tables ([[registry.mirror]])")
                    }
                    registry.mirrors.append(try mirror(table))
                }
            default:
                throw error(line, "unknown key \"\(key)\" in [[registry]]")
            }
        }
        let line = entry.line
        guard let chosen = (prefix ?? location).map(stripScheme), !chosen.isEmpty else {
            throw error(line, "[[registry]] needs a location or a prefix")
        }
        try validatePrefix(chosen, line: line)
        registry.prefix = chosen
        if chosen.hasPrefix("*.") {
            // A wildcard table keeps each reference's own host.
            guard location == nil else { throw error(line, "a [[registry]] with wildcard prefix \"\(chosen)\" cannot have a location") }
            registry.location = ""
        } else {
            registry.location = location.map(stripScheme) ?? chosen
            if registry.location.isEmpty { registry.location = chosen }
        }
        return registry
    }

    private static func mirror(_ entry: TOMLTable) throws(RegistryError) -> Mirror {
        var mirror = Mirror(location: "")
        for key in entry.keys {
            let line = entry.lines[key] ?? entry.line
            let value = entry[key]!
            switch key {
            case "location": mirror.location = stripScheme(try string(value, key: key, line: line))
            case "insecure": mirror.insecure = try boolean(value, key: key, line: line)
            case "pull-from-mirror": continue // all / digest-only / tag-only: berth treats every mirror as "all"
            default: throw error(line, "unknown key \"\(key)\" in [[registry.mirror]]")
            }
        }
        guard !mirror.location.isEmpty else { throw error(entry.line, "[[registry.mirror]] needs a location") }
        return mirror
    }

    private static func validatePrefix(_ prefix: String, line: Int) throws(RegistryError) {
        if prefix.hasPrefix("*.") {
            guard !prefix.dropFirst(2).isEmpty, !prefix.contains("/") else {
                throw error(line, "wildcard prefix \"\(prefix)\" must be \"*.domain\" with no path")
            }
        } else if prefix.contains("*") {
            throw error(line, "\"*\" is only allowed at the start of a prefix (\"*.domain\")")
        }
    }

    /// `https://host/x` → `host/x` (podman accepts and ignores the scheme).
    private static func stripScheme(_ text: String) -> String {
        var text = Substring(text)
        for scheme in ["https://", "http://"] where text.hasPrefix(scheme) { text = text.dropFirst(scheme.count) }
        while text.hasSuffix("/") { text = text.dropLast() }
        return String(text)
    }

    private static func string(_ value: TOMLValue, key: String, line: Int) throws(RegistryError) -> String {
        guard case .string(let text) = value else { throw error(line, "\"\(key)\" must be a string, not \(value.typeName)") }
        return text
    }

    private static func boolean(_ value: TOMLValue, key: String, line: Int) throws(RegistryError) -> Bool {
        guard case .boolean(let flag) = value else { throw error(line, "\"\(key)\" must be a boolean, not \(value.typeName)") }
        return flag
    }

    private static func strings(_ value: TOMLValue, key: String, line: Int) throws(RegistryError) -> [String] {
        guard case .array(let elements) = value else { throw error(line, "\"\(key)\" must be an array of strings, not \(value.typeName)") }
        var result: [String] = []
        for element in elements {
            guard case .string(let text) = element else { throw error(line, "\"\(key)\" must be an array of strings") }
            result.append(text)
        }
        return result
    }

    private static func error(_ line: Int, _ message: String) -> RegistryError {
        RegistryError(.configuration, line > 0 ? "registries.conf line \(line): \(message)" : "registries.conf: \(message)")
    }

    // MARK: resolution

    /// The `[[registry]]` table that applies to a reference: the longest
    /// matching prefix (an exact host or path prefix beats a wildcard).
    package func registry(for reference: ImageReference) -> Registry? {
        let name = reference.name
        var best: Registry?
        var bestLength = -1
        for registry in registries {
            let length: Int
            if registry.prefix.hasPrefix("*.") {
                let domain = registry.prefix.dropFirst(1) // ".example.com"
                guard reference.registry.hasSuffix(domain) else { continue }
                length = domain.count // a wildcard is less specific than a full host
            } else {
                guard name == registry.prefix || name.hasPrefix(registry.prefix + "/") else { continue }
                length = registry.prefix.count + 1000
            }
            if length > bestLength {
                best = registry
                bestLength = length
            }
        }
        return best
    }

    /// The places to try for `reference`, in order: for a short name, each
    /// search registry in turn; for each registry, its mirrors and then its
    /// location. The caller tries them until one has the image.
    package func resolve(_ reference: ImageReference) throws(RegistryError) -> [Endpoint] {
        guard !reference.qualified else { return try resolveQualified(reference) }
        guard !unqualifiedSearchRegistries.isEmpty else {
            throw RegistryError(.configuration, "short name \"\(reference.repository)\" cannot be resolved: no unqualified-search-registries in registries.conf")
        }
        var endpoints: [Endpoint] = []
        var blocked: [String] = []
        for host in unqualifiedSearchRegistries {
            do {
                endpoints += try resolveQualified(reference.inRegistry(host))
            } catch where error.code == .blocked {
                blocked.append(host)
            }
        }
        guard !endpoints.isEmpty else {
            throw RegistryError(.blocked, "every search registry for \(reference.repository) is blocked in registries.conf (\(blocked.joined(separator: ", ")))")
        }
        return endpoints
    }

    private func resolveQualified(_ reference: ImageReference) throws(RegistryError) -> [Endpoint] {
        guard let registry = registry(for: reference) else { return [Endpoint(reference)] }
        if registry.blocked {
            throw RegistryError(.blocked, "registry \(reference.registry) is blocked in registries.conf")
        }
        var endpoints: [Endpoint] = []
        if !registry.mirrorByDigestOnly || reference.digest != nil {
            for mirror in registry.mirrors {
                if let rewritten = rewrite(reference, prefix: registry.prefix, location: mirror.location) {
                    endpoints.append(Endpoint(rewritten, insecure: mirror.insecure, isMirror: true))
                }
            }
        }
        if let rewritten = rewrite(reference, prefix: registry.prefix, location: registry.location) {
            endpoints.append(Endpoint(rewritten, insecure: registry.insecure))
        }
        return endpoints
    }

    /// `prefix/rest` → `location/rest`, keeping tag and digest.
    private func rewrite(_ reference: ImageReference, prefix: String, location: String) -> ImageReference? {
        let rest: Substring
        if prefix.hasPrefix("*.") {
            if location.isEmpty { return reference }
            rest = reference.name.dropFirst(reference.registry.count)
        } else {
            rest = reference.name.dropFirst(prefix.count)
        }
        let newName = location + rest
        guard let slash = newName.firstIndex(of: "/") else { return nil }
        var rewritten = reference
        rewritten.registry = String(newName[..<slash])
        rewritten.repository = String(newName[newName.index(after: slash)...])
        rewritten.qualified = true
        return rewritten
    }
}

/// One place to fetch a reference from: the reference rewritten to a
/// registry's location or a mirror, and whether to use plain HTTP (or HTTPS
/// without certificate verification) there.
package struct Endpoint: Hashable, Sendable, CustomStringConvertible {
    package var reference: ImageReference
    package var insecure: Bool
    package var isMirror: Bool

    package init(_ reference: ImageReference, insecure: Bool = false, isMirror: Bool = false) {
        self.reference = reference
        self.insecure = insecure
        self.isMirror = isMirror
    }

    package var description: String { reference.description }
}

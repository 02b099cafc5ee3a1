#if canImport(Glibc)
import Glibc
#endif

/// What the configuration lookups depend on: the environment variables,
/// the user and the home directory. Tests pass their own; the CLI uses
/// `current`.
package struct RegistryEnvironment: Sendable {
    package var variables: [String: String]
    package var uid: uid_t
    package var home: String

    package init(variables: [String: String], uid: uid_t, home: String? = nil) {
        self.variables = variables
        self.uid = uid
        self.home = home ?? variables["HOME"] ?? RegistryEnvironment.passwordHome(uid) ?? "/"
    }

    /// The calling process's environment.
    package static var current: RegistryEnvironment {
        var variables: [String: String] = [:]
        for name in ["HOME", "XDG_CONFIG_HOME", "XDG_RUNTIME_DIR", "REGISTRY_AUTH_FILE", "BERTH_REGISTRIES_CONF", "DOCKER_CONFIG"] {
            if let value = getenv(name) { variables[name] = String(cString: value) }
        }
        return RegistryEnvironment(variables: variables, uid: getuid())
    }

    package subscript(name: String) -> String? {
        guard let value = variables[name], !value.isEmpty else { return nil }
        return value
    }

    /// `$XDG_CONFIG_HOME`, or `~/.config`.
    package var configHome: String { self["XDG_CONFIG_HOME"] ?? home + "/.config" }

    private static func passwordHome(_ uid: uid_t) -> String? {
        guard let entry = getpwuid(uid), let directory = entry.pointee.pw_dir else { return nil }
        return String(cString: directory)
    }
}

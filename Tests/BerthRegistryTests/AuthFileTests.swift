#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#endif
@testable import BerthRegistry
import Testing

@Suite struct AuthFileTests {
    static func auth(_ user: String, _ password: String) -> String {
        Data("\(user):\(password)".utf8).base64EncodedString()
    }

    /// A rootless environment whose every path is under `directory`.
    static func environment(_ directory: TemporaryDirectory, authFile: Bool = false) -> RegistryEnvironment {
        var variables = [
            "XDG_RUNTIME_DIR": directory.path + "/run",
            "XDG_CONFIG_HOME": directory.path + "/config",
            "HOME": directory.path + "/home",
        ]
        if authFile { variables["REGISTRY_AUTH_FILE"] = directory.path + "/explicit.json" }
        return RegistryEnvironment(variables: variables, uid: 1000)
    }

    @Test func readOrder() {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        #expect(AuthFile.readPaths(Self.environment(directory, authFile: true)) == [
            directory.path + "/explicit.json",
            directory.path + "/run/containers/auth.json",
            directory.path + "/config/containers/auth.json",
            directory.path + "/home/.docker/config.json",
        ])
        #expect(AuthFile.writePath(Self.environment(directory)) == directory.path + "/run/containers/auth.json")
        #expect(AuthFile.writePath(Self.environment(directory, authFile: true)) == directory.path + "/explicit.json")
        let root = RegistryEnvironment(variables: ["HOME": "/root"], uid: 0)
        #expect(AuthFile.readPaths(root).prefix(2) == ["/run/containers/0/auth.json", "/root/.config/containers/auth.json"])
    }

    @Test(arguments: [
        ("https://index.docker.io/v1/", "docker.io"),
        ("registry-1.docker.io", "docker.io"),
        ("http://127.0.0.1:5000/", "127.0.0.1:5000"),
        ("quay.io/ns/repo", "quay.io/ns/repo"),
        ("https://ghcr.io/v2/", "ghcr.io"),
    ])
    func keyNormalisation(key: String, normalised: String) {
        #expect(AuthFile.normaliseKey(key) == normalised)
    }

    @Test func precedenceAndSpecificity() throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let environment = Self.environment(directory)
        // docker's file: the URL key form.
        try directory.write("home/.docker/config.json", """
            {"auths": {"https://index.docker.io/v1/": {"auth": "\(Self.auth("dockeruser", "dockerpass"))"},
                       "ghcr.io": {"auth": "\(Self.auth("gh", "ghp"))"}},
             "credsStore": "desktop"}
            """)
        // the XDG config file: host and a namespace.
        try directory.write("config/containers/auth.json", """
            {"auths": {"quay.io": {"auth": "\(Self.auth("host", "h:with:colons"))"},
                       "quay.io/team": {"auth": "\(Self.auth("team", "t"))"},
                       "quay.io/team/app": {"auth": "\(Self.auth("app", "a"))"}}}
            """)
        func lookup(_ registry: String, _ repository: String?) throws -> Credentials? {
            try AuthFile.credentials(registry: registry, repository: repository, environment: environment)
        }
        #expect(try lookup("docker.io", "library/busybox") == Credentials(username: "dockeruser", password: "dockerpass"))
        #expect(try lookup("quay.io", "team/app") == Credentials(username: "app", password: "a"))
        #expect(try lookup("quay.io", "team/other") == Credentials(username: "team", password: "t"))
        #expect(try lookup("quay.io", "solo/x") == Credentials(username: "host", password: "h:with:colons"))
        #expect(try lookup("ghcr.io", nil) == Credentials(username: "gh", password: "ghp"))
        #expect(try lookup("example.com", "x") == nil)

        // The runtime file comes first: its ghcr.io entry wins; quay.io/team/app still from the config file.
        try directory.write("run/containers/auth.json", """
            {"auths": {"ghcr.io": {"auth": "\(Self.auth("runtime", "r"))"}}}
            """)
        #expect(try lookup("ghcr.io", "org/x") == Credentials(username: "runtime", password: "r"))
        // The first file with any matching key wins, even a less specific one (podman's rule).
        try directory.write("run/containers/auth.json", """
            {"auths": {"quay.io": {"auth": "\(Self.auth("runtime-quay", "r"))"}}}
            """)
        #expect(try lookup("quay.io", "team/app") == Credentials(username: "runtime-quay", password: "r"))
    }

    @Test func malformedFiles() throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let environment = Self.environment(directory)
        try directory.write("run/containers/auth.json", "{not json")
        #expect(throws: RegistryError.self) {
            try AuthFile.credentials(registry: "quay.io", environment: environment)
        }
        try directory.write("run/containers/auth.json", "{\"auths\": {\"quay.io\": {\"auth\": \"!!!\"}}}")
        #expect(throws: RegistryError.self) {
            try AuthFile.credentials(registry: "quay.io", environment: environment)
        }
        try directory.write("run/containers/auth.json", "")
        #expect(try AuthFile.credentials(registry: "quay.io", environment: environment) == nil)
    }

    @Test func loginAndLogout() throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let environment = Self.environment(directory)
        // An existing file with another entry and an extra field is kept.
        try directory.write("run/containers/auth.json", """
            {"auths": {"other.io": {"auth": "\(Self.auth("o", "p"))", "identitytoken": "x"}}, "extra": 1}
            """)
        let path = try AuthFile.login("127.0.0.1:5000", credentials: Credentials(username: "berth", password: "s3cret"), environment: environment)
        #expect(path == directory.path + "/run/containers/auth.json")
        var info = stat()
        #expect(stat(path, &info) == 0)
        #expect(info.st_mode & 0o777 == 0o600)
        #expect(try AuthFile.credentials(registry: "127.0.0.1:5000", repository: "x/y", environment: environment) == Credentials(username: "berth", password: "s3cret"))
        #expect(try AuthFile.credentials(registry: "other.io", environment: environment) == Credentials(username: "o", password: "p"))
        let text = try directory.read("run/containers/auth.json")
        #expect(text.contains("\"extra\""))
        #expect(text.contains("identitytoken"))

        #expect(try AuthFile.logout("127.0.0.1:5000", environment: environment) == true)
        #expect(try AuthFile.logout("127.0.0.1:5000", environment: environment) == false)
        #expect(try AuthFile.credentials(registry: "127.0.0.1:5000", environment: environment) == nil)
        #expect(try AuthFile.credentials(registry: "other.io", environment: environment) != nil)
    }

    @Test func loginCreatesPrivateDirectories() throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let environment = Self.environment(directory)
        let path = try AuthFile.login("docker.io", credentials: Credentials(username: "u", password: "p"), environment: environment)
        var info = stat()
        #expect(stat(directory.path + "/run/containers", &info) == 0)
        #expect(info.st_mode & 0o777 == 0o700)
        #expect(stat(path, &info) == 0)
        #expect(info.st_mode & 0o777 == 0o600)
        // docker's key form finds the same entry, and logout by it removes it.
        #expect(try AuthFile.credentials(registry: "docker.io", environment: environment)?.username == "u")
        #expect(try AuthFile.logout("https://index.docker.io/v1/", environment: environment) == true)
    }
}

@Suite struct AuthenticationChallengeTests {
    @Test(arguments: [
        ("Bearer realm=\"https://auth.docker.io/token\",service=\"registry.docker.io\",scope=\"repository:library/busybox:pull\"",
         [AuthenticationChallenge(scheme: "bearer", parameters: ["realm": "https://auth.docker.io/token", "service": "registry.docker.io", "scope": "repository:library/busybox:pull"])]),
        ("Basic realm=\"Registry Realm\"", [AuthenticationChallenge(scheme: "basic", parameters: ["realm": "Registry Realm"])]),
        ("bearer Realm=http://127.0.0.1:1/token, Service=svc", [AuthenticationChallenge(scheme: "bearer", parameters: ["realm": "http://127.0.0.1:1/token", "service": "svc"])]),
        // Commas and escaped quotes inside quoted values; two challenges in one header.
        ("Bearer realm=\"https://r/t\",scope=\"repository:a:pull,push repository:b:pull\",error=\"insufficient_scope\", Basic realm=\"say \\\"hi\\\"\"",
         [AuthenticationChallenge(scheme: "bearer", parameters: ["realm": "https://r/t", "scope": "repository:a:pull,push repository:b:pull", "error": "insufficient_scope"]),
          AuthenticationChallenge(scheme: "basic", parameters: ["realm": "say \"hi\""])]),
        ("Negotiate", [AuthenticationChallenge(scheme: "negotiate")]),
        ("", []),
    ])
    func parse(header: String, expected: [AuthenticationChallenge]) {
        #expect(AuthenticationChallenge.parse(header) == expected)
    }

    @Test func scopes() {
        let challenge = AuthenticationChallenge.parse("Bearer realm=\"r\",scope=\"repository:a:pull,push repository:b:pull\"")[0]
        #expect(challenge.scopes == ["repository:a:pull,push", "repository:b:pull"])
    }
}

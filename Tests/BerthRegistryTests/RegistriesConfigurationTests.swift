import BerthOCI
@testable import BerthRegistry
import Testing

@Suite struct TOMLParserTests {
    @Test func scalarsArraysAndTables() throws {
        let table = try TOMLParser.parse("""
            # comment
            a = "x\\ty\\u00e9\\"" # trailing comment
            b = 'C:\\path'
            c = true
            d = -1_000
            e = [ "one",  # first
                  'two',
                ]
            f = []
            g.h = 1
            i = { j = "k", l = [1, 2] }

            [t]
            "quoted key" = false
            [[arr]]
            n = 1
            [[arr]]
            n = 2
            [arr.sub]
            m = 3
            """)
        #expect(table["a"] == .string("x\ty\u{e9}\""))
        #expect(table["b"] == .string("C:\\path"))
        #expect(table["c"] == .boolean(true))
        #expect(table["d"] == .integer(-1000))
        #expect(table["e"] == .array([.string("one"), .string("two")]))
        #expect(table["f"] == .array([]))
        guard case .table(let g)? = table["g"], case .table(let i)? = table["i"], case .table(let t)? = table["t"],
              case .array(let arr)? = table["arr"], arr.count == 2, case .table(let second) = arr[1] else {
            Issue.record("bad structure: \(table)")
            return
        }
        #expect(g["h"] == .integer(1))
        #expect(i["j"] == .string("k"))
        #expect(i["l"] == .array([.integer(1), .integer(2)]))
        #expect(t["quoted key"] == .boolean(false))
        #expect(second["n"] == .integer(2))
        guard case .table(let sub)? = second["sub"] else { Issue.record("no arr.sub"); return }
        #expect(sub["m"] == .integer(3))
        #expect(table.lines["e"] == 6)
    }

    @Test(arguments: [
        ("a = 1\na = 2", 2, "duplicate key \"a\""),
        ("a = \"open", 1, "unterminated string"),
        ("a = \"\\q\"", 1, "invalid escape"),
        ("\n\na = 1.5", 3, "floating-point values are not supported"),
        ("a = 1979-05-27", 1, "dates are not supported"),
        ("a = yes", 1, "invalid value \"yes\""),
        ("a = 1 b = 2", 1, "expected the end of the line"),
        ("a = [1, 2", 1, "unterminated array"),
        ("a = [1 2]", 1, "expected \",\" or \"]\""),
        ("[t]\n[t]", 2, "table [t] is defined twice"),
        ("a = 1\n[a]", 2, "\"a\" is not a table"),
        ("[t\nx = 1", 1, "expected \"]\""),
        ("= 1", 1, "expected a key"),
        ("a 1", 1, "expected \"=\""),
        ("a = \"\"\"x\"\"\"", 1, "multi-line strings are not supported"),
        ("a = 99999999999999999999", 1, "integer out of range"),
        ("a = 01", 1, "invalid value"),
    ])
    func syntaxErrors(text: String, line: Int, message: String) {
        #expect {
            _ = try TOMLParser.parse(text)
        } throws: { error in
            guard let error = error as? TOMLError else { return false }
            return error.line == line && error.message.contains(message)
        }
    }
}

@Suite struct RegistriesConfigurationTests {
    static let sample = """
        unqualified-search-registries = ["registry.fedoraproject.org", "quay.io", "docker.io"]
        short-name-mode = "enforcing"

        [[registry]]
        prefix = "docker.io"
        location = "docker.io"
        mirror-by-digest-only = false

        [[registry.mirror]]
        location = "mirror.local:5000"
        insecure = true

        [[registry.mirror]]
        location = "mirror2.example.com/hub"

        [[registry]]
        location = "registry.fedoraproject.org"
        blocked = true

        [[registry]]
        prefix = "example.com/team"
        location = "internal.example.com:5000/mirror/team"
        insecure = true

        [[registry]]
        prefix = "*.blocked.example"
        blocked = true
        """

    @Test func parsesTheSample() throws {
        let configuration = try RegistriesConfiguration(parsing: Self.sample)
        #expect(configuration.unqualifiedSearchRegistries == ["registry.fedoraproject.org", "quay.io", "docker.io"])
        #expect(configuration.registries.count == 4)
        #expect(configuration.registries[0] == .init(prefix: "docker.io", location: "docker.io", mirrors: [
            .init(location: "mirror.local:5000", insecure: true), .init(location: "mirror2.example.com/hub"),
        ]))
        #expect(configuration.registries[1] == .init(prefix: "registry.fedoraproject.org", blocked: true))
        #expect(configuration.registries[2].location == "internal.example.com:5000/mirror/team")
        #expect(configuration.registries[3].prefix == "*.blocked.example")
    }

    @Test func emptyFileMeansDefaults() throws {
        #expect(try RegistriesConfiguration(parsing: "# nothing\n") == .default)
        #expect(RegistriesConfiguration.default.unqualifiedSearchRegistries == ["docker.io"])
    }

    @Test(arguments: [
        ("unqualified-search-registries = \"docker.io\"", "registries.conf line 1: \"unqualified-search-registries\" must be an array of strings, not a string"),
        ("unqualified-search-registries = [1]", "registries.conf line 1: \"unqualified-search-registries\" must be an array of strings"),
        ("unqualified-search-registries = [\"a/b\"]", "registries.conf line 1: \"a/b\" in unqualified-search-registries is not a registry host"),
        ("\n\n[[registry]]\nlocation = \"x.io\"\ninsecure = \"yes\"", "registries.conf line 5: \"insecure\" must be a boolean, not a string"),
        ("[[registry]]\nlocaton = \"x.io\"", "registries.conf line 2: unknown key \"locaton\" in [[registry]]"),
        ("[[registry]]\ninsecure = true", "registries.conf line 1: [[registry]] needs a location or a prefix"),
        ("[[registry]]\nlocation = \"x.io\"\n[[registry.mirror]]\ninsecure = true", "registries.conf line 3: [[registry.mirror]] needs a location"),
        ("[registries.search]\nregistries = [\"docker.io\"]", "registries.conf line 1: the version 1 format"),
        ("colour = 1", "registries.conf line 1: unknown key \"colour\""),
        ("[[registry]]\nprefix = \"a.*.io\"\nlocation = \"b.io\"", "registries.conf line 1: \"*\" is only allowed at the start"),
        ("[[registry]]\nprefix = \"*.x.io\"\nlocation = \"b.io\"", "registries.conf line 1: a [[registry]] with wildcard prefix"),
        ("[[registry]]\nlocation = \"x.io\"\n[[registry]]\nlocation = \"x.io\"", "registries.conf: prefix \"x.io\" is configured twice"),
        ("a = [\n1,\n2,\n", "registries.conf line 1: unterminated array"),
        ("x = 'unterminated\n", "registries.conf line 1: unterminated string"),
    ])
    func invalid(text: String, message: String) {
        #expect {
            _ = try RegistriesConfiguration(parsing: text)
        } throws: { error in
            guard let error = error as? RegistryError, error.code == .configuration else { return false }
            return error.message.hasPrefix(message)
        }
    }

    static func ref(_ text: String) -> ImageReference { try! ImageReference(parsing: text) }

    @Test(arguments: [
        // A configured registry: mirrors first, then the location.
        ("docker.io/library/busybox:1.36", ["mirror.local:5000/library/busybox:1.36 insecure", "mirror2.example.com/hub/library/busybox:1.36", "docker.io/library/busybox:1.36"]),
        // A prefix with a namespace, rewritten to another location.
        ("example.com/team/app@sha256:" + String(repeating: "a", count: 64), ["internal.example.com:5000/mirror/team/app@sha256:" + String(repeating: "a", count: 64) + " insecure"]),
        // example.com/other is not under the prefix.
        ("example.com/other/app:v1", ["example.com/other/app:v1"]),
        // Unconfigured registry: itself.
        ("ghcr.io/org/tool:2", ["ghcr.io/org/tool:2"]),
        // A short name: every search registry in order; the blocked one is skipped, library/ is docker.io's only.
        ("busybox", ["quay.io/busybox:latest", "mirror.local:5000/library/busybox:latest insecure", "mirror2.example.com/hub/library/busybox:latest", "docker.io/library/busybox:latest"]),
        ("ns/app:v2", ["quay.io/ns/app:v2", "mirror.local:5000/ns/app:v2 insecure", "mirror2.example.com/hub/ns/app:v2", "docker.io/ns/app:v2"]),
    ])
    func resolution(reference: String, expected: [String]) throws {
        let configuration = try RegistriesConfiguration(parsing: Self.sample)
        let endpoints = try configuration.resolve(Self.ref(reference))
        #expect(endpoints.map { $0.reference.description + ($0.insecure ? " insecure" : "") } == expected)
    }

    @Test(arguments: [
        ("registry.fedoraproject.org/fedora:40", "registry registry.fedoraproject.org is blocked in registries.conf"),
        ("a.blocked.example/x:1", "registry a.blocked.example is blocked in registries.conf"),
    ])
    func blocked(reference: String, message: String) throws {
        let configuration = try RegistriesConfiguration(parsing: Self.sample)
        #expect(throws: RegistryError(.blocked, message)) { try configuration.resolve(Self.ref(reference)) }
    }

    @Test func mirrorByDigestOnly() throws {
        let configuration = try RegistriesConfiguration(parsing: """
            [[registry]]
            location = "docker.io"
            mirror-by-digest-only = true
            [[registry.mirror]]
            location = "m.local"
            """)
        #expect(try configuration.resolve(Self.ref("docker.io/library/a:1")).map(\.reference.description) == ["docker.io/library/a:1"])
        let pinned = "docker.io/library/a@sha256:" + String(repeating: "b", count: 64)
        #expect(try configuration.resolve(Self.ref(pinned)).map(\.reference.registry) == ["m.local", "docker.io"])
    }

    @Test func noSearchRegistries() throws {
        let configuration = try RegistriesConfiguration(parsing: "unqualified-search-registries = []")
        #expect(throws: RegistryError.self) { try configuration.resolve(Self.ref("busybox")) }
        #expect(try configuration.resolve(Self.ref("docker.io/busybox")).count == 1)
    }

    @Test func loadOrder() throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let explicit = directory.path + "/explicit.conf"
        let user = directory.path + "/config/berth/registries.conf"
        try directory.write("explicit.conf", "unqualified-search-registries = [\"explicit.io\"]\n")
        try directory.write("config/berth/registries.conf", "unqualified-search-registries = [\"user.io\"]\n")
        let withVariable = RegistryEnvironment(variables: ["BERTH_REGISTRIES_CONF": explicit, "XDG_CONFIG_HOME": directory.path + "/config"], uid: 1000, home: directory.path)
        #expect(RegistriesConfiguration.path(in: withVariable) == explicit)
        #expect(try RegistriesConfiguration.load(withVariable).unqualifiedSearchRegistries == ["explicit.io"])
        let rootless = RegistryEnvironment(variables: ["XDG_CONFIG_HOME": directory.path + "/config"], uid: 1000, home: directory.path)
        #expect(RegistriesConfiguration.path(in: rootless) == user)
        // root ignores the per-user file.
        let root = RegistryEnvironment(variables: ["XDG_CONFIG_HOME": directory.path + "/config"], uid: 0, home: directory.path)
        #expect(RegistriesConfiguration.path(in: root) != user)
        let nobody = RegistryEnvironment(variables: ["XDG_CONFIG_HOME": directory.path + "/none"], uid: 1000, home: directory.path)
        if !RegistriesConfiguration.systemPathExists {
            #expect(try RegistriesConfiguration.load(nobody) == .default)
        }
    }
}

extension RegistriesConfiguration {
    static var systemPathExists: Bool { TemporaryDirectory.exists(systemPath) }
}

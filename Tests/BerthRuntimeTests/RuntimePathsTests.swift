import Testing
import BerthOS
@testable import BerthRuntime

@Suite("RuntimePaths")
struct RuntimePathsTests {
    @Test("ids of letters, digits, - _ + . are valid", arguments: [
        "a", "web-1", "A_b.c+d", "0", "...", "-", "a..b", ".hidden", String(repeating: "x", count: 1024),
        "4f9b7c3e0d2a1b6c8e5f7a9d0c1b2e3f4a5b6c7d8e9f0a1b2c3d4e5f6a7b8c9d",
    ])
    func valid(id: String) throws {
        try RuntimePaths.validate(id: id)
    }

    @Test("ids that could leave the state directory or are not names are refused", arguments: [
        "", ".", "..", "../x", "a/b", "/abs", "x/..", "a b", "tab\t", "new\nline", "ä", "a:b", "a*", "a\0b",
        "$(id)", String(repeating: "x", count: 1025),
    ])
    func invalid(id: String) {
        do {
            try RuntimePaths.validate(id: id)
            Issue.record("\"\(id)\" was accepted")
        } catch {
            #expect(error.code == .invalidArgument)
            #expect(error.message.contains("invalid container id"))
        }
    }

    @Test("--root is made absolute; the container directory is beneath it")
    func stateRoot() {
        let paths = RuntimePaths(root: "/run/custom/../berth-x/")
        #expect(paths.stateRoot == "/run/berth-x")
        #expect(paths.directory(of: "web") == "/run/berth-x/web")
        let relative = RuntimePaths(root: "state")
        #expect(relative.stateRoot == Files.absolute("state"))
        #expect(relative.stateRoot.hasPrefix("/"))
        #expect(RuntimePaths(root: "").stateRoot == RuntimePaths.defaultStateRoot)
        #expect(RuntimePaths(root: nil).stateRoot == RuntimePaths.defaultStateRoot)
    }

    @Test("the default state root is /run/berth/runtime for root, per-user otherwise")
    func defaultRoot() {
        if RuntimePaths.isRootless {
            #expect(RuntimePaths.defaultStateRoot.hasSuffix("/berth/runtime") || RuntimePaths.defaultStateRoot.hasSuffix("/runtime"))
            #expect(RuntimePaths.defaultStateRoot != "/run/berth/runtime")
        } else {
            #expect(RuntimePaths.defaultStateRoot == "/run/berth/runtime")
        }
    }
}

import Foundation
import Testing
import BerthOCI
import BerthOS
@testable import BerthRuntime

/// A lock-protected list of warnings (hooks report through a callback).
final class Warnings: @unchecked Sendable {
    private let lock = NSLock()
    private var list: [String] = []
    func add(_ message: String) { lock.lock(); list.append(message); lock.unlock() }
    var all: [String] { lock.lock(); defer { lock.unlock() }; return list }
}

@Suite("OCI hooks")
struct HookRunnerTests {
    static let state = State(id: "web-1", status: .created, pid: 4242, bundle: "/srv/bundles/web-1")

    func spec(_ kind: HookRunner.Kind, _ hooks: [Hook]) -> Spec {
        var all = Hooks()
        switch kind {
        case .prestart: all.prestart = hooks
        case .createRuntime: all.createRuntime = hooks
        case .createContainer: all.createContainer = hooks
        case .startContainer: all.startContainer = hooks
        case .poststart: all.poststart = hooks
        case .poststop: all.poststop = hooks
        }
        return Spec(hooks: all)
    }

    func shell(_ script: String, timeout: Int? = nil, env: [String]? = nil) -> Hook {
        Hook(path: "/bin/sh", args: ["sh", "-c", script], env: env, timeout: timeout)
    }

    @Test("a hook reads the container's state JSON on stdin, with its own args and env")
    func stateOnStdin() throws {
        let dir = TemporaryDirectory("hooks")
        defer { dir.remove() }
        let out = dir.subpath("out")
        let hook = shell("cat > \(out); echo \"$0 $HOOKVAR\" > \(out).args", env: ["HOOKVAR=42"])
        let warnings = Warnings()
        try HookRunner.run(.createRuntime, spec: spec(.createRuntime, [hook]), state: Self.state, warn: warnings.add)
        let received = try JSONDecoder().decode(State.self, from: Data(try Files.read(out)))
        #expect(received == Self.state)
        #expect(try Files.readString(out).contains(#""bundle":"/srv/bundles/web-1""#), "slashes are not escaped")
        #expect(try Files.readString(out + ".args") == "sh 42\n")
        #expect(warnings.all.isEmpty)
    }

    @Test("hooks of one kind run in order, and only that kind runs")
    func order() throws {
        let dir = TemporaryDirectory("hooks")
        defer { dir.remove() }
        let log = dir.subpath("log")
        var hooks = Hooks()
        hooks.prestart = [shell("echo first >> \(log)"), shell("echo second >> \(log)")]
        hooks.poststop = [shell("echo poststop >> \(log)")]
        try HookRunner.run(.prestart, spec: Spec(hooks: hooks), state: Self.state, warn: { _ in })
        #expect(try Files.readString(log) == "first\nsecond\n")
    }

    @Test("a failing hook stops the operation, except after start and after stop", arguments: [
        (HookRunner.Kind.prestart, true), (.createRuntime, true), (.createContainer, true), (.startContainer, true),
        (.poststart, false), (.poststop, false),
    ])
    func failure(kind: HookRunner.Kind, fatal: Bool) throws {
        let warnings = Warnings()
        let hooks = [shell("exit 0"), shell("echo 'cannot configure network' >&2; exit 3")]
        do {
            try HookRunner.run(kind, spec: spec(kind, hooks), state: Self.state, warn: warnings.add)
            #expect(!fatal, "a \(kind.rawValue) failure must be fatal")
            #expect(warnings.all == ["\(kind.rawValue) hook #1 (/bin/sh) failed: exit status 3: cannot configure network"])
        } catch {
            #expect(fatal)
            #expect(error.code == .failed)
            #expect(error.message == "\(kind.rawValue) hook #1 (/bin/sh) failed: exit status 3: cannot configure network")
        }
    }

    @Test("a hook that overruns its timeout is killed and reported")
    func timeout() throws {
        let start = ContinuousClock.now
        do {
            try HookRunner.run(.prestart, spec: spec(.prestart, [shell("exec sleep 3", timeout: 1)]), state: Self.state, warn: { _ in })
            Issue.record("a hook that overran its timeout succeeded")
        } catch {
            #expect(error.message == "prestart hook #0 (/bin/sh) failed: timed out after 1s")
        }
        #expect(ContinuousClock.now - start < .milliseconds(2500))
    }

    @Test("a missing hook program and a killed hook are reported")
    func missingAndKilled() {
        do {
            try HookRunner.run(.createContainer, spec: spec(.createContainer, [Hook(path: "/nonexistent/hook")]), state: Self.state, warn: { _ in })
            Issue.record("a missing hook succeeded")
        } catch {
            #expect(error.message.hasPrefix("createContainer hook #0 (/nonexistent/hook) failed: "))
            #expect(error.message.hasSuffix("no such file or directory"))
        }
        let warnings = Warnings()
        #expect(throws: Never.self) {
            try HookRunner.run(.poststop, spec: spec(.poststop, [shell("kill -KILL $$")]), state: Self.state, warn: warnings.add)
        }
        #expect(warnings.all == ["poststop hook #0 (/bin/sh) failed: killed by signal 9"])
    }

    @Test("no hooks, nothing to do")
    func none() throws {
        try HookRunner.run(.prestart, spec: Spec(), state: Self.state, warn: { Issue.record("warned: \($0)") })
    }
}

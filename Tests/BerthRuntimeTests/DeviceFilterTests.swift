#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Testing
import BerthOCI
import BerthOS
@testable import BerthRuntime

/// A named linux.resources.devices list, for parameterized tests.
struct DeviceRuleList: Sendable, CustomTestStringConvertible {
    let name: String
    let json: String
    var testDescription: String { name }

    func rules() throws -> [DeviceRule] {
        try DeviceFilter.rules(JSONValue.decode(json))
    }

    static func rule(_ allow: Bool, _ type: String, _ major: Int?, _ minor: Int?, _ access: String) -> String {
        var fields = [#""allow": \#(allow)"#, #""type": "\#(type)""#, #""access": "\#(access)""#]
        if let major { fields.append(#""major": \#(major)"#) }
        if let minor { fields.append(#""minor": \#(minor)"#) }
        return "{" + fields.joined(separator: ", ") + "}"
    }

    static func list(_ rules: [String]) -> String { "[" + rules.joined(separator: ", ") + "]" }

    static let denyAllRule = #"{"allow": false, "access": "rwm"}"#

    /// What podman writes: deny everything, then mknod of anything and the
    /// devices it creates (null, zero, full, random, urandom, tty, ptmx, pts).
    static let podman = DeviceRuleList(name: "podman's defaults", json: list([
        denyAllRule,
        rule(true, "c", nil, nil, "m"), rule(true, "b", nil, nil, "m"),
        rule(true, "c", 1, 3, "rwm"), rule(true, "c", 1, 8, "rwm"), rule(true, "c", 1, 7, "rwm"),
        rule(true, "c", 5, 0, "rwm"), rule(true, "c", 1, 5, "rwm"), rule(true, "c", 1, 9, "rwm"),
        rule(true, "c", 136, nil, "rwm"), rule(true, "c", 5, 2, "rwm"),
    ]))

    /// containerd's default spec with WithDefaultUnixDevices.
    static let containerd = DeviceRuleList(name: "containerd's defaults", json: list([
        denyAllRule,
        rule(true, "c", 1, 3, "rwm"), rule(true, "c", 1, 8, "rwm"), rule(true, "c", 1, 7, "rwm"),
        rule(true, "c", 5, 0, "rwm"), rule(true, "c", 1, 5, "rwm"), rule(true, "c", 1, 9, "rwm"),
        rule(true, "c", 5, 1, "rwm"), rule(true, "c", 136, nil, "rwm"), rule(true, "c", 5, 2, "rwm"),
        rule(true, "c", 10, 200, "rwm"),
    ]))

    static let all: [DeviceRuleList] = [
        podman, containerd,
        DeviceRuleList(name: "deny all", json: list([denyAllRule])),
        DeviceRuleList(name: "allow all", json: #"[{"allow": true}]"#),
        DeviceRuleList(name: "no rules", json: "[]"),
        DeviceRuleList(name: "allow list without a leading deny-all", json: list([rule(true, "c", 1, 3, "rwm")])),
        DeviceRuleList(name: "wildcards", json: list([
            denyAllRule, rule(true, "c", nil, 3, "rw"), rule(true, "c", 7, nil, "r"), rule(true, "b", nil, nil, "m"),
            rule(true, "b", 8, 0, "rw"),
        ])),
        DeviceRuleList(name: "partial access split over rules", json: list([
            denyAllRule, rule(true, "c", 1, 3, "r"), rule(true, "c", 1, nil, "w"), rule(true, "c", 1, 3, "m"),
            rule(false, "c", 1, 3, "m"), rule(true, "b", 7, 1, "m"),
        ])),
        DeviceRuleList(name: "deny list after allow-all", json: list([
            #"{"allow": true, "access": "rwm"}"#, rule(false, "c", 1, 3, "w"), rule(false, "b", nil, nil, "m"),
            rule(false, "c", 10, nil, "rwm"), rule(false, "c", nil, 5, "r"), rule(true, "c", 1, 3, "w"),
        ])),
        DeviceRuleList(name: "resets in the middle", json: list([
            rule(true, "c", 1, 3, "rwm"), #"{"allow": true}"#, rule(false, "c", 1, 3, "rwm"),
            #"{"allow": false, "type": "a", "major": 4, "access": "r"}"#, rule(true, "c", 1, 5, "rw"),
            rule(true, "c", 1, 5, "m"), rule(false, "c", 1, 5, "w"),
        ])),
        DeviceRuleList(name: "numbers beyond 31 bits", json: list([
            denyAllRule, rule(true, "c", 2_147_483_648, 4_294_967_295, "rw"), rule(true, "b", 4_294_967_295, nil, "m"),
            rule(true, "c", 2_147_483_647, 2_147_483_649, "rwm"),
        ])),
        DeviceRuleList(name: "deny list beyond 31 bits", json: list([
            #"{"allow": true}"#, rule(false, "c", 3_000_000_000, nil, "r"), rule(false, "b", 0, 4_000_000_000, "rwm"),
        ])),
    ]
}

extension JSONValue {
    static func decode(_ json: String) throws -> JSONValue {
        try JSONDecoder().decode(JSONValue.self, from: Data(json.utf8))
    }
}

/// A cgroup device request: what the kernel puts in struct bpf_cgroup_dev_ctx.
struct DeviceRequest: CustomStringConvertible {
    var type: UInt8 // "b" or "c"
    var major: UInt32
    var minor: UInt32
    var access: UInt8 // BPF_DEVCG_ACC_*: m = 1, r = 2, w = 4

    var description: String {
        let letters = (access & 2 != 0 ? "r" : "") + (access & 4 != 0 ? "w" : "") + (access & 1 != 0 ? "m" : "")
        return "\(Character(Unicode.Scalar(type))) \(major):\(minor) \(letters.isEmpty ? "-" : letters)"
    }

    /// Every type and access combination on the numbers the rules name,
    /// their neighbours and a few far-off ones.
    static func grid(for rules: [DeviceRule]) -> [DeviceRequest] {
        var majors: Set<UInt32> = [0, 1, 5, 136, 4095, 2_147_483_647, 2_147_483_648, 4_294_967_295]
        var minors: Set<UInt32> = [0, 3, 1_048_575, 2_147_483_648, 4_294_967_295]
        for rule in rules {
            for (number, into) in [(rule.major, 0), (rule.minor, 1)] {
                guard let number else { continue }
                for near in [number - 1, number, number + 1] where near >= 0 && near <= Int64(UInt32.max) {
                    if into == 0 { majors.insert(UInt32(near)) } else { minors.insert(UInt32(near)) }
                }
            }
        }
        var requests: [DeviceRequest] = []
        for type in [UInt8(ascii: "b"), UInt8(ascii: "c")] {
            for major in majors.sorted() {
                for minor in minors.sorted() {
                    for access in UInt8(0)...7 { requests.append(DeviceRequest(type: type, major: major, minor: minor, access: access)) }
                }
            }
        }
        return requests
    }
}

/// What a rule list decides, computed per request and without DeviceFilter:
/// walk the rules as writes to a cgroup v1 devices controller, keeping only
/// the exceptions whose pattern can match this device (exact, *:minor,
/// major:* and *:*), then decide as security/device_cgroup.c does.
func referenceDecision(_ rules: [DeviceRule], _ request: DeviceRequest) -> Bool {
    if rules.isEmpty { return true } // berth: no list, no policy
    func bits(_ access: String) -> UInt8 {
        if access.isEmpty { return 7 }
        return (access.contains("m") ? 1 : 0) | (access.contains("r") ? 2 : 0) | (access.contains("w") ? 4 : 0)
    }
    var allowByDefault = false // runc starts from deny-all
    var held: [String: UInt8] = [:]
    for rule in rules {
        if rule.type == UInt8(ascii: "a") {
            allowByDefault = rule.allow
            held = [:]
            continue
        }
        guard rule.type == request.type,
              rule.major == nil || rule.major == Int64(request.major),
              rule.minor == nil || rule.minor == Int64(request.minor) else { continue }
        let key = "\(rule.major ?? -1):\(rule.minor ?? -1)"
        if rule.allow == allowByDefault {
            held[key] = (held[key] ?? 0) & ~bits(rule.access) // an exception takes letters away
        } else {
            held[key, default: 0] |= bits(rule.access)
        }
    }
    let exceptions = held.values.filter { $0 != 0 } // v1 drops an exception left with no letters
    if allowByDefault {
        return !exceptions.contains { $0 & request.access != 0 } // match_exception_partial
    }
    return exceptions.contains { $0 & request.access == request.access } // match_exception
}

/// An interpreter for the eBPF the device filter emits, with the checks the
/// verifier would make on the way (initialised registers, context reads,
/// forward jumps in bounds, r0 set at exit). Returns r0, or nil after
/// recording an issue.
enum DeviceProgramInterpreter {
    static func run(_ program: [UInt64], _ request: DeviceRequest) -> UInt64? {
        let type: UInt32 = request.type == UInt8(ascii: "b") ? 1 : 2
        let context: [UInt32] = [type | UInt32(request.access) << 16, request.major, request.minor]
        var registers = [UInt64](repeating: 0, count: 11)
        var initialised = [Bool](repeating: false, count: 11)
        initialised[1] = true
        initialised[10] = true
        var contextRegister: Int? = 1
        var pc = 0
        func fail(_ problem: String) -> UInt64? {
            Issue.record("instruction \(pc) (\(String(program[pc], radix: 16))): \(problem)")
            return nil
        }
        for _ in 0..<100_000 {
            guard pc >= 0 && pc < program.count else {
                Issue.record("fell off the program at \(pc)")
                return nil
            }
            let word = program[pc]
            let code = UInt8(word & 0xff)
            let destination = Int((word >> 8) & 0xf), source = Int((word >> 12) & 0xf)
            let offset = Int(Int16(bitPattern: UInt16((word >> 16) & 0xffff)))
            let immediate = Int32(bitPattern: UInt32(truncatingIfNeeded: word >> 32))
            let immediate64 = UInt64(bitPattern: Int64(immediate)) // sign-extended, as the kernel does
            guard destination <= 10, source <= 10 else { return fail("no such register") }
            func write(_ value: UInt32) {
                registers[destination] = UInt64(value) // 32-bit operations zero the upper half
                initialised[destination] = true
                if contextRegister == destination { contextRegister = nil }
            }
            var low: UInt32 { UInt32(truncatingIfNeeded: registers[destination]) }
            if code != 0xb4 && code != 0x61 && code != 0x95 && code != 0xbc && !initialised[destination] {
                return fail("r\(destination) read before it is set")
            }
            if destination == 10 && code != 0x95 && code & 0x07 != 0x05 { return fail("r10 is read-only") }
            var jump = false
            switch code {
            case 0x61: // ldxw
                guard source == contextRegister else { return fail("load from r\(source), which is not the context") }
                guard [0, 4, 8].contains(offset) else { return fail("context offset \(offset)") }
                write(context[offset / 4])
            case 0x54: write(low & UInt32(bitPattern: immediate))
            case 0x74:
                guard (0..<32).contains(immediate) else { return fail("shift by \(immediate)") }
                write(low >> UInt32(immediate))
            case 0xa4: write(low ^ UInt32(bitPattern: immediate))
            case 0xb4: write(UInt32(bitPattern: immediate))
            case 0xbc:
                guard initialised[source], source != contextRegister else { return fail("r\(source) cannot be copied") }
                write(UInt32(truncatingIfNeeded: registers[source]))
            case 0x15: jump = registers[destination] == immediate64
            case 0x55: jump = registers[destination] != immediate64
            case 0x5d:
                guard initialised[source], source != contextRegister else { return fail("r\(source) cannot be compared") }
                jump = registers[destination] != registers[source]
            case 0x95:
                guard initialised[0] else { return fail("exit without r0") }
                return registers[0]
            default: return fail("opcode the generator should not emit")
            }
            if code & 0x07 == 0x05 { // a conditional jump
                guard offset >= 0, pc + 1 + offset < program.count else { return fail("jump to \(pc + 1 + offset)") }
                if jump { pc += offset }
            }
            pc += 1
        }
        Issue.record("the program did not finish")
        return nil
    }
}

/// No effective capability (CapEff in /proc/self/status is all zeros).
func hasNoCapabilities() -> Bool {
    let status = (try? String(contentsOfFile: "/proc/self/status", encoding: .utf8)) ?? ""
    return status.split(separator: "\n").contains { $0.hasPrefix("CapEff:") && $0.hasSuffix("0000000000000000") }
}

/// SplitMix64: the same random rule lists on every run.
struct SeededGenerator: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9e37_79b9_7f4a_7c15
        var z = state
        z = (z ^ (z >> 30)) &* 0xbf58_476d_1ce4_e5b9
        z = (z ^ (z >> 27)) &* 0x94d0_49bb_1331_11eb
        return z ^ (z >> 31)
    }
}

@Suite("DeviceFilter: linux.resources.devices as a cgroup v2 device program")
struct DeviceFilterTests {
    static func expectRefused(_ json: String, _ message: String, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let devices = try JSONValue.decode(json)
        do {
            let rules = try DeviceFilter.rules(devices)
            Issue.record("accepted \(json) as \(rules)", sourceLocation: sourceLocation)
        } catch {
            #expect(error.code == .invalidArgument, sourceLocation: sourceLocation)
            #expect(error.message.hasPrefix(message), "\(error.message)", sourceLocation: sourceLocation)
            #expect(!error.message.contains("\n"), sourceLocation: sourceLocation)
        }
    }

    // MARK: Parsing

    @Test("podman's default list parses rule by rule")
    func podmanList() throws {
        let rules = try DeviceRuleList.podman.rules()
        let a = UInt8(ascii: "a"), b = UInt8(ascii: "b"), c = UInt8(ascii: "c")
        #expect(rules.count == 11)
        #expect(rules.first == DeviceRule(allow: false, type: a, major: nil, minor: nil, access: "rwm"))
        #expect(rules[1] == DeviceRule(allow: true, type: c, major: nil, minor: nil, access: "m"))
        #expect(rules[2] == DeviceRule(allow: true, type: b, major: nil, minor: nil, access: "m"))
        #expect(rules[3] == DeviceRule(allow: true, type: c, major: 1, minor: 3, access: "rwm"))
        #expect(rules[9] == DeviceRule(allow: true, type: c, major: 136, minor: nil, access: "rwm"))
    }

    @Test("absent fields take runc's defaults; access is normalised", arguments: [
        ("{}", DeviceRule(allow: false, type: UInt8(ascii: "a"), major: nil, minor: nil, access: "rwm")),
        (#"{"allow": true, "type": "", "access": ""}"#, DeviceRule(allow: true, type: UInt8(ascii: "a"), major: nil, minor: nil, access: "rwm")),
        (#"{"allow": true, "type": "c", "major": -1, "minor": 0, "access": "wr"}"#,
         DeviceRule(allow: true, type: UInt8(ascii: "c"), major: nil, minor: 0, access: "rw")),
        (#"{"allow": null, "type": "b", "major": 4294967295, "minor": null, "access": "mmr"}"#,
         DeviceRule(allow: false, type: UInt8(ascii: "b"), major: 4_294_967_295, minor: nil, access: "rm")),
    ])
    func defaults(json: String, expected: DeviceRule) throws {
        #expect(try DeviceFilter.rules(JSONValue.decode("[\(json)]")) == [expected])
    }

    @Test("no list is no rules")
    func absent() throws {
        #expect(try DeviceFilter.rules(nil).isEmpty)
        #expect(try DeviceFilter.rules(.null).isEmpty)
        #expect(try DeviceFilter.rules(.array([])).isEmpty)
    }

    @Test("bad entries are refused with their index, on one line", arguments: [
        (#"{"devices": []}"#, "linux.resources.devices: not an array"),
        (#"[{"allow": false}, 1]"#, "linux.resources.devices[1]: not an object"),
        (#"[{"allow": "yes"}]"#, "linux.resources.devices[0]: allow is not true or false"),
        (#"[{"allow": true}, {"type": "u"}]"#, #"linux.resources.devices[1]: unknown type "u" (a, b or c)"#),
        (#"[{"type": "p", "access": "rwm"}]"#, #"linux.resources.devices[0]: unknown type "p""#),
        (#"[{"type": 99}]"#, "linux.resources.devices[0]: type is not a string"),
        (#"[{"type": "c", "major": -2}]"#, "linux.resources.devices[0]: major -2 is not a device number (0 to 4294967295, or -1 for any)"),
        (#"[{"type": "c", "minor": 4294967296}]"#, "linux.resources.devices[0]: minor 4294967296 is not a device number"),
        (#"[{"type": "c", "minor": 18446744073709551615}]"#, "linux.resources.devices[0]: minor 18446744073709551615 is not a device number"),
        (#"[{"type": "c", "major": "1"}]"#, "linux.resources.devices[0]: major is not an integer"),
        (#"[{"type": "c", "major": 1.5}]"#, "linux.resources.devices[0]: major is not an integer"),
        (#"[{"allow": false}, {"allow": true, "type": "c", "access": "rwx"}]"#,
         #"linux.resources.devices[1]: access "rwx" has a letter other than r, w and m"#),
        (#"[{"access": 7}]"#, "linux.resources.devices[0]: access is not a string"),
    ])
    func refused(json: String, message: String) throws {
        try Self.expectRefused(json, message)
    }

    @Test("a hole in a wider rule is refused, as runc does (cgroup v1 would ignore it)")
    func holes() throws {
        try Self.expectRefused(DeviceRuleList.list([
            #"{"allow": true}"#, DeviceRuleList.rule(false, "c", nil, nil, "m"), DeviceRuleList.rule(true, "c", 1, 3, "rm"),
        ]), "linux.resources.devices[2]: cannot allow c 1:3 rm inside an earlier rule that denies c *:* m")
        try Self.expectRefused(DeviceRuleList.list([
            DeviceRuleList.denyAllRule, DeviceRuleList.rule(true, "b", 8, nil, "rw"), DeviceRuleList.rule(false, "b", 8, 1, "w"),
        ]), "linux.resources.devices[2]: cannot deny b 8:1 w inside an earlier rule that allows b 8:* rw")
        // Removing letters the wider rule does not hold, or the wider rule itself, is fine.
        _ = try DeviceFilter.rules(JSONValue.decode(DeviceRuleList.list([
            DeviceRuleList.denyAllRule, DeviceRuleList.rule(true, "c", nil, nil, "m"), DeviceRuleList.rule(false, "c", 1, 3, "rw"),
            DeviceRuleList.rule(false, "c", nil, nil, "m"),
        ])))
    }

    // MARK: Semantics

    @Test("allowsEverything only when nothing is restricted", arguments: [
        ("[]", true), (#"[{"allow": true}]"#, true), (#"[{"allow": false}, {"allow": true, "type": "a"}]"#, true),
        (#"[{"allow": true}, {"allow": false, "type": "c", "major": 1, "minor": 3, "access": "r"}, {"allow": true, "type": "c", "major": 1, "minor": 3, "access": "r"}]"#, true),
        (#"[{"allow": false}]"#, false), (#"[{"allow": true, "type": "c", "major": 1, "minor": 3}]"#, false),
        (#"[{"allow": true}, {"allow": false, "type": "b", "access": "m"}]"#, false),
    ])
    func allowsEverything(json: String, expected: Bool) throws {
        #expect(DeviceFilter.allowsEverything(try DeviceFilter.rules(JSONValue.decode(json))) == expected)
    }

    static func decide(_ json: String, _ request: DeviceRequest) throws -> Bool? {
        let rules = try DeviceFilter.rules(JSONValue.decode(json))
        return DeviceProgramInterpreter.run(DeviceFilter.program(rules), request).map { $0 == 1 }
    }

    @Test("a later wildcard does not undo an earlier exact rule: cgroup v1 exceptions, not last-match-wins")
    func exceptionsNotLastMatch() throws {
        let json = DeviceRuleList.list([DeviceRuleList.denyAllRule, DeviceRuleList.rule(true, "c", 1, 3, "rwm"),
                                        DeviceRuleList.rule(false, "c", nil, nil, "rwm")])
        #expect(try Self.decide(json, DeviceRequest(type: UInt8(ascii: "c"), major: 1, minor: 3, access: 2)) == true)
        #expect(try Self.decide(json, DeviceRequest(type: UInt8(ascii: "c"), major: 1, minor: 5, access: 2)) == false)
    }

    @Test("with allow by default, a deny of one letter refuses any request asking for it (O_RDWR too)")
    func denyAnyLetter() throws {
        let json = DeviceRuleList.list([#"{"allow": true}"#, DeviceRuleList.rule(false, "c", 1, 3, "w")])
        let device = DeviceRequest(type: UInt8(ascii: "c"), major: 1, minor: 3, access: 0)
        var request = device
        for (access, allowed) in [(UInt8(2), true), (4, false), (6, false), (1, true), (0, true)] {
            request.access = access
            #expect(try Self.decide(json, request) == allowed, "\(request)")
        }
    }

    @Test("with deny by default, one exception must cover every letter asked for")
    func allowAllLetters() throws {
        let json = DeviceRuleList.list([DeviceRuleList.denyAllRule, DeviceRuleList.rule(true, "c", 1, 3, "r"),
                                        DeviceRuleList.rule(true, "c", 1, nil, "w")])
        var request = DeviceRequest(type: UInt8(ascii: "c"), major: 1, minor: 3, access: 2)
        #expect(try Self.decide(json, request) == true)
        request.access = 4
        #expect(try Self.decide(json, request) == true)
        request.access = 6 // read and write: no single exception has both
        #expect(try Self.decide(json, request) == false)
        request.access = 0 // access(F_OK): any matching exception
        #expect(try Self.decide(json, request) == true)
        request.minor = 4
        #expect(try Self.decide(json, request) == true)
        request.major = 2
        #expect(try Self.decide(json, request) == false)
    }

    @Test("the program decides like the reference on every request", arguments: DeviceRuleList.all)
    func programMatchesReference(list: DeviceRuleList) throws {
        let rules = try list.rules()
        let program = DeviceFilter.program(rules)
        var disagreements = 0
        for request in DeviceRequest.grid(for: rules) {
            guard let result = DeviceProgramInterpreter.run(program, request) else { return }
            let expected = referenceDecision(rules, request)
            if (result == 1) != expected || result > 1 {
                disagreements += 1
                if disagreements <= 5 { Issue.record("\(list.name): \(request) gave \(result), expected \(expected ? 1 : 0)") }
            }
        }
        #expect(disagreements == 0)
        #expect(DeviceFilter.allowsEverything(rules) == DeviceRequest.grid(for: rules).allSatisfy { referenceDecision(rules, $0) })
    }

    @Test("random rule lists: the program decides like the reference")
    func randomLists() throws {
        var generator = SeededGenerator(state: 0x6265_7274_6864_6576)
        let types = ["a", "b", "c", "c", "b", "c"]
        let majors: [Int?] = [nil, 1, 1, 5, 3_000_000_000]
        let minors: [Int?] = [nil, 3, 3, 7]
        let accesses = ["r", "w", "m", "rw", "rm", "wm", "rwm"]
        var tested = 0, refused = 0
        for _ in 0..<400 {
            let count = Int.random(in: 1...7, using: &generator)
            let entries = (0..<count).map { _ in
                DeviceRuleList.rule(Bool.random(using: &generator), types.randomElement(using: &generator) ?? "a",
                                    majors.randomElement(using: &generator) ?? nil, minors.randomElement(using: &generator) ?? nil,
                                    accesses.randomElement(using: &generator) ?? "rwm")
            }
            let json = DeviceRuleList.list(entries)
            let rules: [DeviceRule]
            do {
                rules = try DeviceFilter.rules(JSONValue.decode(json))
            } catch let error as RuntimeError {
                #expect(error.message.contains("punch a hole"), "\(error.message)")
                refused += 1
                continue
            }
            tested += 1
            let program = DeviceFilter.program(rules)
            for type in [UInt8(ascii: "b"), UInt8(ascii: "c")] {
                for major: UInt32 in [0, 1, 5, 3_000_000_000] {
                    for minor: UInt32 in [3, 7, 8] {
                        for access in UInt8(0)...7 {
                            let request = DeviceRequest(type: type, major: major, minor: minor, access: access)
                            guard let result = DeviceProgramInterpreter.run(program, request) else { return }
                            #expect((result == 1) == referenceDecision(rules, request), "\(json): \(request)")
                        }
                    }
                }
            }
        }
        #expect(tested > 200)
        #expect(refused > 0)
    }

    @Test("no rules and allow-all compile to a two-instruction allow; deny-all to a deny")
    func trivialPrograms() throws {
        let allowAll: [UInt64] = [0x0000_0001_0000_00b4, 0x0000_0000_0000_0095] // w0 = 1; exit
        #expect(DeviceFilter.program([]) == allowAll)
        #expect(DeviceFilter.program(try DeviceFilter.rules(JSONValue.decode(#"[{"allow": true}]"#))) == allowAll)
        #expect(DeviceFilter.program(try DeviceFilter.rules(JSONValue.decode(#"[{"allow": false}]"#))) == [0xb4, 0x95])
    }

    @Test("rules built by hand with numbers rules(_:) refuses match no device")
    func outOfRangeNumbers() {
        let c = UInt8(ascii: "c")
        for number: Int64 in [-2, -5, Int64(UInt32.max) + 1] {
            let rules = [DeviceRule(allow: false, type: UInt8(ascii: "a"), major: nil, minor: nil, access: "rwm"),
                         DeviceRule(allow: true, type: c, major: number, minor: nil, access: "rwm"),
                         DeviceRule(allow: true, type: c, major: 1, minor: number, access: "rwm")]
            let program = DeviceFilter.program(rules)
            for major: UInt32 in [0, 1, 2, UInt32.max] {
                for minor: UInt32 in [0, 3, UInt32.max] {
                    let request = DeviceRequest(type: c, major: major, minor: minor, access: 2)
                    #expect(DeviceProgramInterpreter.run(program, request) == 0, "\(number): \(request)")
                }
            }
        }
    }

    // MARK: The kernel

    @Test("the kernel's verifier accepts the generated programs",
          .enabled(if: geteuid() == 0, "BPF_PROG_LOAD of a cgroup device program needs root (CAP_SYS_ADMIN or CAP_BPF)"))
    func kernelAccepts() throws {
        for list in DeviceRuleList.all {
            let program = try DeviceFilter.load(DeviceFilter.program(try list.rules()))
            #expect(program.rawValue >= 0, "\(list.name)")
            program.close()
        }
    }

    @Test("a program the verifier refuses is reported with the verifier's reason",
          .enabled(if: geteuid() == 0, "BPF_PROG_LOAD of a cgroup device program needs root (CAP_SYS_ADMIN or CAP_BPF)"))
    func verifierReason() throws {
        // r2 = *(u32 *)(r1 + 12): past the end of struct bpf_cgroup_dev_ctx.
        let bad = [BPFInstruction.loadWord(2, context: 1, offset: 12), .mov32(0, 1), .exit].map(\.encoded)
        do {
            let program = try DeviceFilter.load(bad)
            program.close()
            Issue.record("the verifier accepted a read past the context")
        } catch {
            #expect(error.message.hasPrefix("linux.resources.devices: load the device program (BPF_PROG_LOAD): permission denied (verifier: "),
                    "\(error.message)")
            #expect(error.message.contains("off=12"), "\(error.message)")
        }
    }

    @Test("without privileges loading fails as permission denied",
          .enabled(if: geteuid() != 0 && hasNoCapabilities(), "running as root or with capabilities: loading is allowed"))
    func unprivileged() {
        do {
            let program = try DeviceFilter.load(DeviceFilter.program([]))
            program.close()
            Issue.record("loaded a cgroup device program without privileges")
        } catch {
            #expect(error.code == .permissionDenied, "\(error.message)")
        }
    }
}

import Foundation
import Testing
import BerthOCI

@Suite("JSONValue")
struct JSONValueTests {
    @Test("isEmpty: null, false, 0, \"\", and containers of only those carry nothing", arguments: [
        (JSONValue.null, true), (.bool(false), true), (.bool(true), false),
        (.number(0), true), (.number(-0.0), true), (.number(-1), false), (.number(0.5), false), (.number(100), false),
        (.string(""), true), (.string("0-1"), false),
        (.array([]), true), (.array([.null, .number(0), .bool(false)]), true), (.array([.number(1)]), false),
        (.object([:]), true), (.object(["limit": .number(0)]), true), (.object(["limit": .number(100)]), false),
        (.object(["a": .object(["b": .array([.object(["c": .null])])])]), true),
        (.object(["a": .object(["b": .array([.object(["c": .string("x")])])])]), false),
    ])
    func isEmpty(value: JSONValue, empty: Bool) {
        #expect(value.isEmpty == empty)
    }

    @Test("decodes each JSON type to the matching case", arguments: [
        ("null", JSONValue.null), ("true", .bool(true)), ("false", .bool(false)),
        ("0", .number(0)), ("1", .number(1)), ("-1", .number(-1)), ("2.5", .number(2.5)),
        (#""1""#, .string("1")), (#""true""#, .string("true")), ("[]", .array([])), ("{}", .object([:])),
        (#"[1, "a", null]"#, .array([.number(1), .string("a"), .null])),
        (#"{"k": {"n": false}}"#, .object(["k": .object(["n": .bool(false)])])),
    ])
    func decodes(json: String, value: JSONValue) throws {
        #expect(try JSONDecoder().decode(JSONValue.self, from: Data(json.utf8)) == value)
    }

    @Test("encodes whole numbers as integers and fractions as decimals", arguments: [
        (JSONValue.number(100), "100"), (.number(-1), "-1"), (.number(0), "0"), (.number(2.5), "2.5"),
        (.number(536870912), "536870912"), (.bool(true), "true"), (.null, "null"), (.string("x"), #""x""#),
    ])
    func encodes(value: JSONValue, json: String) throws {
        let text = String(decoding: try JSONEncoder().encode(value), as: UTF8.self)
        #expect(text == json)
    }

    @Test("subscript reads object members, nil otherwise")
    func subscripts() {
        let value = JSONValue.object(["pids": .object(["limit": .number(5)])])
        #expect(value["pids"]?["limit"] == .number(5))
        #expect(value["memory"] == nil)
        #expect(JSONValue.array([.number(1)])["pids"] == nil)
        #expect(JSONValue.string("pids")["pids"] == nil)
    }

    /// Integers above 2^53 (seccomp argument values and masks, memory limits
    /// like 9223372036854775807) must not pass through a Double.
    @Test("large 64-bit integers survive decoding and re-encoding", arguments: [
        "9007199254740993", "9223372036854775807", "18446744073709551615",
    ])
    func largeIntegers(json: String) throws {
        let value = try JSONDecoder().decode(JSONValue.self, from: Data(json.utf8))
        let text = String(decoding: try JSONEncoder().encode(value), as: UTF8.self)
        #expect(text == json)
    }
}

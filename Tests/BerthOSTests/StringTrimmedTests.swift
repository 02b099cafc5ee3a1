import Testing
import BerthOS

@Suite("String.trimmed")
struct StringTrimmedTests {
    @Test("strips leading and trailing spaces, tabs and newlines only", arguments: [
        ("", ""), ("   ", ""), ("\n", ""), ("x", "x"), ("  x  ", "x"), ("\tx\n", "x"),
        ("a b", "a b"), ("  a \t b \n", "a \t b"), ("\n\n1024\n", "1024"), ("\r x \r", "x"),
        ("0-3\n", "0-3"), ("\u{00A0}x", "\u{00A0}x"),
    ])
    func trimmed(input: String, expected: String) {
        #expect(input.trimmed == expected)
    }

    @Test("strips Windows line endings", arguments: ["abc\r\n", "\r\nabc", "\r\n\r\nabc\r\n"])
    func crlf(input: String) {
        #expect(input.trimmed == "abc")
    }
}

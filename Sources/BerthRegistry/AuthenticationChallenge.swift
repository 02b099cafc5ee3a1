/// One challenge of a `WWW-Authenticate` header (RFC 7235):
/// `Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull"`.
package struct AuthenticationChallenge: Equatable, Sendable {
    /// Lowercased: `bearer`, `basic`.
    package var scheme: String
    /// Parameter names lowercased; values unquoted.
    package var parameters: [String: String]

    package init(scheme: String, parameters: [String: String] = [:]) {
        self.scheme = scheme.lowercased()
        self.parameters = parameters
    }

    package var realm: String? { parameters["realm"] }
    package var service: String? { parameters["service"] }
    /// The scopes the registry asked for (space-separated in one parameter).
    package var scopes: [String] { (parameters["scope"] ?? "").split(separator: " ").map(String.init) }

    /// Parses a header value that may hold several challenges
    /// (`Basic realm="x", Bearer realm="y"`); quoted values may contain
    /// commas and backslash escapes. Malformed parts are skipped.
    package static func parse(_ header: String) -> [AuthenticationChallenge] {
        var scanner = Scanner(Array(header.utf8))
        var challenges: [AuthenticationChallenge] = []
        while true {
            scanner.skip { $0 == 32 || $0 == 9 || $0 == 44 }
            guard let scheme = scanner.token(), !scheme.isEmpty else { break }
            var challenge = AuthenticationChallenge(scheme: scheme)
            // Parameters: name=value pairs separated by commas, until a
            // token that is not followed by '=' (the next scheme).
            while true {
                let mark = scanner.position
                scanner.skip { $0 == 32 || $0 == 9 || $0 == 44 }
                guard let name = scanner.token(), !name.isEmpty else { break }
                scanner.skip { $0 == 32 || $0 == 9 }
                guard scanner.peek() == UInt8(ascii: "=") else {
                    scanner.position = mark // the next challenge's scheme
                    break
                }
                scanner.position += 1
                scanner.skip { $0 == 32 || $0 == 9 }
                let value: String
                if scanner.peek() == UInt8(ascii: "\"") {
                    value = scanner.quoted()
                } else {
                    // token68 or token; allow trailing '=' padding.
                    value = scanner.take { $0 != 44 && $0 != 32 && $0 != 9 }
                }
                challenge.parameters[name.lowercased()] = value
            }
            challenges.append(challenge)
        }
        return challenges
    }

    private struct Scanner {
        let bytes: [UInt8]
        var position = 0

        init(_ bytes: [UInt8]) { self.bytes = bytes }

        func peek() -> UInt8? { position < bytes.count ? bytes[position] : nil }

        mutating func skip(_ predicate: (UInt8) -> Bool) {
            while let b = peek(), predicate(b) { position += 1 }
        }

        mutating func take(_ predicate: (UInt8) -> Bool) -> String {
            let start = position
            skip(predicate)
            return String(decoding: bytes[start..<position], as: UTF8.self)
        }

        /// An RFC 7230 token (the characters allowed in a scheme or parameter name).
        mutating func token() -> String? {
            let value = take { b in
                (b >= 48 && b <= 57) || (b >= 65 && b <= 90) || (b >= 97 && b <= 122)
                    || "!#$%&'*+-.^_`|~".utf8.contains(b)
            }
            return value.isEmpty ? nil : value
        }

        mutating func quoted() -> String {
            position += 1
            var output: [UInt8] = []
            while let b = peek() {
                position += 1
                if b == UInt8(ascii: "\"") { break }
                if b == UInt8(ascii: "\\"), let next = peek() {
                    position += 1
                    output.append(next)
                } else {
                    output.append(b)
                }
            }
            return String(decoding: output, as: UTF8.self)
        }
    }
}

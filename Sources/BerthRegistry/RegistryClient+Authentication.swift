#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import AsyncHTTPClient
import NIOCore
import NIOHTTP1
import NIOSSL

extension RegistryClient {
    /// An Authorization header value and whether it carries the user's credentials.
    struct Authorization: Sendable {
        var header: String
        var withCredentials: Bool
    }

    /// The token scope for pulling from (or pushing to) a repository.
    static func scope(_ repository: String?, push: Bool = false) -> [String] {
        guard let repository else { return [] }
        return ["repository:\(repository):" + (push ? "pull,push" : "pull")]
    }

    func credentials(for target: Target) -> Credentials? {
        options.credentials(target.registry, target.repository)
    }

    private func tokenKey(_ target: Target, scopes: [String]) -> String {
        ([target.apiHost] + scopes.sorted()).joined(separator: " ")
    }

    /// What to send before the registry has asked: a cached token for these
    /// scopes, or, when the host challenged us before, a fresh token / basic
    /// credentials (saving the round trip that collects the 401).
    func cachedAuthorization(_ target: Target, scopes: [String]) async throws -> Authorization? {
        let now = ContinuousClock.now
        let key = tokenKey(target, scopes: scopes)
        let (token, challenge) = state.withLock { state in
            (state.tokens[key].flatMap { $0.expires > now ? $0 : nil }, state.challenges[target.apiHost])
        }
        if let token { return Authorization(header: "Bearer \(token.value)", withCredentials: token.withCredentials) }
        guard var challenge else { return nil }
        challenge.parameters["scope"] = nil // that challenge's scopes were for another request
        return try await authorize(target, challenge: challenge, scopes: scopes, credentials: credentials(for: target))
    }

    /// Answers a challenge: basic credentials, or a bearer token from the
    /// challenge's realm. Nil when a basic challenge finds no credentials.
    func authorize(_ target: Target, challenge: AuthenticationChallenge, scopes: [String],
                   credentials: Credentials?) async throws -> Authorization? {
        switch challenge.scheme {
        case "basic":
            guard let credentials else { return nil }
            return Authorization(header: "Basic \(credentials.basic)", withCredentials: true)
        case "bearer":
            var wanted = scopes
            for scope in challenge.scopes where !wanted.contains(scope) { wanted.append(scope) }
            let token = try await fetchToken(target, challenge: challenge, scopes: wanted, credentials: credentials)
            let key = tokenKey(target, scopes: scopes)
            state.withLock { $0.tokens[key] = token }
            return Authorization(header: "Bearer \(token.value)", withCredentials: token.withCredentials)
        default:
            return nil
        }
    }

    /// GET realm?service=…&scope=…, with basic credentials when we have them
    /// (docker's token protocol); the answer's `token` or `access_token`.
    func fetchToken(_ target: Target, challenge: AuthenticationChallenge, scopes: [String],
                    credentials: Credentials?) async throws -> Token {
        guard let realm = challenge.realm, let realmParts = URLParts(realm),
              realmParts.scheme == "https" || realmParts.scheme == "http" else {
            throw RegistryError(.invalidResponse, "registry \(target.registry) sent a bearer challenge without a usable realm")
        }
        var query: [String] = []
        if let service = challenge.service { query.append("service=" + RegistryClient.percentEncode(service)) }
        for scope in scopes { query.append("scope=" + RegistryClient.percentEncode(scope)) }
        if let credentials { query.append("account=" + RegistryClient.percentEncode(credentials.username)) }
        let url = realm + (query.isEmpty ? "" : (realm.contains("?") ? "&" : "?") + query.joined(separator: "&"))

        var request = HTTPClientRequest(url: url)
        request.method = .GET
        request.headers.add(name: "User-Agent", value: options.userAgent)
        if let credentials { request.headers.add(name: "Authorization", value: "Basic \(credentials.basic)") }
        if realmParts.scheme == "https", !options.tlsVerify || (target.insecure && realmParts.authority == target.apiHost) {
            var tls = TLSConfiguration.makeClientConfiguration()
            tls.certificateVerification = .none
            request.tlsConfiguration = tls
        }
        let response: HTTPClientResponse
        let body: ByteBuffer
        do {
            response = try await httpClient().execute(request, timeout: .seconds(60))
            body = try await response.body.collect(upTo: 1 << 20)
        } catch {
            throw transportError(error, host: realmParts.authority)
        }
        switch response.status.code {
        case 200:
            break
        case 401, 403:
            if credentials != nil {
                throw RegistryError(.invalidCredentials, "invalid username or password for \(target.registry)")
            }
            let subject = target.repository.map { "\(target.registry)/\($0)" } ?? target.registry
            throw RegistryError(.authenticationRequired, "authentication required: \(subject)")
        case 429:
            throw RegistryError(.tooManyRequests, "too many requests: \(realmParts.authority)")
        case 500...599:
            throw RegistryError(.server(status: Int(response.status.code)),
                                "registry error \(response.status.code): token server \(realmParts.authority)")
        default:
            throw RegistryError(.unexpectedStatus(Int(response.status.code)),
                                "unexpected status \(response.status.code) from token server \(realmParts.authority)")
        }
        struct TokenResponse: Decodable {
            var token: String?
            var access_token: String?
            var expires_in: Int?
        }
        guard let decoded = try? JSONDecoder().decode(TokenResponse.self, from: Data(body.readableBytesView)),
              let value = [decoded.token, decoded.access_token].compactMap({ $0 }).first(where: { !$0.isEmpty }) else {
            throw RegistryError(.invalidResponse, "token server \(realmParts.authority) answered without a token")
        }
        // Docker's default lifetime is 60 s; renew a little early.
        let lifetime = max(decoded.expires_in ?? 60, 60)
        return Token(value: value, expires: .now + .seconds(lifetime - 10), withCredentials: credentials != nil)
    }

    /// Percent-encodes everything but RFC 3986's unreserved characters.
    static func percentEncode(_ text: String) -> String {
        var output = ""
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
                 UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"):
                output.unicodeScalars.append(UnicodeScalar(byte))
            default:
                let hex = String(byte, radix: 16, uppercase: true)
                output += "%" + (hex.count == 1 ? "0" + hex : hex)
            }
        }
        return output
    }

    // MARK: login

    /// Checks that `registry` answers the v2 API and, when credentials are
    /// given, that it accepts them (for `berth login`).
    package func ping(registry: String, insecure: Bool = false, credentials: Credentials?) async throws {
        let target = Target(registry: registry, repository: nil, insecure: insecure)
        try await withRetries { _ in
            let anonymous = try await get(target, "/v2/", authorization: nil)
            if anonymous.status == 200 {
                _ = try? await anonymous.response.body.collect(upTo: 64 * 1024)
                return
            }
            guard anonymous.status == 401 else {
                throw await statusError(Response(response: anonymous.response, sentCredentials: false, url: anonymous.url),
                                        .other(registry), registry: registry)
            }
            let header = anonymous.response.headers[canonicalForm: "WWW-Authenticate"].map(String.init).joined(separator: ", ")
            _ = try? await anonymous.response.body.collect(upTo: 64 * 1024)
            let challenges = AuthenticationChallenge.parse(header)
            guard let credentials else {
                throw RegistryError(.authenticationRequired, "authentication required: \(registry)")
            }
            guard let challenge = challenges.first(where: { $0.scheme == "bearer" }) ?? challenges.first(where: { $0.scheme == "basic" }) else {
                throw RegistryError(.invalidResponse, "registry \(registry) asked for an authentication scheme berth does not support: \(RegistryClient.oneLine(header))")
            }
            let authorization: Authorization?
            do {
                authorization = try await authorize(target, challenge: challenge, scopes: [], credentials: credentials)
            } catch let error as RegistryError where error.code == .invalidCredentials {
                throw RegistryError(.invalidCredentials, "login failed: invalid username or password")
            }
            let answer = try await get(target, "/v2/", authorization: authorization?.header)
            _ = try? await answer.response.body.collect(upTo: 64 * 1024)
            switch answer.status {
            case 200:
                state.withLock { $0.challenges[target.apiHost] = challenge }
            case 401:
                throw RegistryError(.invalidCredentials, "login failed: invalid username or password")
            default:
                throw await statusError(Response(response: answer.response, sentCredentials: true, url: answer.url),
                                        .other(registry), registry: registry)
            }
        }
    }

    private func get(_ target: Target, _ path: String, authorization: String?) async throws -> (status: Int, response: HTTPClientResponse, url: String) {
        let answer = try await perform(target, method: .GET, path: path, headers: [:], authorization: authorization,
                                       body: nil, followRedirects: false, deadline: nil)
        return (Int(answer.response.status.code), answer.response, answer.url)
    }
}

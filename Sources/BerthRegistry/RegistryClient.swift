#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#endif
import AsyncHTTPClient
import BerthOCI
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import Synchronization

/// How far a blob transfer has got, for progress bars.
package struct BlobProgress: Sendable, Equatable {
    package var digest: Digest
    package var completed: Int64
    package var total: Int64
}

/// An OCI distribution-spec v2 client: token and basic authentication,
/// manifests and indexes, streamed and verified blob downloads, pushes.
///
/// It wraps one AsyncHTTPClient `HTTPClient`, created on the first request
/// (so that merely constructing a client starts no threads: `berth run`
/// must be single-threaded when it calls clone). Call `shutdown()` when done.
package final class RegistryClient: Sendable {
    package struct Options: Sendable {
        /// False (`--tls-verify=false`): every registry may use plain HTTP,
        /// and HTTPS certificates are not verified.
        package var tlsVerify: Bool
        /// Credentials for a registry host and repository; by default the
        /// auth files podman and docker use.
        package var credentials: @Sendable (_ registry: String, _ repository: String?) -> Credentials?
        /// Attempts for a request that fails with a connection error, 429 or 5xx.
        package var attempts: Int
        /// The first back-off delay; it doubles after every failed attempt.
        package var retryDelay: Duration
        package var connectTimeout: Duration
        /// How long a response may stall before the request fails.
        package var readTimeout: Duration
        package var userAgent: String

        package init(tlsVerify: Bool = true,
                     credentials: @escaping @Sendable (_ registry: String, _ repository: String?) -> Credentials? = RegistryClient.authFileCredentials,
                     attempts: Int = 3, retryDelay: Duration = .milliseconds(500),
                     connectTimeout: Duration = .seconds(30), readTimeout: Duration = .seconds(60),
                     userAgent: String = "berth") {
            self.tlsVerify = tlsVerify
            self.credentials = credentials
            self.attempts = max(1, attempts)
            self.retryDelay = retryDelay
            self.connectTimeout = connectTimeout
            self.readTimeout = readTimeout
            self.userAgent = userAgent
        }
    }

    /// Credentials from the auth files of the calling process's environment.
    package static let authFileCredentials: @Sendable (String, String?) -> Credentials? = { registry, repository in
        try? AuthFile.credentials(registry: registry, repository: repository, environment: .current)
    }

    package let options: Options

    struct Token: Sendable {
        var value: String
        var expires: ContinuousClock.Instant
        var withCredentials: Bool
    }

    struct State: Sendable {
        var http: HTTPClient?
        var isShutDown = false
        /// Bearer tokens by "host scope scope…".
        var tokens: [String: Token] = [:]
        /// The last challenge each host answered with, so later requests
        /// authenticate up front instead of collecting a 401 first.
        var challenges: [String: AuthenticationChallenge] = [:]
        /// "http" or "https" for insecure hosts, once one of them answered.
        var schemes: [String: String] = [:]
    }

    let state = Mutex(State())

    package init(options: Options = Options()) {
        self.options = options
    }

    /// Shuts the HTTP client down (if one was started).
    package func shutdown() async throws {
        let http = state.withLock { state -> HTTPClient? in
            state.isShutDown = true
            defer { state.http = nil }
            return state.http
        }
        try await http?.shutdown()
    }

    func httpClient() throws -> HTTPClient {
        try state.withLock { state throws(RegistryError) -> HTTPClient in
            guard !state.isShutDown else { throw RegistryError(.invalidResponse, "the registry client has been shut down") }
            if let http = state.http { return http }
            var configuration = HTTPClient.Configuration(
                redirectConfiguration: .disallow,
                timeout: .init(connect: TimeAmount(options.connectTimeout), read: TimeAmount(options.readTimeout)),
                decompression: .disabled
            )
            configuration.httpVersion = .automatic
            // One connection attempt per request: our own retries back off,
            // and a refused connection should fail now, not after the
            // connect timeout of the pool's silent retries.
            configuration.connectionPool.retryConnectionEstablishment = false
            let http = HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: configuration)
            state.http = http
            return http
        }
    }

    // MARK: targets and URLs

    /// Where a request goes: the registry as references name it
    /// (`docker.io`), the repository (for credentials and scopes), and
    /// whether plain HTTP / unverified HTTPS is allowed.
    struct Target: Sendable {
        var registry: String
        var repository: String?
        var insecure: Bool

        init(_ endpoint: Endpoint) {
            registry = endpoint.reference.registry
            repository = endpoint.reference.repository
            insecure = endpoint.insecure
        }

        init(registry: String, repository: String?, insecure: Bool) {
            self.registry = registry
            self.repository = repository
            self.insecure = insecure
        }

        /// The host serving the API: Docker Hub's is not docker.io.
        var apiHost: String { registry == ImageReference.defaultRegistry ? "registry-1.docker.io" : registry }
    }

    func allowsInsecure(_ target: Target) -> Bool { target.insecure || !options.tlsVerify }

    /// The schemes to try, in order: https only for a secure registry; for
    /// an insecure one the scheme that worked before, else https (without
    /// verification) then http.
    func schemes(for target: Target) -> [String] {
        guard allowsInsecure(target) else { return ["https"] }
        if let known = state.withLock({ $0.schemes[target.apiHost] }) { return [known] }
        // On the loopback nothing can listen in, and test registries speak
        // plain http (an https probe there can wait seconds for an answer).
        let authority = target.apiHost
        let host = authority.hasPrefix("[") ? String(authority.prefix(while: { $0 != "]" }).dropFirst())
                                            : String(authority.prefix(while: { $0 != ":" }))
        if host == "localhost" || host.hasPrefix("127.") || host == "::1" { return ["http", "https"] }
        return ["https", "http"]
    }

    // MARK: requests

    enum RequestBody: Sendable {
        case bytes(ByteBuffer)
        /// A body produced on demand (each attempt needs a fresh stream).
        case stream(length: Int64, @Sendable () -> AsyncThrowingStream<ByteBuffer, any Error>)

        func make() -> HTTPClientRequest.Body {
            switch self {
            case .bytes(let buffer): return .bytes(buffer)
            case .stream(let length, let makeStream): return .stream(makeStream(), length: .known(length))
            }
        }
    }

    /// A response that got past authentication and redirects.
    struct Response {
        var response: HTTPClientResponse
        /// Whether credentials (basic, or a token obtained with them) were sent.
        var sentCredentials: Bool
        /// The URL that answered, after redirects (relative upload locations resolve against it).
        var url: String

        var status: Int { Int(response.status.code) }
        func header(_ name: String) -> String? { response.headers.first(name: name) }
    }

    /// Sends one request to the registry API, authenticating as the
    /// registry asks (once: a second 401 is an error) and following
    /// redirects when asked (dropping the Authorization header when a
    /// redirect leaves the registry's host). `path` is `/v2/…` or a full URL
    /// (upload locations). `scopes` are the token scopes the request needs.
    func send(_ target: Target, method: HTTPMethod, path: String, headers: HTTPHeaders = [:],
              body: RequestBody? = nil, scopes: [String], followRedirects: Bool = false,
              deadline: NIODeadline? = nil) async throws -> Response {
        var authorization = try await cachedAuthorization(target, scopes: scopes)
        var retriedAfterChallenge = false
        while true {
            let answer = try await perform(target, method: method, path: path, headers: headers,
                                           authorization: authorization?.header, body: body,
                                           followRedirects: followRedirects, deadline: deadline)
            guard answer.response.status.code == 401 else {
                return Response(response: answer.response, sentCredentials: authorization?.withCredentials ?? false, url: answer.url)
            }
            let header = answer.response.headers[canonicalForm: "WWW-Authenticate"].map(String.init).joined(separator: ", ")
            _ = try? await answer.response.body.collect(upTo: 64 * 1024)
            let challenges = AuthenticationChallenge.parse(header)
            let sentCredentials = authorization?.withCredentials ?? false
            guard !retriedAfterChallenge, let challenge = challenges.first(where: { $0.scheme == "bearer" }) ?? challenges.first(where: { $0.scheme == "basic" }) else {
                throw unauthorized(target, sentCredentials: sentCredentials)
            }
            retriedAfterChallenge = true
            state.withLock { $0.challenges[target.apiHost] = challenge }
            guard let fresh = try await authorize(target, challenge: challenge, scopes: scopes, credentials: credentials(for: target)) else {
                throw unauthorized(target, sentCredentials: false)
            }
            authorization = fresh
        }
    }

    func unauthorized(_ target: Target, sentCredentials: Bool) -> RegistryError {
        let subject = target.repository.map { "\(target.registry)/\($0)" } ?? target.registry
        if sentCredentials {
            return RegistryError(.invalidCredentials, "invalid username or password for \(target.registry)")
        }
        return RegistryError(.authenticationRequired, "authentication required: \(subject)")
    }

    /// One request, with redirects followed by hand (AsyncHTTPClient's
    /// own following would carry the Authorization header to blob storage).
    func perform(_ target: Target, method: HTTPMethod, path: String, headers: HTTPHeaders,
                         authorization: String?, body: RequestBody?, followRedirects: Bool,
                         deadline: NIODeadline?) async throws -> (response: HTTPClientResponse, url: String) {
        let http = try httpClient()
        let isAbsolute = path.hasPrefix("https://") || path.hasPrefix("http://")
        let schemes = isAbsolute ? [""] : schemes(for: target)
        var lastError: RegistryError?
        for scheme in schemes {
            var url = isAbsolute ? path : "\(scheme)://\(target.apiHost)\(path)"
            var sendAuthorization = authorization
            var hops = 0
            do {
                while true {
                    var request = HTTPClientRequest(url: url)
                    request.method = method
                    request.headers = headers
                    request.headers.replaceOrAdd(name: "User-Agent", value: options.userAgent)
                    if let sendAuthorization { request.headers.replaceOrAdd(name: "Authorization", value: sendAuthorization) }
                    if let body { request.body = body.make() }
                    if url.hasPrefix("https://"), allowsInsecure(target), URLParts(url)?.authority == target.apiHost {
                        var tls = TLSConfiguration.makeClientConfiguration()
                        tls.certificateVerification = .none
                        request.tlsConfiguration = tls
                    }
                    // Probing https on a registry that may speak only plain http:
                    // a plain-http server can sit on a TLS hello until the connect
                    // timeout, so the probe gets a few seconds (the first request
                    // to a registry is a small one: /v2/ or a manifest).
                    let probing = !isAbsolute && scheme == "https" && schemes.count > 1
                    let limit = probing ? NIODeadline.now() + .seconds(5) : (deadline ?? .now() + .hours(24))
                    let response: HTTPClientResponse
                    do {
                        response = try await http.execute(request, deadline: limit)
                    } catch {
                        if probing, let error = error as? HTTPClientError, error == .deadlineExceeded {
                            throw RegistryError(.tls, "no TLS answer from \(target.apiHost)")
                        }
                        throw transportError(error, host: URLParts(url)?.authority ?? target.apiHost)
                    }
                    if !isAbsolute && schemes.count > 1 {
                        state.withLock { $0.schemes[target.apiHost] = scheme }
                    }
                    let code = response.status.code
                    guard followRedirects, [301, 302, 303, 307, 308].contains(code),
                          let location = response.headers.first(name: "Location") else {
                        return (response, url)
                    }
                    _ = try? await response.body.collect(upTo: 64 * 1024)
                    hops += 1
                    guard hops <= 10 else {
                        throw RegistryError(.invalidResponse, "too many redirects from \(target.registry)")
                    }
                    let next = URLParts.resolve(location, against: url)
                    if URLParts(next)?.authority != URLParts(url)?.authority { sendAuthorization = nil }
                    url = next
                }
            } catch let error as RegistryError where error.code == .tls || error.code == .unreachable {
                // https to a plain-http registry fails the handshake: try http next.
                lastError = error
                continue
            }
        }
        throw lastError ?? RegistryError(.unreachable, "cannot reach registry \(target.apiHost)")
    }

    // MARK: retries

    /// Runs `body` up to `options.attempts` times while it fails with a
    /// retryable error (connection errors, 429, 5xx), doubling the delay.
    func withRetries<T>(_ body: (_ attempt: Int) async throws -> T) async throws -> T {
        var delay = options.retryDelay
        var attempt = 1
        while true {
            do {
                return try await body(attempt)
            } catch let error as RegistryError where error.isRetryable && attempt < options.attempts {
                try await Task.sleep(for: delay)
                delay *= 2
                attempt += 1
            }
        }
    }

    // MARK: errors

    enum Subject {
        case manifest(String)
        case blob(String)
        case other(String)

        var text: String {
            switch self {
            case .manifest(let text), .blob(let text), .other(let text): return text
            }
        }
    }

    /// The error for an unexpected status, reading the registry's error
    /// document (`{"errors": [{"code": …, "message": …}]}`) when there is one.
    func statusError(_ answer: Response, _ subject: Subject, registry: String) async -> RegistryError {
        let body = (try? await answer.response.body.collect(upTo: 64 * 1024)).map { Array($0.readableBytesView) } ?? []
        let registryErrors = (try? JSONDecoder().decode(ErrorDocument.self, from: Data(body)))?.errors ?? []
        let codes = Set(registryErrors.map(\.code))
        let detail = registryErrors.first.map { error in
            RegistryClient.oneLine("\(error.code.lowercased()): \(error.message ?? "")")
        }
        switch answer.status {
        case 401:
            if answer.sentCredentials {
                return RegistryError(.invalidCredentials, "invalid username or password for \(registry)")
            }
            return RegistryError(.authenticationRequired, "authentication required: \(subject.text)")
        case 403:
            return RegistryError(.denied, "access denied: \(subject.text)")
        case 404:
            // A manifest or blob in a repository that does not exist
            // (NAME_UNKNOWN) is reported as the manifest or blob missing.
            switch subject {
            case .manifest: return RegistryError(.manifestUnknown, "manifest unknown: \(subject.text)")
            case .blob: return RegistryError(.blobUnknown, "blob unknown: \(subject.text)")
            case .other:
                if codes.contains("BLOB_UPLOAD_UNKNOWN") { return RegistryError(.blobUnknown, "blob upload unknown: \(subject.text)") }
                if codes.contains("NAME_UNKNOWN") { return RegistryError(.nameUnknown, "repository unknown: \(subject.text)") }
                return RegistryError(.nameUnknown, "not found: \(subject.text)")
            }
        case 429:
            return RegistryError(.tooManyRequests, "too many requests: \(registry)")
        case 500...599:
            return RegistryError(.server(status: answer.status), "registry error \(answer.status): \(subject.text)")
        default:
            return RegistryError(.unexpectedStatus(answer.status),
                                 "unexpected status \(answer.status) for \(subject.text)" + (detail.map { " (\($0))" } ?? ""))
        }
    }

    struct ErrorDocument: Decodable {
        struct Entry: Decodable {
            var code: String
            var message: String?
        }
        var errors: [Entry]
    }

    static func oneLine(_ text: String) -> String {
        let flattened = text.split(whereSeparator: \.isNewline).joined(separator: " ")
        return flattened.count > 200 ? String(flattened.prefix(200)) + "…" : flattened
    }

    /// A connection-level failure as one line: refused, DNS, timeouts, TLS.
    func transportError(_ error: any Error, host: String) -> RegistryError {
        if let error = error as? RegistryError { return error }
        if let error = error as? NIOSSLError {
            return tlsError(String(describing: error), host: host)
        }
        if error is BoringSSLError || error is NIOSSLExtraError {
            return tlsError(String(describing: error), host: host)
        }
        if let error = error as? IOError {
            return RegistryError(.unreachable, "cannot reach registry \(host): \(RegistryClient.errnoText(error.errnoCode))")
        }
        if let error = error as? NIOConnectionError {
            if let failure = error.connectionErrors.first {
                return transportError(failure.error, host: host)
            }
            if error.dnsAError != nil || error.dnsAAAAError != nil {
                return RegistryError(.unreachable, "cannot reach registry \(host): no such host")
            }
        }
        if let error = error as? ChannelError, case .connectTimeout = error {
            return RegistryError(.unreachable, "cannot reach registry \(host): connection timed out")
        }
        if let error = error as? HTTPClientError {
            let reason: String
            switch error {
            case .connectTimeout: reason = "connection timed out"
            case .readTimeout: reason = "read timed out"
            case .writeTimeout: reason = "write timed out"
            case .remoteConnectionClosed: reason = "connection closed by the registry"
            case .deadlineExceeded: reason = "request timed out"
            case .tlsHandshakeTimeout: reason = "tls handshake timed out"
            case .invalidURL, .emptyHost, .emptyScheme:
                return RegistryError(.invalidResponse, "invalid url for registry \(host)")
            case .cancelled: reason = "request cancelled"
            default: reason = String(describing: error).lowercased()
            }
            return RegistryError(.unreachable, "cannot reach registry \(host): \(reason)")
        }
        let text = String(describing: error)
        if text.contains("SSL") || text.contains("TLS") { return tlsError(text, host: host) }
        if text.contains("NXDOMAIN") || text.contains("resolve") {
            return RegistryError(.unreachable, "cannot reach registry \(host): no such host")
        }
        return RegistryError(.unreachable, "cannot reach registry \(host): \(RegistryClient.oneLine(text).lowercased())")
    }

    private func tlsError(_ text: String, host: String) -> RegistryError {
        let reason: String
        if text.contains("CERTIFICATE_VERIFY_FAILED") || text.contains("certificate verify") {
            reason = "certificate verify failed (use --tls-verify=false for a registry with a self-signed certificate)"
        } else if text.contains("WRONG_VERSION_NUMBER") || text.contains("wrong version number") {
            reason = "the registry does not speak tls (use --tls-verify=false for a plain http registry)"
        } else {
            reason = RegistryClient.oneLine(text).lowercased()
        }
        return RegistryError(.tls, "tls handshake with \(host) failed: \(reason)")
    }

    static func errnoText(_ code: CInt) -> String {
        guard let text = strerror(code) else { return "error \(code)" }
        return String(cString: text).lowercased()
    }
}

extension TimeAmount {
    init(_ duration: Duration) {
        let (seconds, attoseconds) = duration.components
        self = .nanoseconds(seconds * 1_000_000_000 + attoseconds / 1_000_000_000)
    }
}

/// The parts of an absolute URL berth needs: scheme, authority (host:port), path+query.
struct URLParts: Equatable {
    var scheme: String
    var authority: String
    var pathAndQuery: String

    init?(_ url: String) {
        guard let schemeEnd = url.firstRange(of: "://") else { return nil }
        scheme = String(url[..<schemeEnd.lowerBound]).lowercased()
        let rest = url[schemeEnd.upperBound...]
        let slash = rest.firstIndex(where: { $0 == "/" || $0 == "?" }) ?? rest.endIndex
        authority = String(rest[..<slash]).lowercased()
        pathAndQuery = String(rest[slash...])
        if pathAndQuery.isEmpty { pathAndQuery = "/" }
    }

    /// A Location header (absolute, `/absolute-path` or relative) against the URL that sent it.
    static func resolve(_ location: String, against base: String) -> String {
        if location.hasPrefix("http://") || location.hasPrefix("https://") { return location }
        guard let parts = URLParts(base) else { return location }
        if location.hasPrefix("//") { return "\(parts.scheme):\(location)" }
        if location.hasPrefix("/") { return "\(parts.scheme)://\(parts.authority)\(location)" }
        var directory = parts.pathAndQuery.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false).first.map(String.init) ?? "/"
        if let slash = directory.lastIndex(of: "/") { directory = String(directory[...slash]) }
        return "\(parts.scheme)://\(parts.authority)\(directory)\(location)"
    }
}

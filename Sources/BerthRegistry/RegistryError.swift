#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// Every failure of the registry client: a code callers can switch on (to
/// try the next search registry, to retry, to prompt for a login) and a
/// one-line lowercase message naming the registry or reference.
package struct RegistryError: Error, Equatable, Sendable, CustomStringConvertible {
    package enum Code: Equatable, Sendable {
        /// registries.conf or an auth file could not be read or parsed.
        case configuration
        /// The reference's registry is blocked in registries.conf.
        case blocked
        /// 401 without credentials.
        case authenticationRequired
        /// 401 after sending credentials.
        case invalidCredentials
        /// 403.
        case denied
        /// 404 for a manifest, a blob or a repository.
        case manifestUnknown, blobUnknown, nameUnknown
        /// 429.
        case tooManyRequests
        /// 5xx.
        case server(status: Int)
        /// Any other status the request did not expect.
        case unexpectedStatus(Int)
        /// The connection failed (refused, DNS, timeout, reset).
        case unreachable
        /// The TLS handshake or certificate verification failed.
        case tls
        /// Content did not match its digest or size.
        case digestMismatch, sizeMismatch
        /// An index has no manifest for the platform asked for.
        case noMatchingPlatform
        /// A manifest type berth does not handle (schema 1, unknown media types).
        case unsupportedManifest
        /// The registry answered something malformed.
        case invalidResponse
        /// A blob or manifest is larger than the caller allows.
        case tooLarge
    }

    package var code: Code
    package var message: String

    package init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    package var description: String { message }

    /// Whether the request may succeed if tried again (429, 5xx, connection errors).
    package var isRetryable: Bool {
        switch code {
        case .tooManyRequests, .unreachable: return true
        case .server(let status): return status != 501 && status != 505
        default: return false
        }
    }

    /// Whether the image is simply not in this registry (the caller may try
    /// the next search registry or mirror). Docker Hub answers 401 for
    /// repositories that do not exist.
    package var isNotFound: Bool {
        switch code {
        case .manifestUnknown, .nameUnknown, .blobUnknown, .authenticationRequired, .denied: return true
        default: return false
        }
    }
}

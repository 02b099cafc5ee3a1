#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import AsyncHTTPClient
import BerthOCI
import NIOCore
import NIOHTTP1

/// A manifest as the registry sent it.
package struct FetchedManifest: Sendable, Equatable {
    package var digest: Digest
    package var mediaType: String
    package var bytes: [UInt8]
}

/// What a reference resolved to: the image manifest for the platform (its
/// digest, exact bytes and media type, decoded), and the index it was
/// chosen from when the reference named an index or manifest list.
package struct ResolvedImage: Sendable, Equatable {
    /// Where it was found (a mirror or search registry, rewritten).
    package var endpoint: Endpoint
    package var digest: Digest
    package var mediaType: String
    package var manifestBytes: [UInt8]
    package var manifest: ImageManifest
    package var indexDigest: Digest?
    package var indexMediaType: String?
    package var indexBytes: [UInt8]?
    /// The platform of the chosen index entry (nil for a single manifest).
    package var platform: Platform?
}

extension RegistryClient {
    /// Manifests larger than this are refused (the distribution spec's
    /// registries accept up to 4 MiB).
    package static let manifestSizeLimit = 4 << 20

    /// GETs a manifest or index by tag or digest (`reference`, default the
    /// endpoint reference's digest, else its tag), verifying its bytes
    /// against the digest asked for, or else against Docker-Content-Digest.
    package func fetchManifest(_ endpoint: Endpoint, reference: String? = nil) async throws -> FetchedManifest {
        let target = Target(endpoint)
        let repository = endpoint.reference.repository
        let ref = reference ?? endpoint.reference.digest?.description ?? endpoint.reference.tag ?? ImageReference.defaultTag
        let subject = ref.contains(":") && Digest(ref) != nil
            ? "\(endpoint.reference.name)@\(ref)" : "\(endpoint.reference.name):\(ref)"
        return try await withRetries { _ in
            var headers = HTTPHeaders()
            headers.add(name: "Accept", value: (MediaType.acceptedManifests + [MediaType.dockerSchema1Signed, MediaType.dockerSchema1]).joined(separator: ", "))
            let answer = try await send(target, method: .GET, path: "/v2/\(repository)/manifests/\(ref)", headers: headers,
                                        scopes: RegistryClient.scope(repository), followRedirects: true)
            guard answer.status == 200 else { throw await statusError(answer, .manifest(subject), registry: endpoint.reference.registry) }
            if let length = answer.header("Content-Length").flatMap(Int.init), length > RegistryClient.manifestSizeLimit {
                throw RegistryError(.tooLarge, "manifest \(subject) is too large (\(length) bytes)")
            }
            let bytes: [UInt8]
            do {
                bytes = Array(try await answer.response.body.collect(upTo: RegistryClient.manifestSizeLimit).readableBytesView)
            } catch let error as NIOTooManyBytesError {
                _ = error
                throw RegistryError(.tooLarge, "manifest \(subject) is larger than \(RegistryClient.manifestSizeLimit) bytes")
            } catch {
                throw transportError(error, host: target.apiHost)
            }
            let expected = Digest(ref) ?? answer.header("Docker-Content-Digest").flatMap(Digest.init)
            let digest = try DigestHasher.digest(bytes, algorithm: expected?.algorithm ?? "sha256")
            if let expected, expected != digest {
                throw RegistryError(.digestMismatch, "digest mismatch for manifest \(subject) (got \(digest))")
            }
            let mediaType = try RegistryClient.manifestMediaType(contentType: answer.header("Content-Type"), bytes: bytes, subject: subject)
            return FetchedManifest(digest: digest, mediaType: mediaType, bytes: bytes)
        }
    }

    /// Resolves a reference to the image manifest for `platform`: fetches
    /// what the tag or digest names and, for an index or manifest list,
    /// the entry for the platform.
    package func resolveManifest(_ endpoint: Endpoint, platform: Platform = .host) async throws -> ResolvedImage {
        let top = try await fetchManifest(endpoint)
        if MediaType.isManifest(top.mediaType) {
            let manifest = try RegistryClient.decodeManifest(top.bytes, subject: endpoint.reference.description)
            return ResolvedImage(endpoint: endpoint, digest: top.digest, mediaType: top.mediaType, manifestBytes: top.bytes,
                                 manifest: manifest, indexDigest: nil, indexMediaType: nil, indexBytes: nil, platform: nil)
        }
        let index: ImageIndex
        do {
            index = try JSONDecoder().decode(ImageIndex.self, from: Data(top.bytes))
        } catch {
            throw RegistryError(.invalidResponse, "invalid image index for \(endpoint.reference)")
        }
        let entry = try RegistryClient.selectManifest(in: index, platform: platform, subject: endpoint.reference.description)
        let child = try await fetchManifest(endpoint, reference: entry.digest.description)
        guard MediaType.isManifest(child.mediaType) else {
            throw RegistryError(.unsupportedManifest, "the \(platform) entry of \(endpoint.reference) is not an image manifest (\(child.mediaType))")
        }
        let manifest = try RegistryClient.decodeManifest(child.bytes, subject: "\(endpoint.reference.name)@\(child.digest)")
        return ResolvedImage(endpoint: endpoint, digest: child.digest, mediaType: child.mediaType, manifestBytes: child.bytes,
                             manifest: manifest, indexDigest: top.digest, indexMediaType: top.mediaType, indexBytes: top.bytes,
                             platform: entry.platform)
    }

    /// Tries `candidates` (from `RegistriesConfiguration.resolve`) in order
    /// and returns the first that has the image. A candidate that lacks it
    /// (404, or 401/403 as Docker Hub answers for unknown repositories) or
    /// cannot be reached makes the next one be tried; if none has it, the
    /// first candidate's error is thrown (or, for several, one naming them all).
    package func resolveManifest(candidates: [Endpoint], platform: Platform = .host) async throws -> ResolvedImage {
        var failures: [(Endpoint, RegistryError)] = []
        for candidate in candidates {
            do {
                return try await resolveManifest(candidate, platform: platform)
            } catch let error as RegistryError where error.isNotFound || error.code == .unreachable || error.code == .tls {
                failures.append((candidate, error))
            }
        }
        guard let first = failures.first else {
            throw RegistryError(.configuration, "no registry to look for the image in")
        }
        if failures.count == 1 || failures.allSatisfy({ $0.0.reference.registry == first.0.reference.registry }) {
            throw first.1
        }
        // Several registries: a "not found" from the main search registry is the most useful line.
        let tried = failures.map { $0.0.reference.registry }.joined(separator: ", ")
        var error = failures.first(where: { !$0.0.isMirror && $0.1.isNotFound })?.1 ?? first.1
        error.message += " (tried \(tried))"
        throw error
    }

    /// The index entry for `platform`, or an error listing the platforms there are.
    package static func selectManifest(in index: ImageIndex, platform: Platform, subject: String) throws(RegistryError) -> Descriptor {
        if let entry = index.manifest(for: platform) { return entry }
        let available = index.manifests.compactMap { $0.platform }
            .filter { $0.os != "unknown" && $0.architecture != "unknown" }
            .map(\.description)
        var unique: [String] = []
        for name in available where !unique.contains(name) { unique.append(name) }
        throw RegistryError(.noMatchingPlatform,
                            "no image for platform \(platform) in \(subject) (it has: \(unique.isEmpty ? "no platforms" : unique.joined(separator: ", ")))")
    }

    static func decodeManifest(_ bytes: [UInt8], subject: String) throws(RegistryError) -> ImageManifest {
        do {
            return try JSONDecoder().decode(ImageManifest.self, from: Data(bytes))
        } catch {
            throw RegistryError(.invalidResponse, "invalid image manifest for \(subject)")
        }
    }

    /// The manifest's media type: its own `mediaType` field, else the
    /// Content-Type, else guessed from its shape. Schema 1 is refused.
    static func manifestMediaType(contentType: String?, bytes: [UInt8], subject: String) throws(RegistryError) -> String {
        struct Probe: Decodable {
            var schemaVersion: Int?
            var mediaType: String?
            var manifests: [JSONValue]?
            var config: JSONValue?
            var layers: [JSONValue]?
        }
        guard let probe = try? JSONDecoder().decode(Probe.self, from: Data(bytes)) else {
            throw RegistryError(.invalidResponse, "the manifest of \(subject) is not valid json")
        }
        let header = contentType.map { String(($0.split(separator: ";").first ?? "").drop(while: \.isWhitespace).reversed().drop(while: \.isWhitespace).reversed()) }
        if probe.schemaVersion == 1 || header == MediaType.dockerSchema1 || header == MediaType.dockerSchema1Signed {
            throw RegistryError(.unsupportedManifest,
                                "\(subject) has a docker schema 1 manifest, which berth does not support (push it again with a current tool)")
        }
        for candidate in [probe.mediaType, header].compactMap({ $0 }) where MediaType.isManifest(candidate) || MediaType.isIndex(candidate) {
            return candidate
        }
        if probe.manifests != nil { return MediaType.ociIndex }
        if probe.config != nil, probe.layers != nil { return MediaType.ociManifest }
        throw RegistryError(.unsupportedManifest, "unsupported manifest type \(probe.mediaType ?? header ?? "(none)") for \(subject)")
    }
}

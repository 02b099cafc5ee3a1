#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// Media types of the OCI image-spec and Docker's schema 2, as registries
/// and archives label manifests, indexes, configs and layers.
public enum MediaType {
    public static let ociManifest = "application/vnd.oci.image.manifest.v1+json"
    public static let ociIndex = "application/vnd.oci.image.index.v1+json"
    public static let ociConfig = "application/vnd.oci.image.config.v1+json"
    public static let ociLayer = "application/vnd.oci.image.layer.v1.tar"
    public static let ociLayerGzip = "application/vnd.oci.image.layer.v1.tar+gzip"
    public static let ociLayerZstd = "application/vnd.oci.image.layer.v1.tar+zstd"
    public static let ociLayerNondistributableGzip = "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"
    public static let dockerManifest = "application/vnd.docker.distribution.manifest.v2+json"
    public static let dockerManifestList = "application/vnd.docker.distribution.manifest.list.v2+json"
    public static let dockerConfig = "application/vnd.docker.container.image.v1+json"
    public static let dockerLayerGzip = "application/vnd.docker.image.rootfs.diff.tar.gzip"
    public static let dockerLayerForeignGzip = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"
    public static let dockerSchema1Signed = "application/vnd.docker.distribution.manifest.v1+prettyjws"
    public static let dockerSchema1 = "application/vnd.docker.distribution.manifest.v1+json"

    /// Every manifest or index type berth understands, for `Accept:`.
    public static let acceptedManifests = [ociIndex, dockerManifestList, ociManifest, dockerManifest]

    public static func isIndex(_ type: String) -> Bool { type == ociIndex || type == dockerManifestList }
    public static func isManifest(_ type: String) -> Bool { type == ociManifest || type == dockerManifest }

    /// How a layer's bytes are compressed, from its media type.
    public static func layerCompression(_ type: String) -> LayerCompression? {
        switch type {
        case ociLayer, "application/vnd.oci.image.layer.nondistributable.v1.tar", "application/vnd.docker.image.rootfs.diff.tar":
            return LayerCompression.none
        case ociLayerGzip, ociLayerNondistributableGzip, dockerLayerGzip, dockerLayerForeignGzip:
            return .gzip
        case ociLayerZstd, "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd":
            return .zstd
        default:
            return nil
        }
    }
}

public enum LayerCompression: String, Codable, Sendable {
    case none, gzip, zstd
}

/// A content digest, `algorithm:hex`. Only sha256 is produced; sha512 is
/// accepted where a registry or archive names it.
public struct Digest: Hashable, Comparable, Codable, Sendable, CustomStringConvertible {
    public let algorithm: String
    public let hex: String

    public init(algorithm: String = "sha256", hex: String) {
        self.algorithm = algorithm
        self.hex = hex
    }

    /// Parses `sha256:<64 lowercase hex>` (or `sha512:<128 hex>`); nil otherwise.
    public init?(_ text: String) {
        guard let colon = text.firstIndex(of: ":") else { return nil }
        let algorithm = String(text[..<colon])
        let hex = String(text[text.index(after: colon)...])
        let length: Int
        switch algorithm {
        case "sha256": length = 64
        case "sha512": length = 128
        default: return nil
        }
        guard hex.utf8.count == length, hex.utf8.allSatisfy({ ($0 >= 48 && $0 <= 57) || ($0 >= 97 && $0 <= 102) }) else {
            return nil
        }
        self.init(algorithm: algorithm, hex: hex)
    }

    /// A digest from the hash function's output bytes.
    public init(algorithm: String = "sha256", bytes: some Sequence<UInt8>) {
        self.init(algorithm: algorithm, hex: Digest.hex(bytes))
    }

    /// Lowercase hex of `bytes`, as digests and diagnostics write them.
    public static func hex(_ bytes: some Sequence<UInt8>) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var output: [UInt8] = []
        for byte in bytes {
            output.append(digits[Int(byte >> 4)])
            output.append(digits[Int(byte & 0x0f)])
        }
        return String(decoding: output, as: UTF8.self)
    }

    public var description: String { "\(algorithm):\(hex)" }
    /// The first 12 hex digits, as `images` shows IDs.
    public var short: String { String(hex.prefix(12)) }

    public static func < (a: Digest, b: Digest) -> Bool { a.description < b.description }

    public init(from decoder: Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        guard let digest = Digest(text) else {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "not a digest: \(text)"))
        }
        self = digest
    }

    public func encode(to encoder: Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(description)
    }
}

/// A platform, `os/architecture[/variant]`.
public struct Platform: Hashable, Codable, Sendable, CustomStringConvertible {
    public var architecture: String
    public var os: String
    public var osVersion: String?
    public var osFeatures: [String]?
    public var variant: String?

    enum CodingKeys: String, CodingKey {
        case architecture, os, variant
        case osVersion = "os.version"
        case osFeatures = "os.features"
    }

    public init(os: String = "linux", architecture: String, variant: String? = nil) {
        self.os = os
        self.architecture = architecture
        self.variant = variant
    }

    /// Parses `os/arch[/variant]` or `arch` (linux assumed); Go's aliases
    /// (x86_64, aarch64) are normalised.
    public init?(parsing text: String) {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        guard !parts.isEmpty, parts.count <= 3, parts.allSatisfy({ !$0.isEmpty }) else { return nil }
        if parts.count == 1 {
            self.init(architecture: Platform.normalise(parts[0]))
        } else {
            self.init(os: parts[0], architecture: Platform.normalise(parts[1]), variant: parts.count == 3 ? parts[2] : nil)
        }
    }

    public var description: String {
        "\(os)/\(architecture)" + (variant.map { "/\($0)" } ?? "")
    }

    static func normalise(_ arch: String) -> String {
        switch arch {
        case "x86_64", "x86-64": return "amd64"
        case "aarch64": return "arm64"
        case "i386", "i686": return "386"
        case "armhf", "armel": return "arm"
        default: return arch
        }
    }

    /// The platform this binary runs on.
    public static var host: Platform {
        #if arch(x86_64)
        return Platform(architecture: "amd64")
        #elseif arch(arm64)
        return Platform(architecture: "arm64", variant: "v8")
        #elseif arch(s390x)
        return Platform(architecture: "s390x")
        #elseif arch(powerpc64le)
        return Platform(architecture: "ppc64le")
        #else
        return Platform(architecture: "unknown")
        #endif
    }

    /// Whether an index entry for `candidate` can run here when `self` was
    /// asked for. The variant is compared only when both name one
    /// (arm64 images mostly omit `v8`).
    public func matches(_ candidate: Platform) -> Bool {
        guard os == candidate.os, architecture == candidate.architecture else { return false }
        if let want = variant, let have = candidate.variant { return want == have }
        return true
    }
}

/// A content descriptor.
public struct Descriptor: Hashable, Codable, Sendable {
    public var mediaType: String
    public var digest: Digest
    public var size: Int64
    public var urls: [String]?
    public var annotations: [String: String]?
    public var platform: Platform?
    public var artifactType: String?

    public init(mediaType: String, digest: Digest, size: Int64, annotations: [String: String]? = nil, platform: Platform? = nil) {
        self.mediaType = mediaType
        self.digest = digest
        self.size = size
        self.annotations = annotations
        self.platform = platform
    }
}

/// An image manifest (OCI or Docker schema 2: the same shape).
public struct ImageManifest: Codable, Sendable, Equatable {
    public var schemaVersion: Int
    public var mediaType: String?
    public var config: Descriptor
    public var layers: [Descriptor]
    public var annotations: [String: String]?

    public init(mediaType: String = MediaType.ociManifest, config: Descriptor, layers: [Descriptor], annotations: [String: String]? = nil) {
        self.schemaVersion = 2
        self.mediaType = mediaType
        self.config = config
        self.layers = layers
        self.annotations = annotations
    }
}

/// An image index or Docker manifest list.
public struct ImageIndex: Codable, Sendable, Equatable {
    public var schemaVersion: Int
    public var mediaType: String?
    public var manifests: [Descriptor]
    public var annotations: [String: String]?

    public init(mediaType: String = MediaType.ociIndex, manifests: [Descriptor], annotations: [String: String]? = nil) {
        self.schemaVersion = 2
        self.mediaType = mediaType
        self.manifests = manifests
        self.annotations = annotations
    }

    /// The manifest for `platform`, preferring an exact variant match.
    public func manifest(for platform: Platform) -> Descriptor? {
        let candidates = manifests.filter { d in
            MediaType.isManifest(d.mediaType) && d.platform.map { platform.matches($0) } == true
        }
        return candidates.first { $0.platform?.variant == platform.variant } ?? candidates.first
    }
}

/// The image configuration (OCI image-spec `config.json`; Docker's is a superset
/// whose extra fields berth keeps as they are in the stored blob).
public struct ImageConfiguration: Codable, Sendable, Equatable {
    public var created: String?
    public var author: String?
    public var architecture: String
    public var os: String
    public var variant: String?
    public var config: Config?
    public var rootfs: RootFS
    public var history: [History]?

    public struct Config: Codable, Sendable, Equatable {
        public var User: String?
        public var ExposedPorts: [String: JSONValue]?
        public var Env: [String]?
        public var Entrypoint: [String]?
        public var Cmd: [String]?
        public var Volumes: [String: JSONValue]?
        public var WorkingDir: String?
        public var Labels: [String: String]?
        public var StopSignal: String?
        /// HEALTHCHECK (docker's image config; OCI's has no such field).
        public var Healthcheck: HealthConfig?
        public init() {}
    }

    public struct RootFS: Codable, Sendable, Equatable {
        public var type: String
        public var diff_ids: [Digest]
        public init(diffIDs: [Digest]) {
            self.type = "layers"
            self.diff_ids = diffIDs
        }
    }

    public struct History: Codable, Sendable, Equatable {
        public var created: String?
        public var created_by: String?
        public var author: String?
        public var comment: String?
        public var empty_layer: Bool?
        public init(created: String? = nil, createdBy: String? = nil, comment: String? = nil, emptyLayer: Bool? = nil) {
            self.created = created
            self.created_by = createdBy
            self.comment = comment
            self.empty_layer = emptyLayer
        }
    }

    public init(architecture: String, os: String, variant: String? = nil, config: Config?, rootfs: RootFS) {
        self.architecture = architecture
        self.os = os
        self.variant = variant
        self.config = config
        self.rootfs = rootfs
    }

    public var platform: Platform { Platform(os: os, architecture: architecture, variant: variant) }
}

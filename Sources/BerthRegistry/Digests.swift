import BerthOCI
import Crypto

/// A running hash for a digest's algorithm (sha256, or sha512 where a
/// registry names it).
struct DigestHasher {
    private var sha256: SHA256?
    private var sha512: SHA512?
    let algorithm: String

    init(algorithm: String) throws(RegistryError) {
        self.algorithm = algorithm
        switch algorithm {
        case "sha256": sha256 = SHA256()
        case "sha512": sha512 = SHA512()
        default: throw RegistryError(.unsupportedManifest, "unsupported digest algorithm \(algorithm)")
        }
    }

    mutating func update(_ bytes: UnsafeRawBufferPointer) {
        sha256?.update(bufferPointer: bytes)
        sha512?.update(bufferPointer: bytes)
    }

    func finalize() -> BerthOCI.Digest {
        let bytes: [UInt8] = sha256.map { Array($0.finalize()) } ?? sha512.map { Array($0.finalize()) } ?? []
        return BerthOCI.Digest(algorithm: algorithm, hex: DigestHasher.hex(bytes))
    }

    static func hex(_ bytes: [UInt8]) -> String { BerthOCI.Digest.hex(bytes) }

    /// The digest of `bytes` with `algorithm` (sha256 by default).
    static func digest(_ bytes: [UInt8], algorithm: String = "sha256") throws(RegistryError) -> BerthOCI.Digest {
        var hasher = try DigestHasher(algorithm: algorithm)
        bytes.withUnsafeBytes { hasher.update($0) }
        return hasher.finalize()
    }
}

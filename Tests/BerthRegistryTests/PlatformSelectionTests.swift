#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import BerthOCI
@testable import BerthRegistry
import Testing

@Suite struct PlatformSelectionTests {
    static func digest(_ c: Character) -> String { "sha256:" + String(repeating: c, count: 64) }

    /// An index like Docker Hub's busybox: platforms with variants, and an
    /// attestation entry (unknown/unknown) that is never chosen or listed.
    static let sampleIndex = """
        {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": [
          {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": "\(digest("1"))", "size": 610, "platform": {"architecture": "amd64", "os": "linux"}},
          {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": "\(digest("2"))", "size": 610, "platform": {"architecture": "arm", "os": "linux", "variant": "v6"}},
          {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": "\(digest("3"))", "size": 610, "platform": {"architecture": "arm", "os": "linux", "variant": "v7"}},
          {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": "\(digest("4"))", "size": 610, "platform": {"architecture": "arm64", "os": "linux", "variant": "v8"}},
          {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": "\(digest("5"))", "size": 610, "platform": {"architecture": "s390x", "os": "linux"}},
          {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": "\(digest("6"))", "size": 566, "platform": {"architecture": "unknown", "os": "unknown"},
           "annotations": {"vnd.docker.reference.type": "attestation-manifest"}}
        ]}
        """

    static func index() throws -> ImageIndex {
        try JSONDecoder().decode(ImageIndex.self, from: Data(sampleIndex.utf8))
    }

    @Test(arguments: [
        ("linux/amd64", "1"), ("amd64", "1"), ("x86_64", "1"),
        ("linux/arm/v6", "2"), ("linux/arm/v7", "3"), ("linux/arm", "2"),
        ("linux/arm64", "4"), ("linux/arm64/v8", "4"), ("aarch64", "4"),
        ("linux/s390x", "5"),
    ])
    func selects(platform: String, digestCharacter: Character) throws {
        let selected = try RegistryClient.selectManifest(in: Self.index(), platform: Platform(parsing: platform)!, subject: "docker.io/library/busybox:latest")
        #expect(selected.digest.description == Self.digest(digestCharacter))
    }

    @Test func noMatchListsWhatThereIs() throws {
        let index = ImageIndex(manifests: [
            Descriptor(mediaType: MediaType.dockerManifest, digest: Digest(Self.digest("1"))!, size: 1, platform: Platform(architecture: "amd64")),
            Descriptor(mediaType: MediaType.dockerManifest, digest: Digest(Self.digest("2"))!, size: 1, platform: Platform(architecture: "s390x")),
            Descriptor(mediaType: MediaType.dockerManifest, digest: Digest(Self.digest("3"))!, size: 1, platform: Platform(os: "unknown", architecture: "unknown")),
        ])
        #expect(throws: RegistryError(.noMatchingPlatform, "no image for platform linux/arm64 in docker.io/library/x:tag (it has: linux/amd64, linux/s390x)")) {
            try RegistryClient.selectManifest(in: index, platform: Platform(architecture: "arm64"), subject: "docker.io/library/x:tag")
        }
        #expect(throws: RegistryError.self) {
            try RegistryClient.selectManifest(in: Self.index(), platform: Platform(os: "windows", architecture: "amd64"), subject: "x")
        }
    }

    @Test(arguments: [
        (nil as String?, "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.docker.distribution.manifest.v2+json\",\"config\":{},\"layers\":[]}", MediaType.dockerManifest),
        ("application/vnd.oci.image.index.v1+json; charset=utf-8", "{\"schemaVersion\":2,\"manifests\":[]}", MediaType.ociIndex),
        ("application/json", "{\"schemaVersion\":2,\"manifests\":[]}", MediaType.ociIndex),
        ("application/octet-stream", "{\"schemaVersion\":2,\"config\":{},\"layers\":[]}", MediaType.ociManifest),
        ("application/vnd.docker.distribution.manifest.list.v2+json", "{\"schemaVersion\":2,\"manifests\":[]}", MediaType.dockerManifestList),
    ])
    func mediaTypes(contentType: String?, body: String, expected: String) throws {
        #expect(try RegistryClient.manifestMediaType(contentType: contentType, bytes: Array(body.utf8), subject: "x") == expected)
    }

    @Test func schema1IsRefused() {
        #expect {
            try RegistryClient.manifestMediaType(contentType: MediaType.dockerSchema1Signed,
                                                 bytes: Array("{\"schemaVersion\":1,\"fsLayers\":[]}".utf8), subject: "docker.io/library/old:1")
        } throws: { error in
            (error as? RegistryError)?.message == "docker.io/library/old:1 has a docker schema 1 manifest, which berth does not support (push it again with a current tool)"
        }
    }
}

@Suite struct RegistryClientHelperTests {
    @Test(arguments: [
        ("/v2/a/blobs/uploads/1?_state=x", "http://h:5000/v2/a/blobs/uploads/", "http://h:5000/v2/a/blobs/uploads/1?_state=x"),
        ("https://s3.example/bucket/blob?sig=1", "https://registry/v2/a/blobs/sha256:x", "https://s3.example/bucket/blob?sig=1"),
        ("//cdn.example/x", "https://registry/v2/", "https://cdn.example/x"),
        ("next", "http://h/v2/a/b?q=1", "http://h/v2/a/next"),
    ])
    func locations(location: String, base: String, expected: String) {
        #expect(URLParts.resolve(location, against: base) == expected)
    }

    @Test func urlParts() {
        #expect(URLParts("https://Registry-1.Docker.IO:443/v2/?x")?.authority == "registry-1.docker.io:443")
        #expect(URLParts("http://h")?.pathAndQuery == "/")
        #expect(URLParts("h/x") == nil)
    }

    @Test func percentEncoding() {
        #expect(RegistryClient.percentEncode("repository:library/busybox:pull,push") == "repository%3Alibrary%2Fbusybox%3Apull%2Cpush")
        #expect(RegistryClient.percentEncode("a-b.c_d~e f") == "a-b.c_d~e%20f")
    }

    @Test func contentRange() {
        #expect(RegistryClient.rangeStart("bytes 100-199/200") == 100)
        #expect(RegistryClient.rangeStart("bytes 0-0/*") == 0)
        #expect(RegistryClient.rangeStart("garbage") == nil)
    }

    @Test func errorsAreOneLine() {
        #expect(RegistryClient.oneLine("a\nb\r\nc") == "a b c")
    }

    /// Constructing a client starts nothing (berth run must stay single-threaded until clone).
    @Test func creationIsLazy() async throws {
        let client = RegistryClient()
        #expect(client.state.withLock { $0.http == nil })
        try await client.shutdown()
    }
}

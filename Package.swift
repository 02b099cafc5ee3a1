// swift-tools-version: 6.0
import PackageDescription

// berth: one static binary that is both a podman-style engine and a
// runc-compatible OCI runtime. Dependencies point downward only:
// CBerth/CSeccomp/CCap/CArchive/CCompress → BerthOS → BerthOCI →
// BerthRuntime, BerthImage, BerthRegistry → BerthEngine → berth.
let package = Package(
    name: "berth",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "berth", targets: ["berth"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.37.0"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.0"),
    ],
    targets: [
        .target(name: "CBerth"),
        .systemLibrary(name: "CSeccomp", pkgConfig: "libseccomp", providers: [.apt(["libseccomp-dev"])]),
        .systemLibrary(name: "CCap", pkgConfig: "libcap", providers: [.apt(["libcap-dev"])]),
        // libarchive's API (libarchive-dev's headers); the library is loaded
        // on first use, not linked (Sources/CArchive/archive.c).
        .target(name: "CArchive"),
        // Streaming decompression for layers: ISA-L's igzip (gzip), zstd, zlib.
        .systemLibrary(name: "CCompress", providers: [.apt(["libisal-dev", "libzstd-dev", "zlib1g-dev"])]),
        .target(name: "BerthOS", dependencies: ["CBerth"]),
        .target(name: "BerthOCI"),
        .target(name: "BerthRuntime", dependencies: ["BerthOS", "BerthOCI", "CBerth", "CSeccomp", "CCap"]),
        .target(
            name: "BerthImage",
            dependencies: [
                "BerthOS", "BerthOCI", "BerthRegistry", "CArchive", "CCompress", "CBerth",
                .product(name: "Crypto", package: "swift-crypto"),
            ]
        ),
        .target(
            name: "BerthRegistry",
            dependencies: [
                "BerthOS", "BerthOCI",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Crypto", package: "swift-crypto"),
            ]
        ),
        // Containers as users see them: records, names, image config + flags
        // → Spec, the detached monitor, logs, volumes.
        .target(name: "BerthEngine", dependencies: ["BerthOS", "BerthOCI", "BerthRuntime", "BerthImage", "CBerth"]),
        .executableTarget(
            name: "berth",
            dependencies: [
                "BerthRuntime", "BerthOCI", "BerthOS", "BerthImage", "BerthRegistry", "BerthEngine",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        // Fixtures shared by the test targets (temporary directories).
        .target(name: "BerthTestSupport", dependencies: ["BerthOS"], path: "Tests/BerthTestSupport"),
        .testTarget(name: "BerthOSTests", dependencies: ["BerthOS", "BerthTestSupport"]),
        .testTarget(name: "BerthOCITests", dependencies: ["BerthOCI"]),
        .testTarget(name: "BerthImageTests", dependencies: ["BerthImage", "BerthOCI", "BerthOS", "BerthTestSupport"]),
        .testTarget(name: "BerthRegistryTests", dependencies: ["BerthRegistry", "BerthOCI"]),
        .testTarget(name: "BerthEngineTests", dependencies: ["BerthEngine", "BerthImage", "BerthOCI", "BerthOS", "BerthTestSupport"]),
        .testTarget(name: "BerthRuntimeTests", dependencies: ["BerthRuntime", "BerthOCI", "BerthOS", "BerthTestSupport"]),
    ],
    swiftLanguageModes: [.v6]
)

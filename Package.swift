// swift-tools-version: 6.0
import PackageDescription

// berth: one static binary that is both a podman-style engine and a
// runc-compatible OCI runtime. Dependencies point downward only:
// CBerth/CSeccomp/CCap → BerthOS → BerthOCI → BerthRuntime → berth.
let package = Package(
    name: "berth",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "berth", targets: ["berth"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
    ],
    targets: [
        .target(name: "CBerth"),
        .systemLibrary(name: "CSeccomp", pkgConfig: "libseccomp", providers: [.apt(["libseccomp-dev"])]),
        .systemLibrary(name: "CCap", pkgConfig: "libcap", providers: [.apt(["libcap-dev"])]),
        .target(name: "BerthOS", dependencies: ["CBerth"]),
        .target(name: "BerthOCI"),
        .target(name: "BerthRuntime", dependencies: ["BerthOS", "BerthOCI", "CBerth", "CSeccomp", "CCap"]),
        .executableTarget(
            name: "berth",
            dependencies: [
                "BerthRuntime", "BerthOCI", "BerthOS",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        // Fixtures shared by the test targets (temporary directories).
        .target(name: "BerthTestSupport", dependencies: ["BerthOS"], path: "Tests/BerthTestSupport"),
        .testTarget(name: "BerthOSTests", dependencies: ["BerthOS", "BerthTestSupport"]),
        .testTarget(name: "BerthOCITests", dependencies: ["BerthOCI"]),
        .testTarget(name: "BerthRuntimeTests", dependencies: ["BerthRuntime", "BerthOCI", "BerthOS", "BerthTestSupport"]),
    ],
    swiftLanguageModes: [.v6]
)

// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "dtls-proxyd",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "dtls-proxyd", targets: ["dtls-proxyd"]),
        .executable(name: "udp-echo", targets: ["udp-echo"]),
        .executable(name: "dtls-proxy-bench", targets: ["dtls-proxy-bench"]),
        .library(name: "DTLSProxy", targets: ["DTLSProxy"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-atomics.git", from: "1.3.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/LebJe/TOMLKit.git", from: "0.6.0"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift", from: "0.2.0"),
    ],
    targets: [
        .systemLibrary(
            name: "COpenSSL",
            pkgConfig: "openssl",
            providers: [.apt(["libssl-dev"])]
        ),
        .systemLibrary(
            name: "CSystemd",
            pkgConfig: "libsystemd",
            providers: [.apt(["libsystemd-dev"])]
        ),
        .target(name: "CPlatform"),
        .target(
            name: "DTLSProxy",
            dependencies: [
                "COpenSSL",
                "CSystemd",
                "CPlatform",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Atomics", package: "swift-atomics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "TOMLKit", package: "TOMLKit"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ]
        ),
        .executableTarget(
            name: "dtls-proxyd",
            dependencies: [
                "DTLSProxy",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        .executableTarget(
            name: "udp-echo",
            dependencies: [
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .target(name: "CBenchRelay"),
        .executableTarget(
            name: "dtls-proxy-bench",
            dependencies: [
                "COpenSSL",
                "CBenchRelay",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Histogram", package: "hdrhistogram-swift"),
            ]
        ),
        .testTarget(
            name: "DTLSProxyTests",
            dependencies: ["DTLSProxy", .product(name: "NIOEmbedded", package: "swift-nio")],
            // Test data read through #filePath, not bundled as resources.
            exclude: ["Fixtures"]
        ),
    ],
    swiftLanguageModes: [.v6]
)

// Fuzz targets for `make fuzz` (see "Fuzzing and sanitizers" in README.md).
//
// Each is a libFuzzer entry point (`LLVMFuzzerTestOneInput`) with no `main` of
// its own: it links only under `swift build --sanitize=fuzzer`, which brings
// libFuzzer's driver. So they are declared only when DTLS_PROXYD_FUZZ is set in
// the environment, and a plain `swift build` (or `swift test`) never sees them.
if Context.environment["DTLS_PROXYD_FUZZ"] != nil {
    package.targets += [
        .executableTarget(name: "fuzz-records", dependencies: ["DTLSProxy"], path: "Fuzz/FuzzRecords"),
        .executableTarget(name: "fuzz-config", dependencies: ["DTLSProxy"], path: "Fuzz/FuzzConfig"),
    ]
}

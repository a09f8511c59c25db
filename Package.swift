// swift-tools-version:6.1
import PackageDescription

// The engine and the server run their per-event code on class state (connection handlers, the
// collection log); in release builds the runtime exclusivity checks of those accesses took about
// a tenth of the server's CPU under load (docs/BENCHMARKS.md). Debug builds, which the tests and
// sanitizer runs use, keep them.
let hotPathSettings: [SwiftSetting] = [
    .unsafeFlags(["-enforce-exclusivity=unchecked"], .when(configuration: .release)),
]

let package = Package(
    name: "exar-db",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "ExarCore", targets: ["ExarCore"]),
        .library(name: "ExarModel", targets: ["ExarModel"]),
        .library(name: "ExarClient", targets: ["ExarClient"]),
        .executable(name: "exar-db", targets: ["exar-db"]),
        .executable(name: "exar-inspect", targets: ["exar-inspect"]),
        .executable(name: "exar-bench", targets: ["exar-bench"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.0"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.0"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.0"),
        .package(url: "https://github.com/LebJe/TOMLKit.git", from: "0.6.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift.git", from: "0.2.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.0"),
        .package(url: "https://github.com/apple/swift-http-types.git", from: "1.8.0"),
    ],
    targets: [
        .systemLibrary(
            name: "CLZ4",
            pkgConfig: "liblz4",
            providers: [.apt(["liblz4-dev"])]
        ),
        // Value types shared by the engine, the protocol and the client (no storage, no network).
        .target(name: "ExarModel"),
        // CRC-32C with the CPU's instruction (SSE 4.2 / ARMv8 CRC), when there is one.
        .target(name: "CExarCRC"),
        // The storage engine: segments, batches, index, tag bitmaps, compression, scanners.
        .target(name: "ExarCore", dependencies: ["ExarModel", "CLZ4", "CExarCRC"], swiftSettings: hotPathSettings),
        // The wire protocol: messages, encoding and decoding, line framing.
        .target(name: "ExarNet", dependencies: ["ExarModel", .product(name: "NIOCore", package: "swift-nio")]),
        // The TCP server: connection state machine, auth, publishing and streaming.
        .target(
            name: "ExarServer",
            dependencies: [
                "ExarNet", "ExarCore", "ExarModel",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: hotPathSettings
        ),
        // The HTTP side of exar-db: the JSON API, Server-Sent Events, `/metrics` and the console's
        // static files (Console/, served from the binary's resources).
        .target(
            name: "ExarHTTP",
            dependencies: [
                "ExarCore", "ExarModel",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            resources: [.copy("Console")]
        ),
        // The async/await client library.
        .target(
            name: "ExarClient",
            dependencies: [
                "ExarNet", "ExarModel",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            ]
        ),
        // The server executable: CLI, TOML configuration, logging.
        .executableTarget(
            name: "exar-db",
            dependencies: [
                "ExarServer", "ExarHTTP", "ExarCore", "ExarModel",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "TOMLKit", package: "TOMLKit"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        // The segment dumper and verifier.
        .executableTarget(
            name: "exar-inspect",
            dependencies: [
                "ExarCore", "ExarModel",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            path: "tools/exar-inspect"
        ),
        // The load tool.
        .executableTarget(
            name: "exar-bench",
            dependencies: [
                "ExarNet", "ExarModel",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Histogram", package: "hdrhistogram-swift"),
            ],
            path: "tools/exar-bench"
        ),
        // Fuzzing: the code paths the fuzzers drive (also replayed by the tests), and the two
        // fuzzer executables (`make fuzz` builds them with -sanitize=fuzzer,address).
        .target(
            name: "ExarFuzzTargets",
            dependencies: ["ExarCore", "ExarNet", "ExarModel", .product(name: "NIOCore", package: "swift-nio")],
            path: "Fuzz/Targets"
        ),
        .executableTarget(name: "exar-fuzz-protocol", dependencies: ["ExarFuzzTargets"], path: "Fuzz/protocol"),
        .executableTarget(name: "exar-fuzz-segment", dependencies: ["ExarFuzzTargets"], path: "Fuzz/segment"),
        // A tiny publisher the crash tests run as a child process and kill with SIGKILL.
        .executableTarget(
            name: "exar-crash-helper",
            dependencies: ["ExarCore"],
            path: "Tests/ExarCrashHelper"
        ),
        .testTarget(
            name: "ExarCoreTests",
            dependencies: ["ExarCore", "ExarModel", "exar-crash-helper"]
        ),
        .testTarget(
            name: "ExarNetTests",
            dependencies: [
                "ExarNet", "ExarModel", "ExarFuzzTargets",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOTestUtils", package: "swift-nio"),
            ]
        ),
        .testTarget(
            name: "ExarServerTests",
            dependencies: [
                "ExarServer", "ExarHTTP", "ExarClient", "ExarCore", "ExarNet", "ExarModel", "exar-db", "exar-inspect", "exar-bench",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
    ],
    swiftLanguageModes: [.v6]
)

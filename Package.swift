// swift-tools-version:6.1
import PackageDescription

let package = Package(
    name: "exar-db",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "ExarCore", targets: ["ExarCore"]),
        .library(name: "ExarModel", targets: ["ExarModel"]),
    ],
    targets: [
        .systemLibrary(
            name: "CLZ4",
            pkgConfig: "liblz4",
            providers: [.apt(["liblz4-dev"])]
        ),
        // Value types shared by the engine, the protocol and the client (no storage, no network).
        .target(name: "ExarModel"),
        // The storage engine: segments, batches, index, tag bitmaps, compression, scanners.
        .target(name: "ExarCore", dependencies: ["ExarModel", "CLZ4"]),
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
    ],
    swiftLanguageModes: [.v6]
)

// swift-tools-version:6.1
import PackageDescription

// package-benchmark suites of the engine; a package of its own so `swift test` never builds them.
// Run: cd Benchmarks && swift package --allow-writing-to-package-directory benchmark
let package = Package(
    name: "exar-benchmarks",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(name: "exar-db", path: "../"),
        .package(url: "https://github.com/ordo-one/benchmark.git", from: "1.29.0", traits: ["MallocInterposer"]),
    ],
    targets: [
        .executableTarget(
            name: "ExarCoreBenchmarks",
            dependencies: [
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "ExarCore", package: "exar-db"),
                .product(name: "ExarModel", package: "exar-db"),
            ],
            path: "Benchmarks/ExarCoreBenchmarks",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        )
    ],
    swiftLanguageModes: [.v6]
)

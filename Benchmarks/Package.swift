// swift-tools-version:6.1
// The hot-path benchmarks, a package of their own so that apps depending on the library never
// resolve package-benchmark. It depends on the library by path. The main benchmark, `bench`,
// is a target of the root package (its sources are in bench/): `swift run -c release bench`
// from the repository's root.
import PackageDescription

let upcoming: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("InternalImportsByDefault"),
]

let package = Package(
    name: "swift-session-store-benchmarks",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(name: "swift-session-store", path: ".."),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        // Its default traits need a package not available here; MallocInterposer counts allocations.
        .package(url: "https://github.com/ordo-one/benchmark.git", from: "1.38.1", traits: ["MallocInterposer"]),
    ],
    targets: [
        // The C API the floor calls directly, declared here rather than exported by the library.
        .systemLibrary(name: "CBenchSQLite", path: "CBenchSQLite", pkgConfig: "sqlite3", providers: [.apt(["libsqlite3-dev"])]),
        // The hot path's operations, store and floor, shared by the two harnesses below.
        .target(
            name: "HotPath",
            dependencies: [
                .product(name: "SessionStoreCore", package: "swift-session-store"),
                .product(name: "SessionStoreSQLite", package: "swift-session-store"),
                "CBenchSQLite",
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "HotPath",
            swiftSettings: upcoming
        ),
        // package-benchmark: allocations (checked against .benchmarkBaselines/ in CI), wall clock, throughput.
        .executableTarget(
            name: "HotPathBenchmarks",
            dependencies: [
                "HotPath",
                .product(name: "Benchmark", package: "benchmark"),
            ],
            path: "Benchmarks/HotPathBenchmarks",
            swiftSettings: upcoming,
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
        // Instructions per operation under callgrind (Benchmarks/callgrind.sh); the client
        // requests' header comes with Debian's valgrind package.
        .target(name: "CCallgrind", path: "CCallgrind"),
        .executableTarget(
            name: "hot-path-ops",
            dependencies: ["HotPath", "CCallgrind"],
            path: "Tools/hot-path-ops",
            swiftSettings: upcoming
        ),
    ],
    swiftLanguageModes: [.v6]
)

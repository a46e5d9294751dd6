// swift-tools-version:6.1
// The benchmarks, a package of their own so that apps depending on the library never see a
// `bench` product nor resolve the benchmark's dependencies (issue 11). It depends on the
// library by path. From the repository's root:
//
//   swift run -c release --package-path Benchmarks bench            # embedded SQLite
//   swift run -c release --package-path Benchmarks --traits MySQL bench --backend mysql --url ...
import PackageDescription

let upcoming: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("InternalImportsByDefault"),
]

let package = Package(
    name: "swift-session-store-benchmarks",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "bench", targets: ["bench"]),
    ],
    traits: [
        .trait(
            name: "MySQL",
            description: "Builds bench's --backend mysql (needs libmariadb-dev). Off by default so "
                + "the main job needs only SQLite."
        ),
    ],
    dependencies: [
        .package(name: "swift-session-store", path: ".."),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift.git", from: "0.2.0"),
        // Its default traits need a package not available here; MallocInterposer counts allocations.
        .package(url: "https://github.com/ordo-one/benchmark.git", from: "1.38.1", traits: ["MallocInterposer"]),
    ],
    targets: [
        // The C APIs the floors call directly, declared here rather than exported by the library.
        .systemLibrary(name: "CBenchSQLite", path: "CBenchSQLite", pkgConfig: "sqlite3", providers: [.apt(["libsqlite3-dev"])]),
        .systemLibrary(name: "CBenchMariaDB", path: "CBenchMariaDB", pkgConfig: "libmariadb", providers: [.apt(["libmariadb-dev"])]),
        .executableTarget(
            name: "bench",
            dependencies: [
                .product(name: "SessionStore", package: "swift-session-store"),
                .product(name: "SessionStoreSQLite", package: "swift-session-store"),
                "CBenchSQLite",
                .product(name: "SessionStoreMySQL", package: "swift-session-store", condition: .when(traits: ["MySQL"])),
                .target(name: "CBenchMariaDB", condition: .when(traits: ["MySQL"])),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Histogram", package: "hdrhistogram-swift"),
            ],
            path: "bench",
            swiftSettings: upcoming
        ),
        // The hot path's operations, store and floor, shared by the two harnesses below.
        .target(
            name: "HotPath",
            dependencies: [
                .product(name: "SessionStore", package: "swift-session-store"),
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

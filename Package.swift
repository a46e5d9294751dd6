// swift-tools-version:6.1
import PackageDescription

let upcoming: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("InternalImportsByDefault"),
]

let package = Package(
    name: "swift-session-store",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "SessionStoreCore", targets: ["SessionStoreCore"]),
        .library(name: "SessionStoreSQLite", targets: ["SessionStoreSQLite"]),
        .library(name: "SessionStoreMySQL", targets: ["SessionStoreMySQL"]),
        // PostgreSQL backend: builds only with the Postgres trait.
        .library(name: "SessionStorePostgres", targets: ["SessionStorePostgres"]),
        .library(name: "SessionStoreTesting", targets: ["SessionStoreTesting"]),
        .executable(name: "session-store", targets: ["session-store"]),
        // Framework drivers: each builds only with its trait enabled.
        .library(name: "SessionStoreVapor", targets: ["SessionStoreVapor"]),
        .library(name: "SessionStoreHummingbird", targets: ["SessionStoreHummingbird"]),
    ],
    traits: [
        .trait(
            name: "Vapor",
            description: "Builds SessionStoreVapor, the Vapor 4 session driver. Off by default, so "
                + "users who leave it off never resolve or build Vapor."
        ),
        .trait(
            name: "Hummingbird",
            description: "Builds SessionStoreHummingbird, the Hummingbird 2 PersistDriver and session "
                + "middleware. Off by default, so users who leave it off never resolve or build Hummingbird."
        ),
        .trait(
            name: "Postgres",
            description: "Builds SessionStorePostgres, the PostgreSQL backend over postgres-nio (and the "
                + "CLI's postgres:// URLs). Off by default, so users who leave it off never resolve or build "
                + "postgres-nio."
        ),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-crypto.git", from: "3.12.3"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        // `swift package generate-documentation` (the DocC catalogs); a command plugin, linked
        // into nothing an app builds.
        .package(url: "https://github.com/swiftlang/swift-docc-plugin", from: "1.5.0"),
        // Used only under the Vapor / Hummingbird traits. Hummingbird with no traits of its own:
        // the driver uses neither swift-configuration (ConfigurationSupport) nor full Foundation's
        // form coding (FullFoundation), and declaring it without `traits:` would switch its default
        // traits on in every app, even one that asks for `traits: []` as hummingbird-auth does.
        // Vapor declares no traits.
        .package(url: "https://github.com/vapor/vapor.git", from: "4.122.3"),
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1", traits: []),
        .package(url: "https://github.com/hummingbird-project/hummingbird-auth.git", from: "2.5.0"),
        // Used only under the Postgres trait.
        .package(url: "https://github.com/vapor/postgres-nio.git", from: "1.33.2"),
    ],
    targets: [
        // Core: policy, ids, codec, errors. Imports no database.
        .target(
            name: "SessionStoreCore",
            dependencies: [
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: upcoming
        ),
        // Embedded default backend over the system libsqlite3.
        .systemLibrary(
            name: "CSessionStoreSQLite",
            pkgConfig: "sqlite3",
            providers: [.apt(["libsqlite3-dev"])]
        ),
        .target(
            name: "SessionStoreSQLite",
            dependencies: [
                "SessionStoreCore", "CSessionStoreSQLite",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
            ],
            swiftSettings: upcoming
        ),
        // Clustered backend over MariaDB Connector/C; only users of this product build it.
        .systemLibrary(
            name: "CSessionStoreMariaDB",
            pkgConfig: "libmariadb",
            providers: [.apt(["libmariadb-dev"])]
        ),
        .target(
            name: "SessionStoreMySQL",
            dependencies: [
                "SessionStoreCore", "CSessionStoreMariaDB",
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: upcoming
        ),
        // PostgreSQL backend over postgres-nio (non-blocking, no C client); its sources are empty
        // unless the Postgres trait is enabled.
        .target(
            name: "SessionStorePostgres",
            dependencies: [
                "SessionStoreCore",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "PostgresNIO", package: "postgres-nio", condition: .when(traits: ["Postgres"])),
            ],
            swiftSettings: upcoming
        ),
        // The backend conformance suite, usable by third-party backends too.
        .target(
            name: "SessionStoreTesting",
            dependencies: ["SessionStoreCore", .product(name: "Logging", package: "swift-log")],
            swiftSettings: upcoming
        ),
        // The operator CLI: schema, stats, cleanup, copy, check, upgrade.
        .executableTarget(
            name: "session-store",
            dependencies: [
                "SessionStoreCore", "SessionStoreSQLite", "SessionStoreMySQL",
                .target(name: "SessionStorePostgres", condition: .when(traits: ["Postgres"])),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: upcoming
        ),
        // The benchmark, `swift run -c release bench` from the repository's root (sources in
        // Benchmarks/bench). Built only from what the library already depends on and not a
        // product, so an app that depends on this package resolves nothing for it.
        // Under the Postgres trait it also measures the PostgreSQL backend, against postgres-nio's
        // prepared statements and libpq's (CBenchLibpq, Debian's libpq-dev).
        .executableTarget(
            name: "bench",
            dependencies: [
                "SessionStoreCore", "SessionStoreSQLite", "CSessionStoreSQLite", "SessionStoreMySQL", "CSessionStoreMariaDB",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .target(name: "SessionStorePostgres", condition: .when(traits: ["Postgres"])),
                .target(name: "CBenchLibpq", condition: .when(traits: ["Postgres"])),
                .product(name: "PostgresNIO", package: "postgres-nio", condition: .when(traits: ["Postgres"])),
            ],
            path: "Benchmarks/bench",
            swiftSettings: upcoming
        ),
        // libpq for the benchmark's PostgreSQL floor; used only under the Postgres trait.
        .systemLibrary(
            name: "CBenchLibpq",
            path: "Benchmarks/CBenchLibpq",
            pkgConfig: "libpq",
            providers: [.apt(["libpq-dev"])]
        ),
        // Test tools, never part of a product: the child process of the SQLite
        // crash and lock tests, and libFuzzer targets (`bash .ci/fuzz`; built normally they
        // are reproducers: `fuzz-session-id FILE...` replays inputs).
        .executableTarget(
            name: "session-store-crash-writer",
            dependencies: ["SessionStoreCore", "SessionStoreSQLite", "CSessionStoreSQLite"],
            path: "Tests/CrashWriter",
            swiftSettings: upcoming
        ),
        .executableTarget(
            name: "fuzz-session-id",
            dependencies: ["SessionStoreCore", "SessionStoreTestSupport"],
            path: "Tests/Fuzz/SessionID",
            swiftSettings: upcoming
        ),
        .executableTarget(
            name: "fuzz-attribute-codec",
            dependencies: ["SessionStoreCore", "SessionStoreTestSupport"],
            path: "Tests/Fuzz/AttributeCodec",
            swiftSettings: upcoming
        ),
        .executableTarget(
            name: "fuzz-session-api",
            dependencies: ["SessionStoreCore", "SessionStoreTestSupport"],
            path: "Tests/Fuzz/SessionAPI",
            swiftSettings: upcoming
        ),
        .executableTarget(
            name: "fuzz-store-url",
            dependencies: ["SessionStoreCore", "SessionStoreTestSupport"],
            path: "Tests/Fuzz/StoreURL",
            swiftSettings: upcoming
        ),
        .executableTarget(
            name: "fuzz-key-ring-file",
            dependencies: ["SessionStoreCore", "SessionStoreTestSupport"],
            path: "Tests/Fuzz/KeyRingFile",
            swiftSettings: upcoming
        ),
        .executableTarget(
            name: "fuzz-encrypted-row",
            dependencies: ["SessionStoreCore", "SessionStoreTestSupport"],
            path: "Tests/Fuzz/EncryptedRow",
            swiftSettings: upcoming
        ),
        // The repository's own test tooling, never part of a product: the fuzz checks (also
        // compiled by `bash .ci/fuzz`), captured logs and child processes for tests.
        .target(
            name: "SessionStoreTestSupport",
            dependencies: ["SessionStoreCore", .product(name: "Logging", package: "swift-log")],
            path: "Tests/Support",
            swiftSettings: upcoming
        ),
        // The database the two driver test targets run on, with writes counted by triggers.
        .target(
            name: "SessionStoreDriverTestSupport",
            dependencies: [
                "SessionStoreCore", "SessionStoreSQLite", "CSessionStoreSQLite", "SessionStoreMySQL",
                .target(name: "SessionStorePostgres", condition: .when(traits: ["Postgres"])),
            ],
            path: "Tests/DriverSupport",
            swiftSettings: upcoming
        ),
        // Framework drivers; their sources are empty unless their trait is enabled.
        .target(
            name: "SessionStoreVapor",
            dependencies: [
                "SessionStoreCore",
                .product(name: "Vapor", package: "vapor", condition: .when(traits: ["Vapor"])),
            ],
            swiftSettings: upcoming
        ),
        .target(
            name: "SessionStoreHummingbird",
            dependencies: [
                "SessionStoreCore",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Hummingbird", package: "hummingbird", condition: .when(traits: ["Hummingbird"])),
                .product(name: "HummingbirdAuth", package: "hummingbird-auth", condition: .when(traits: ["Hummingbird"])),
            ],
            swiftSettings: upcoming
        ),
        .testTarget(
            name: "SessionStoreVaporTests",
            dependencies: [
                "SessionStoreCore", "SessionStoreVapor", "SessionStoreSQLite", "SessionStoreMySQL", "CSessionStoreSQLite",
                "SessionStoreDriverTestSupport", "SessionStoreTestSupport",
                .target(name: "SessionStorePostgres", condition: .when(traits: ["Postgres"])),
                .product(name: "VaporTesting", package: "vapor", condition: .when(traits: ["Vapor"])),
            ],
            swiftSettings: upcoming
        ),
        .testTarget(
            name: "SessionStoreHummingbirdTests",
            dependencies: [
                "SessionStoreCore", "SessionStoreHummingbird", "SessionStoreSQLite", "SessionStoreMySQL", "CSessionStoreSQLite",
                "SessionStoreDriverTestSupport", "SessionStoreTestSupport",
                .target(name: "SessionStorePostgres", condition: .when(traits: ["Postgres"])),
                .product(name: "HummingbirdTesting", package: "hummingbird", condition: .when(traits: ["Hummingbird"])),
                .product(name: "HummingbirdAuth", package: "hummingbird-auth", condition: .when(traits: ["Hummingbird"])),
                .product(name: "ServiceLifecycleTestKit", package: "swift-service-lifecycle"),
            ],
            swiftSettings: upcoming
        ),
        .testTarget(
            name: "SessionStoreTests",
            dependencies: [
                "SessionStoreCore", "SessionStoreTesting", "SessionStoreTestSupport",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "MetricsTestKit", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "ServiceLifecycleTestKit", package: "swift-service-lifecycle"),
            ],
            swiftSettings: upcoming
        ),
        .testTarget(
            name: "SessionStoreSQLiteTests",
            dependencies: [
                "SessionStoreCore", "SessionStoreSQLite", "SessionStoreTesting", "SessionStoreTestSupport", "CSessionStoreSQLite",
            ],
            exclude: ["Fixtures"],
            swiftSettings: upcoming
        ),
        .testTarget(
            name: "SessionStoreMySQLTests",
            dependencies: ["SessionStoreCore", "SessionStoreMySQL", "SessionStoreTesting", "SessionStoreSQLite"],
            swiftSettings: upcoming
        ),
        // The PostgreSQL backend on a private server started by .ci/postgres.sh; its
        // sources are empty unless the Postgres trait is enabled.
        .testTarget(
            name: "SessionStorePostgresTests",
            dependencies: [
                "SessionStoreCore", "SessionStorePostgres", "SessionStoreTesting", "SessionStoreSQLite",
                .product(name: "PostgresNIO", package: "postgres-nio", condition: .when(traits: ["Postgres"])),
            ],
            swiftSettings: upcoming
        ),
        // The MySQL backend on a 3-node Galera cluster started by .ci/galera.sh.
        .testTarget(
            name: "SessionStoreGaleraTests",
            dependencies: ["SessionStoreCore", "SessionStoreMySQL", "SessionStoreTesting"],
            swiftSettings: upcoming
        ),
        // Runs the built session-store executable as a child process.
        .testTarget(
            name: "SessionStoreCLITests",
            dependencies: [
                "session-store", "SessionStoreCore", "SessionStoreSQLite", "SessionStoreMySQL", "CSessionStoreSQLite",
                "SessionStoreTesting", "SessionStoreTestSupport",
                .target(name: "SessionStorePostgres", condition: .when(traits: ["Postgres"])),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: upcoming
        ),
    ],
    swiftLanguageModes: [.v6]
)

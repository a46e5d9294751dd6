// swift-tools-version:6.1
// End-to-end HTTP comparison of session back ends: small Vapor and Hummingbird apps,
// driven by wrk through `run.py`, and in process under callgrind through `callgrind.py`. A
// separate package, so neither the library's users nor `swift run -c release bench` ever
// resolve Fluent.
import PackageDescription

let package = Package(
    name: "http-bench",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(name: "swift-session-store", path: "../..", traits: ["Vapor", "Hummingbird", "Postgres"]),
        .package(url: "https://github.com/vapor/vapor.git", from: "4.122.3"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-http-types.git", from: "1.8.0"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.3"),
        .package(url: "https://github.com/vapor/fluent.git", from: "4.13.0"),
        .package(url: "https://github.com/vapor/fluent-sqlite-driver.git", from: "4.9.0"),
        .package(url: "https://github.com/vapor/fluent-postgres-driver.git", from: "2.14.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
        .package(url: "https://github.com/hummingbird-project/hummingbird-auth.git", from: "2.5.0"),
    ],
    targets: [
        // The Hummingbird apps and the list of variants.
        .target(
            name: "HTTPApps",
            dependencies: [
                .product(name: "SessionStoreCore", package: "swift-session-store"),
                .product(name: "SessionStoreSQLite", package: "swift-session-store"),
                .product(name: "SessionStoreHummingbird", package: "swift-session-store"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdAuth", package: "hummingbird-auth"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
            ],
            swiftSettings: [.enableUpcomingFeature("ExistentialAny")]
        ),
        // The Vapor apps.
        .target(
            name: "VaporApps",
            dependencies: [
                "HTTPApps",
                .product(name: "SessionStoreCore", package: "swift-session-store"),
                .product(name: "SessionStoreSQLite", package: "swift-session-store"),
                .product(name: "SessionStorePostgres", package: "swift-session-store"),
                .product(name: "SessionStoreVapor", package: "swift-session-store"),
                .product(name: "Vapor", package: "vapor"),
                .product(name: "Fluent", package: "fluent"),
                .product(name: "FluentSQLiteDriver", package: "fluent-sqlite-driver"),
                .product(name: "FluentPostgresDriver", package: "fluent-postgres-driver"),
            ],
            swiftSettings: [.enableUpcomingFeature("ExistentialAny")]
        ),
        .executableTarget(
            name: "http-app",
            dependencies: ["HTTPApps", "VaporApps", .product(name: "Hummingbird", package: "hummingbird")],
            swiftSettings: [.enableUpcomingFeature("ExistentialAny")]
        ),
        // The apps driven in process, for callgrind (`callgrind.py`).
        .executableTarget(
            name: "http-callgrind",
            dependencies: [
                "HTTPApps",
                "VaporApps",
                .product(name: "Vapor", package: "vapor"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            swiftSettings: [.enableUpcomingFeature("ExistentialAny")]
        ),
    ],
    swiftLanguageModes: [.v6]
)

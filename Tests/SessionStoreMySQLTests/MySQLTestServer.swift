import Foundation
import SessionStoreCore
@testable import SessionStoreMySQL
import Testing

/// The server the MySQL tests use: `SESSION_STORE_MYSQL_URL`, set by `bash .ci/test`.
enum MySQLTestServer {
    static let url: String? = {
        let value = ProcessInfo.processInfo.environment["SESSION_STORE_MYSQL_URL"]
        return value?.isEmpty == false ? value : nil
    }()

    /// Whether this is a CI run, where the MySQL tests must run.
    static let isCI: Bool = {
        let value = ProcessInfo.processInfo.environment["CI"]?.lowercased() ?? ""
        return !value.isEmpty && value != "false" && value != "0"
    }()

    static var available: Bool { url != nil }

    /// The server's base configuration with a table of its own.
    static func configuration(
        table prefix: String, _ customize: (inout MySQLConfiguration) -> Void = { _ in }
    ) throws -> MySQLConfiguration {
        var url = try StoreURL(try #require(url, "SESSION_STORE_MYSQL_URL not set"))
        var configuration = try MySQLConfiguration(url: &url)
        configuration.table = uniqueTable(prefix)
        customize(&configuration)
        return configuration
    }

    /// A table name no other test uses.
    static func uniqueTable(_ prefix: String) -> String {
        let suffix = String(UInt64.random(in: 0...UInt64.max), radix: 36)
        return String("t_\(prefix)_\(suffix)".prefix(64))
    }

    /// Opens a backend on a table of its own, runs `body`, then drops the table and closes.
    static func withBackend(
        _ prefix: String, _ customize: (inout MySQLConfiguration) -> Void = { _ in },
        _ body: (MySQLBackend) async throws -> Void
    ) async throws {
        let backend = try await MySQLBackend(configuration: try configuration(table: prefix, customize))
        do {
            try await body(backend)
        } catch {
            try? await drop(backend)
            try? await backend.close()
            throw error
        }
        try await drop(backend)
        try await backend.close()
    }

    static func drop(_ backend: MySQLBackend) async throws {
        let table = backend.configuration.table
        try await backend.call("drop", retry: .again) { connection, _ in
            try connection.run("DROP TABLE IF EXISTS `\(table)`")
            try connection.run("DELETE FROM session_store_schema WHERE name = '\(table)'")
            try connection.run("DELETE FROM session_store_lease WHERE name = '\(table)'")
        }
    }

    /// Text rows of a query, run on one of the backend's connections.
    static func rows(_ backend: MySQLBackend, _ sql: String) async throws -> [[String?]] {
        try await backend.call("query", retry: .again) { connection, _ in try connection.rows(sql) }
    }

    /// A backend with one pooled connection through a ``CuttingProxy``, no idle pings (so the
    /// proxy sees only the calls' own commands), and a table of its own; `customize` may
    /// change the configuration further.
    static func withProxiedBackend(
        _ prefix: String, _ customize: (inout MySQLConfiguration) -> Void = { _ in },
        _ body: (MySQLBackend, CuttingProxy) async throws -> Void
    ) async throws {
        var configuration = try Self.configuration(table: prefix)
        let proxy = try CuttingProxy(targetPort: UInt16(configuration.port))
        defer { proxy.stop() }
        configuration.host = "127.0.0.1"
        configuration.port = Int(proxy.port)
        configuration.poolSize = 1
        configuration.healthCheckInterval = .seconds(3600)
        customize(&configuration)
        try await Self.withBackend(prefix, { $0 = configuration }) { backend in
            try await body(backend, proxy)
        }
    }
}

/// Fails a CI run that has no MySQL server, so the MySQL suite never skips silently there.
@Suite("MySQL server availability")
struct MySQLAvailabilityTests {
    @Test(
        "SESSION_STORE_MYSQL_URL is set (required in CI)",
        .enabled(if: MySQLTestServer.available || MySQLTestServer.isCI)
    )
    func serverConfigured() {
        #expect(
            MySQLTestServer.url != nil,
            "SESSION_STORE_MYSQL_URL is missing although CI is set: the MySQL suite cannot run; use bash .ci/test"
        )
    }
}

extension Trait where Self == ConditionTrait {
    /// SESSION_STORE_MYSQL_URL not set: MySQL suite not run; use bash .ci/test
    static var mysqlServer: ConditionTrait {
        .enabled(
            if: MySQLTestServer.available,
            "SESSION_STORE_MYSQL_URL not set: MySQL suite not run; use bash .ci/test"
        )
    }
}

#if Postgres
import Foundation
import SessionStoreCore
@testable import SessionStorePostgres
import Testing

/// The server the PostgreSQL tests use: `SESSION_STORE_POSTGRES_URL`, set by `bash .ci/test`
/// from `.ci/postgres.sh`. These tests build only with the Postgres trait, and every test
/// that needs the server fails (never skips) when the variable is missing.
enum PostgresTestServer {
    static let environment = ProcessInfo.processInfo.environment

    static func variable(_ name: String) throws -> String {
        let value = environment[name].flatMap { $0.isEmpty ? nil : $0 }
        return try #require(value, "\(name) is not set: the PostgreSQL tests need a server; run them with bash .ci/test")
    }

    /// The shared server's URL.
    static func url() throws -> String { try variable("SESSION_STORE_POSTGRES_URL") }

    /// The server's base configuration with a table of its own.
    static func configuration(
        table prefix: String, _ customize: (inout PostgresConfiguration) -> Void = { _ in }
    ) throws -> PostgresConfiguration {
        var url = try StoreURL(try url())
        var configuration = try PostgresConfiguration(url: &url)
        configuration.table = uniqueTable(prefix)
        customize(&configuration)
        return configuration
    }

    /// A table name no other test uses (within PostgreSQL's limit for this backend).
    static func uniqueTable(_ prefix: String) -> String {
        let suffix = String(UInt64.random(in: 0...UInt64.max), radix: 36)
        return String("t_\(prefix.prefix(30))_\(suffix)")
    }

    /// Opens a backend on a table of its own, runs `body`, then drops the table and closes,
    /// whether `body` passed or failed.
    static func withBackend(
        _ prefix: String, _ customize: (inout PostgresConfiguration) -> Void = { _ in },
        _ body: (PostgresBackend) async throws -> Void
    ) async throws {
        let backend = try await PostgresBackend(configuration: try configuration(table: prefix, customize))
        let outcome = await PostgresBackend.settle { try await body(backend) }
        let dropped = await PostgresBackend.settle { try await drop(backend) }
        try await backend.close()
        try outcome.get()
        try dropped.get()
    }

    /// Drops the backend's table and its schema and lease rows.
    static func drop(_ backend: PostgresBackend) async throws {
        let table = backend.configuration.table
        try await backend.call("drop", retry: .again) { connection, _ in
            try await PostgresBackend.run(connection, "DROP TABLE IF EXISTS \"\(table)\"")
            _ = try await PostgresBackend.rows(connection, "DELETE FROM session_store_schema WHERE name = $1", [.text(table)])
            _ = try await PostgresBackend.rows(connection, "DELETE FROM session_store_lease WHERE name = $1", [.text(table)])
        }
    }

    /// Runs `sql` on one of the backend's connections and returns how many rows came back.
    @discardableResult
    static func execute(_ backend: PostgresBackend, _ sql: String, _ values: [PostgresValue] = []) async throws -> Int {
        try await backend.call("test", retry: .again) { connection, _ in
            try await PostgresBackend.count(connection, PostgresKeyedStatement(sql), values)
        }
    }

    /// A backend with one pooled connection through a ``CuttingProxy`` (TLS off: the proxy
    /// reads the protocol), no keep-alive queries, and a table of its own; `customize`
    /// changes the configuration further.
    static func withProxiedBackend(
        _ prefix: String, _ customize: (inout PostgresConfiguration) -> Void = { _ in },
        _ body: (PostgresBackend, CuttingProxy) async throws -> Void
    ) async throws {
        let configuration = try Self.configuration(table: prefix)
        let proxy = try CuttingProxy(targetPort: UInt16(configuration.port), wire: .postgres)
        defer { proxy.stop() }
        try await Self.withBackend(prefix, {
            $0.host = "127.0.0.1"
            $0.port = Int(proxy.port)
            $0.poolSize = 1
            $0.tls.mode = .disable
            customize(&$0)
        }) { (backend: PostgresBackend) async throws in
            try await body(backend, proxy)
        }
    }
}
#endif

#if Postgres
import Foundation
import SessionStoreCore
@testable import SessionStorePostgres
import Testing

/// TLS against the test server, whose certificate `.ci/postgres.sh` makes with openssl (a CA
/// of its own, `subjectAltName` 127.0.0.1 and localhost), and against a private server
/// without TLS. Each test looks at `pg_stat_ssl` for its own connection.
@Suite("PostgreSQL TLS")
struct PostgresTLSTests {
    /// Whether the backend's pooled connection is encrypted, by the server's account.
    static func encrypted(_ backend: PostgresBackend) async throws -> Bool {
        try await backend.call("test", retry: .again) { connection, _ in
            let rows = try await PostgresBackend.rows(connection, "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()", [])
            return try rows.first?.decode(Bool.self) ?? false
        }
    }

    static func withTLS(
        _ prefix: String, mode: PostgresConfiguration.TLSMode, ca: String?, _ body: (PostgresBackend) async throws -> Void
    ) async throws {
        try await PostgresTestServer.withBackend(prefix, {
            $0.tls.mode = mode
            $0.tls.caFile = ca
        }, body)
    }

    @Test func verifyFullWithTheServersCAConnectsEncrypted() async throws {
        let ca = try PostgresTestServer.variable("SESSION_STORE_POSTGRES_CA")
        try await Self.withTLS("tls_full", mode: .verifyFull, ca: ca) { (backend: PostgresBackend) async throws in
            #expect(try await Self.encrypted(backend))
        }
    }

    @Test func verifyFullWithAnotherCAFails() async throws {
        let wrong = try PostgresTestServer.variable("SESSION_STORE_POSTGRES_WRONG_CA")
        var configuration = try PostgresTestServer.configuration(table: "tls_wrong")
        configuration.tls.mode = .verifyFull
        configuration.tls.caFile = wrong
        await expectStorageError(.connection) { try await PostgresBackend(configuration: configuration) }
    }

    @Test func requireWithAnotherCAFailsToo() async throws {
        let wrong = try PostgresTestServer.variable("SESSION_STORE_POSTGRES_WRONG_CA")
        var configuration = try PostgresTestServer.configuration(table: "tls_wrong_require")
        configuration.tls.mode = .require
        configuration.tls.caFile = wrong
        await expectStorageError(.connection) { try await PostgresBackend(configuration: configuration) }
    }

    @Test func requireWithoutACAConnectsEncrypted() async throws {
        try await Self.withTLS("tls_require", mode: .require, ca: nil) { (backend: PostgresBackend) async throws in
            #expect(try await Self.encrypted(backend))
        }
    }

    @Test func preferUsesTLSWhenTheServerOffersIt() async throws {
        try await Self.withTLS("tls_prefer", mode: .prefer, ca: nil) { (backend: PostgresBackend) async throws in
            #expect(try await Self.encrypted(backend))
        }
    }

    @Test func disableConnectsInClearText() async throws {
        try await Self.withTLS("tls_disable", mode: .disable, ca: nil) { (backend: PostgresBackend) async throws in
            #expect(try await !Self.encrypted(backend))
        }
    }

    @Test func unreadableCAFileIsAConfigurationError() async throws {
        var configuration = try PostgresTestServer.configuration(table: "tls_noca")
        configuration.tls.mode = .verifyFull
        configuration.tls.caFile = "/nonexistent/ca.pem"
        await #expect(throws: SessionStoreError.self) { try await PostgresBackend(configuration: configuration) }
    }

    /// A server without TLS: `require` refuses it, `prefer` falls back to clear text.
    @Test func serverWithoutTLSFailsUnderRequireAndServesUnderPrefer() async throws {
        _ = try PostgresTestServer.variable(PrivateServer.Engine.postgres.controlVariable)
        let server = try await onThread { try PrivateServer.start(.postgres, plain: true) }
        defer { server.stop() }
        var url = try StoreURL(server.url + "?ssl_mode=require")
        let error = await expectStorageError(.connection) { try await PostgresBackend(configuration: try PostgresConfiguration(url: &url)) }
        #expect(error?.message.contains("TLS") == true, "\(String(describing: error))")
        var plain = try StoreURL(server.url + "?ssl_mode=prefer")
        let backend = try await PostgresBackend(configuration: try PostgresConfiguration(url: &plain))
        #expect(try await !Self.encrypted(backend))
        try await backend.close()
    }
}
#endif

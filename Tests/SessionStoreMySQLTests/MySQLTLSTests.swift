import SessionStore
@testable import SessionStoreMySQL
import Testing

/// Issue 12, TLS: a mode that asks for TLS never connects in clear text, and a certificate
/// that does not verify fails the open. The TLS server is private to this suite, started by
/// `.ci/mariadb.sh start DIR tls` with a certificate made at start-up.
@Suite(
    "MySQL TLS", .serialized, .mysqlServer,
    .enabled(if: PrivateServer.control != nil || MySQLTestServer.isCI, "SESSION_STORE_MARIADB_CTL not set: use bash .ci/test")
)
struct MySQLTLSTests {
    /// Runs `body` with a private server that speaks TLS, stopped afterwards.
    private static func withTLSServer(_ body: (PrivateServer) async throws -> Void) async throws {
        let server = try PrivateServer.start(tls: true)
        defer { server.stop() }
        try await body(server)
    }

    private static func open(_ url: String) async throws -> MySQLBackend {
        var storeURL = try StoreURL(url)
        var configuration = try MySQLConfiguration(url: &storeURL)
        configuration.table = MySQLTestServer.uniqueTable("tls")
        return try await MySQLBackend(configuration: configuration)
    }

    /// The cipher of the backend's connection, as the server reports it (empty: clear text).
    private static func cipher(_ backend: MySQLBackend) async throws -> String {
        let rows = try await MySQLTestServer.rows(backend, "SHOW SESSION STATUS LIKE 'Ssl_cipher'")
        return rows.first?[1] ?? ""
    }

    @Test func requiredAgainstAServerWithoutTLSFails() async throws {
        let url = try #require(MySQLTestServer.url) + "?ssl_mode=required"
        let error = await expectStorageError(.connection) { try await Self.open(url) }
        let text = "\(try #require(error))"
        #expect(text.contains("not encrypted"), "\(text)")
        #expect(!text.contains(try MySQLTestServer.configuration(table: "x").password ?? "\u{0}"))
    }

    @Test func requiredWithTheCAConnectsEncrypted() async throws {
        try await Self.withTLSServer { (server: PrivateServer) async throws in
            let backend = try await Self.open(server.url + "?ssl_mode=required&ssl_ca=\(try #require(server.ca))")
            #expect(try await Self.cipher(backend) != "")
            #expect(try await backend.insert(SessionKey(value: "k"), SessionRecord(data: [1], version: 1, createdAt: 1, expiresAt: 9_000)))
            try await MySQLTestServer.drop(backend)
            try await backend.close()
        }
    }

    @Test func verifyIdentityWithTheCAConnectsEncrypted() async throws {
        try await Self.withTLSServer { (server: PrivateServer) async throws in
            let backend = try await Self.open(server.url + "?ssl_mode=verify_identity&ssl_ca=\(try #require(server.ca))")
            #expect(try await Self.cipher(backend) != "")
            try await MySQLTestServer.drop(backend)
            try await backend.close()
        }
    }

    @Test func verifyIdentityWithAWrongCAFails() async throws {
        try await Self.withTLSServer { (server: PrivateServer) async throws in
            let url = server.url + "?ssl_mode=verify_identity&ssl_ca=\(try #require(server.wrongCA))"
            let error = await expectStorageError(.connection) { try await Self.open(url) }
            #expect("\(try #require(error))".contains("TLS"))
        }
    }

    @Test func preferredWithoutOptionsStillWorksAgainstATLSServer() async throws {
        try await Self.withTLSServer { (server: PrivateServer) async throws in
            let backend = try await Self.open(server.url)
            _ = try await backend.load(SessionKey(value: "k"), now: 1)
            try await MySQLTestServer.drop(backend)
            try await backend.close()
        }
    }
}

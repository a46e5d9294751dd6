#if Postgres
import SessionStore
@testable import SessionStorePostgres
import Testing

@Suite("PostgreSQL configuration URLs")
struct PostgresConfigurationTests {
    @Test func fullURLSetsEveryOption() throws {
        var url = try StoreURL(
            "postgres://app:s3cret@db.example:5433/app?table=web_sessions&pool=4&connect_timeout=3s"
                + "&statement_timeout=250ms&ssl_mode=verify-full&ssl_ca=/etc/ca.pem")
        let configuration = try PostgresConfiguration(url: &url)
        try url.checkAllTaken()
        #expect(configuration.host == "db.example")
        #expect(configuration.port == 5433)
        #expect(configuration.user == "app")
        #expect(configuration.password == "s3cret")
        #expect(configuration.database == "app")
        #expect(configuration.table == "web_sessions")
        #expect(configuration.poolSize == 4)
        #expect(configuration.connectTimeout == .seconds(3))
        #expect(configuration.statementTimeout == .milliseconds(250))
        #expect(configuration.tls.mode == .verifyFull)
        #expect(configuration.tls.caFile == "/etc/ca.pem")
        #expect(configuration.unixSocket == nil)
    }

    @Test func defaultsFollowLibpq() throws {
        var url = try StoreURL("postgresql://app@db/sessions_db")
        let configuration = try PostgresConfiguration(url: &url)
        try url.checkAllTaken()
        #expect(configuration.port == 5432)
        #expect(configuration.password == nil)
        #expect(configuration.table == "sessions")
        #expect(configuration.poolSize == 16)
        #expect(configuration.statementTimeout == .seconds(30))
        #expect(configuration.tls == PostgresConfiguration.TLS())
        #expect(configuration.tls.mode == .prefer)
    }

    @Test func poolAndQueryTimeoutsAreRead() throws {
        var url = try StoreURL("postgres://app@db/app?pool_timeout=250ms&query_timeout=40s&statement_timeout=30s")
        let configuration = try PostgresConfiguration(url: &url)
        try url.checkAllTaken()
        #expect(configuration.poolWaitTimeout == .milliseconds(250))
        #expect(configuration.queryTimeout == .seconds(40))
        #expect(configuration.effectiveQueryTimeout == .seconds(40))
    }

    @Test func clientTimeoutDefaultsBoundEveryCall() throws {
        var url = try StoreURL("postgres://app@db/app")
        let configuration = try PostgresConfiguration(url: &url)
        #expect(configuration.poolWaitTimeout == .seconds(30))
        #expect(configuration.connectTimeout == .seconds(10))
        #expect(configuration.queryTimeout == nil)
        #expect(configuration.effectiveQueryTimeout == .seconds(35), "5 s past the 30 s statement timeout")
    }

    @Test(arguments: [
        ("statement_timeout=60s", Duration.seconds(65)),
        ("statement_timeout=250ms", .milliseconds(5_250)),
        ("statement_timeout=off", .seconds(35)),
    ])
    func queryTimeoutFollowsTheStatementTimeoutUnlessGiven(_ option: String, _ expected: Duration) throws {
        var url = try StoreURL("postgres://app@db/app?" + option)
        #expect(try PostgresConfiguration(url: &url).effectiveQueryTimeout == expected)
    }

    @Test func queryTimeoutOffDisablesTheClientDeadline() throws {
        var url = try StoreURL("postgres://app@db/app?query_timeout=off")
        let configuration = try PostgresConfiguration(url: &url)
        #expect(configuration.queryTimeout == .zero)
        #expect(configuration.effectiveQueryTimeout == nil)
    }

    @Test func backendRefusesAQueryTimeoutNotAboveTheStatementTimeoutBeforeConnecting() async throws {
        // Port 1 on loopback has no server: an attempt to connect would be a StorageError.
        var configuration = PostgresConfiguration(host: "127.0.0.1", port: 1, user: "app", database: "app")
        configuration.statementTimeout = .seconds(30)
        configuration.queryTimeout = .seconds(30)
        await #expect(throws: SessionStoreError.self) { _ = try await PostgresBackend(configuration: configuration) }
        configuration.queryTimeout = nil
        configuration.poolWaitTimeout = .zero
        await #expect(throws: SessionStoreError.self) { _ = try await PostgresBackend(configuration: configuration) }
    }

    @Test func severalHostsAreReadInOrderWithTheirPorts() throws {
        var url = try StoreURL("postgres://app:pw@db1:5433,db2,[::1]:5434/app?host_retry=2s")
        let configuration = try PostgresConfiguration(url: &url)
        try url.checkAllTaken()
        #expect(configuration.hosts == [
            PostgresHost(host: "db1", port: 5433), PostgresHost(host: "db2", port: 5432), PostgresHost(host: "::1", port: 5434),
        ])
        #expect(configuration.host == "db1" && configuration.port == 5433)
        #expect(configuration.hostRetryInterval == .seconds(2))
        #expect(configuration.description.contains("db1:5433,db2:5432,[::1]:5434/app"))
        #expect(!configuration.description.contains("pw"))
    }

    @Test func oneHostIsTheUsualSingleServer() throws {
        var url = try StoreURL("postgres://app@db:5433/app")
        let configuration = try PostgresConfiguration(url: &url)
        #expect(configuration.hosts == [PostgresHost(host: "db", port: 5433)])
        #expect(configuration.hostRetryInterval == .seconds(5))
    }

    @Test func passwordNeverPrinted() throws {
        var url = try StoreURL("postgres://app:s3cret@db/app")
        let configuration = try PostgresConfiguration(url: &url)
        #expect(!configuration.description.contains("s3cret"))
        #expect(!"\(url)".contains("s3cret"))
    }

    @Test func unixSocketForm() throws {
        var url = try StoreURL("postgres://app@localhost/app?socket=/run/postgresql/.s.PGSQL.5432")
        let configuration = try PostgresConfiguration(url: &url)
        try url.checkAllTaken()
        #expect(configuration.unixSocket == "/run/postgresql/.s.PGSQL.5432")
        #expect(configuration.description.contains("socket=/run/postgresql/.s.PGSQL.5432"))
    }

    @Test func statementTimeoutOffIsZero() throws {
        var url = try StoreURL("postgres://app@db/app?statement_timeout=off")
        #expect(try PostgresConfiguration(url: &url).statementTimeout == .zero)
    }

    @Test(arguments: [
        "postgres://app@db/app?tabel=x",
        "postgres://app@db/app?key=crc32",
        "postgres://app@db/app?ssl_mode=required",
        "postgres://app@db/app?pool_wait=5s",
        "postgres://app@db/app?read_timeout=5s",
    ])
    func unknownOptionsAndValuesAreErrors(_ text: String) throws {
        #expect(throws: SessionStoreError.self) {
            var url = try StoreURL(text)
            _ = try PostgresConfiguration(url: &url)
            try url.checkAllTaken()
        }
    }

    @Test(arguments: [
        "postgres://db/app",
        "postgres://app@db/",
        "postgres://app@db/a/b",
        "postgres://app@h1:5432,h2:99999/app",
        "postgres://app@h1,,h3/app",
        "postgres://app@h1:x,h2/app",
        "postgres://app@h1,h2/app?socket=/tmp/.s.PGSQL.5432",
        "postgres://app@h1,h2/app?host_retry=soon",
        "postgres://app@db/app?pool=0",
        "postgres://app@db/app?pool=2000",
        "postgres://app@db/app?table=bad-name",
        "postgres://app@db/app?connect_timeout=0",
        "postgres://app@db/app?pool_timeout=0",
        "postgres://app@db/app?pool_timeout=soon",
        "postgres://app@db/app?query_timeout=-1s",
        "postgres://app@db/app?query_timeout=5x",
        "postgres://app@db/app?query_timeout=10s",
        "postgres://app@db/app?query_timeout=5s&statement_timeout=5s",
        "postgres://app@db/app?socket=relative.sock",
        "postgres://app@db/app?socket=/tmp/.s.PGSQL.5432&ssl_mode=require",
        "postgres://app@db/app?ssl_ca=",
        "mysql://app@db/app",
    ])
    func badConfigurationIsATypedError(_ text: String) throws {
        #expect(throws: SessionStoreError.self) {
            var url = try StoreURL(text)
            _ = try PostgresConfiguration(url: &url)
        }
    }

    @Test func factoryRejectsAnUnknownOptionBeforeConnecting() async throws {
        // Port 1 on loopback has no server: an attempt to connect would fail otherwise.
        var url = try StoreURL("postgres://app:pw@127.0.0.1:1/app?pool=2&tabel=x")
        await #expect(throws: SessionStoreError.self) {
            _ = try await StorageBackendFactory.postgres.makeBackend(&url, logger: .init(label: "test"))
        }
    }

    @Test func factoryOpensBothSchemes() {
        #expect(StorageBackendFactory.postgres.schemes == ["postgres", "postgresql"])
    }
}
#endif

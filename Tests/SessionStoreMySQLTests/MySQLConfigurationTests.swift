import SessionStoreCore
import SessionStoreMySQL
import Testing

@Suite("MySQL configuration URLs")
struct MySQLConfigurationTests {
    @Test func fullURL() throws {
        var url = try StoreURL("mysql://app:s3cret@db.example:3307/app?table=web_sessions&pool=4&key=crc32&auto_increment=true&pool_timeout=250ms&connect_timeout=3s")
        let configuration = try MySQLConfiguration(url: &url)
        try url.checkAllTaken()
        #expect(configuration.host == "db.example")
        #expect(configuration.port == 3307)
        #expect(configuration.user == "app")
        #expect(configuration.password == "s3cret")
        #expect(configuration.database == "app")
        #expect(configuration.table == "web_sessions")
        #expect(configuration.poolSize == 4)
        #expect(configuration.keyLayout == .checksumAndID)
        #expect(configuration.autoIncrementPrimaryKey)
        #expect(configuration.poolWaitTimeout == .milliseconds(250))
        #expect(configuration.connectTimeout == .seconds(3))
        #expect(configuration.unixSocket == nil)
        #expect(!configuration.description.contains("s3cret"))
        #expect(!"\(url)".contains("s3cret"))
    }

    @Test func defaults() throws {
        var url = try StoreURL("mariadb://app@db/sessions_db")
        let configuration = try MySQLConfiguration(url: &url)
        try url.checkAllTaken()
        #expect(configuration.port == 3306)
        #expect(configuration.password == nil)
        #expect(configuration.table == "sessions")
        #expect(configuration.keyLayout == .idOnly)
        #expect(!configuration.autoIncrementPrimaryKey)
        #expect(configuration.poolSize == 8)
        #expect(configuration.poolWaitTimeout == .seconds(5))
        #expect(configuration.tls == MySQLConfiguration.TLS())
    }

    @Test func unixSocket() throws {
        var url = try StoreURL("mysql://app@localhost/app?socket=/run/mysqld/mysqld.sock")
        let configuration = try MySQLConfiguration(url: &url)
        try url.checkAllTaken()
        #expect(configuration.unixSocket == "/run/mysqld/mysqld.sock")
        #expect(configuration.host == "localhost")
        var hostless = try StoreURL("mysql://app@/app?socket=%2Ftmp%2Fm.sock")
        let second = try MySQLConfiguration(url: &hostless)
        #expect(second.unixSocket == "/tmp/m.sock")
        #expect(second.host == "localhost")
    }

    @Test func tlsOptions() throws {
        var url = try StoreURL("mysql://app:pw@db/app?ssl_ca=/etc/ca.pem&ssl_cert=/etc/c.pem&ssl_key=/etc/k.pem&ssl_mode=verify_identity")
        let configuration = try MySQLConfiguration(url: &url)
        try url.checkAllTaken()
        #expect(configuration.tls.ca == "/etc/ca.pem")
        #expect(configuration.tls.certificate == "/etc/c.pem")
        #expect(configuration.tls.key == "/etc/k.pem")
        #expect(configuration.tls.mode == .verifyIdentity)
        var required = try StoreURL("mysql://app:pw@db/app?ssl_mode=REQUIRED")
        #expect(try MySQLConfiguration(url: &required).tls.mode == .required)
        var bad = try StoreURL("mysql://app:pw@db/app?ssl_mode=sometimes")
        #expect(throws: SessionStoreError.self) { try MySQLConfiguration(url: &bad) }
    }

    /// The clock-skew allowance is the store's policy (`SessionStoreConfiguration`), not the
    /// backend's: the MySQL configuration leaves `clock_skew` to the store.
    @Test func clockSkewIsLeftToTheStore() throws {
        var url = try StoreURL("mysql://app:pw@db/app?clock_skew=2m")
        _ = try MySQLConfiguration(url: &url)
        #expect(throws: SessionStoreError.self) { try url.checkAllTaken() }
    }

    @Test func badPort() {
        #expect(throws: SessionStoreError.self) { try StoreURL("mysql://app:pw@db:99999/app") }
        #expect(throws: SessionStoreError.self) { try StoreURL("mysql://app:pw@db:port/app") }
    }

    @Test func unknownOptionIsLeftOver() throws {
        var url = try StoreURL("mysql://app:pw@db/app?table=s&tabel=typo")
        _ = try MySQLConfiguration(url: &url)
        let error = try #require(throws: SessionStoreError.self) { try url.checkAllTaken() }
        #expect(error.message.contains("tabel"))
        #expect(!error.message.contains("pw"))
    }

    @Test(arguments: [
        "mysql://app:pw@db/", "mysql://app:pw@db", "mysql://:pw@db/app", "mysql://db/app",
        "mysql://app:pw@db/app?table=bad-name", "mysql://app:pw@db/app?pool=0",
        "mysql://app:pw@db/app?key=md5", "mysql://app:pw@db/app?auto_increment=maybe",
        "postgres://app:pw@db/app", "mysql://app:pw@db/a/b",
    ])
    func invalid(_ text: String) throws {
        #expect(throws: SessionStoreError.self) {
            var url = try StoreURL(text)
            _ = try MySQLConfiguration(url: &url)
        }
    }

    @Test func factorySchemes() {
        let factory: StorageBackendFactory = .mysql
        #expect(factory.schemes == ["mysql", "mariadb"])
    }
}

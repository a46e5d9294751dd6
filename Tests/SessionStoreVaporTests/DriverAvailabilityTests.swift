import SessionStoreDriverTestSupport
import Testing

/// Fails a CI run without a MySQL server, so the MySQL variants never skip silently there.
@Suite("Driver tests: MySQL server availability")
struct DriverMySQLAvailabilityTests {
    @Test("SESSION_STORE_MYSQL_URL is set (required in CI)", .enabled(if: Engine.isCI))
    func serverConfigured() {
        #expect(Engine.mysqlURL != nil, "SESSION_STORE_MYSQL_URL is missing although CI is set; use bash .ci/test")
    }
}

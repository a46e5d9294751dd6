import SessionStoreCore
@testable import SessionStoreMySQL
import Testing

/// Errors keep the server's number wherever Connector/C leaves it.
@Suite("MySQL client errors", .mysqlServer)
struct MySQLClientErrorTests {
    /// A server error met while the rows of a prepared statement are read (here a subquery
    /// that returns two rows; on Galera, a certification conflict that aborts a
    /// `SELECT ... FOR UPDATE`) is left on the connection, not the statement: the error
    /// still carries its number, so a deadlock is retried instead of failing with code 0.
    @Test func anErrorWhileRowsAreReadCarriesTheServersNumber() throws {
        let configuration = try MySQLTestServer.configuration(table: "err_rows")
        let connection = try MySQLConnection(configuration)
        let table = configuration.table
        try connection.run("CREATE TABLE `\(table)` (a INT NOT NULL)")
        defer {
            do {
                try connection.run("DROP TABLE `\(table)`")
            } catch {
                Issue.record("dropping \(table): \(error)")
            }
        }
        try connection.run("INSERT INTO `\(table)` VALUES (1), (2)")
        let statement = try connection.statement("SELECT (SELECT a FROM `\(table)`) FROM `\(table)` WHERE a > ?")
        let error = #expect(throws: MySQLClientError.self) {
            _ = try statement.query([.int(0)], columns: [.int])
        }
        #expect(error?.code == 1242, "ER_SUBQUERY_NO_1_ROW, not 0: \(String(describing: error))")
        #expect(error?.message.isEmpty == false)
    }
}

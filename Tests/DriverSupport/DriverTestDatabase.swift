// The database of the Vapor and Hummingbird driver tests. Needs no framework, so it builds
// with or without the traits. It reaches the backends' internals (`@testable`), which exist
// in debug builds only, where tests build.
#if DEBUG
import CSessionStoreSQLite
import Foundation
package import SessionStore
@testable import SessionStoreMySQL
import SessionStoreSQLite
import Testing
#if Postgres
@testable import SessionStorePostgres
#endif

/// The engines every driver test runs on: SQLite always, the test MariaDB whenever
/// `SESSION_STORE_MYSQL_URL` is set (always under `bash .ci/test`), and with the Postgres
/// trait the test PostgreSQL server (`SESSION_STORE_POSTGRES_URL`, required then).
package enum Engine: String, CaseIterable, Sendable, CustomTestStringConvertible {
    case sqlite
    case mysql
    #if Postgres
    case postgres

    package static let postgresURL: String? = {
        let value = ProcessInfo.processInfo.environment["SESSION_STORE_POSTGRES_URL"]
        return value?.isEmpty == false ? value : nil
    }()
    #endif

    package static let mysqlURL: String? = {
        let value = ProcessInfo.processInfo.environment["SESSION_STORE_MYSQL_URL"]
        return value?.isEmpty == false ? value : nil
    }()

    /// Whether this is a CI run, where the MySQL variants must run.
    package static let isCI: Bool = {
        let value = ProcessInfo.processInfo.environment["CI"]?.lowercased() ?? ""
        return !value.isEmpty && value != "false" && value != "0"
    }()

    /// SQLite, plus MySQL when a server is configured; with the Postgres trait, PostgreSQL
    /// always (a missing server fails those tests).
    package static var available: [Engine] {
        var engines: [Engine] = mysqlURL == nil ? [.sqlite] : [.sqlite, .mysql]
        #if Postgres
        engines.append(.postgres)
        #endif
        return engines
    }

    package var testDescription: String { rawValue }
}

/// A fresh database for one test, with writes to the session table counted by triggers in
/// the database itself (inserts, updates and deletes), not by the code under test.
package final class DriverTestDatabase: Sendable {
    package let engine: Engine
    package let backend: any StorageBackend
    private let sqlitePath: String?
    private let directory: URL?
    private let table: String
    /// A MySQL connection pool of the test's own, for counting and dropping, open even
    /// after the code under test closed its backend.
    private let admin: MySQLBackend?
    #if Postgres
    /// The same for PostgreSQL.
    private let postgresAdmin: PostgresBackend?
    #endif

    private init(
        engine: Engine, backend: any StorageBackend, sqlitePath: String?, directory: URL?, table: String,
        admin: MySQLBackend? = nil, postgresAdmin: (any StorageBackend)? = nil
    ) {
        self.engine = engine
        self.backend = backend
        self.sqlitePath = sqlitePath
        self.directory = directory
        self.table = table
        self.admin = admin
        #if Postgres
        self.postgresAdmin = postgresAdmin as? PostgresBackend
        #endif
    }

    /// Opens a new database on `engine` and installs the write-counting triggers.
    package static func open(_ engine: Engine) async throws -> DriverTestDatabase {
        switch engine {
        case .sqlite:
            let directory = FileManager.default.temporaryDirectory
                .appendingPathComponent("sessionstore-driver-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            let path = directory.appendingPathComponent("sessions.db").path
            var configuration = SQLiteConfiguration(path: path)
            configuration.readerCount = 2
            let backend = try SQLiteBackend(configuration: configuration)
            let database = DriverTestDatabase(engine: engine, backend: backend, sqlitePath: path, directory: directory, table: "sessions")
            try database.sqlite(
                """
                CREATE TABLE write_count (n INTEGER NOT NULL);
                INSERT INTO write_count VALUES (0);
                CREATE TRIGGER count_insert AFTER INSERT ON sessions BEGIN UPDATE write_count SET n = n + 1; END;
                CREATE TRIGGER count_update AFTER UPDATE ON sessions BEGIN UPDATE write_count SET n = n + 1; END;
                CREATE TRIGGER count_delete AFTER DELETE ON sessions BEGIN UPDATE write_count SET n = n + 1; END;
                """)
            return database
        case .mysql:
            var url = try StoreURL(try #require(Engine.mysqlURL, "SESSION_STORE_MYSQL_URL not set"))
            var configuration = try MySQLConfiguration(url: &url)
            let table = "t_driver_\(String(UInt64.random(in: 0...UInt64.max), radix: 36))"
            configuration.table = table
            let backend = try await MySQLBackend(configuration: configuration)
            let admin = try await MySQLBackend(configuration: configuration)
            try await admin.call("triggers", retry: .never) { connection, _ in
                try connection.run("CREATE TABLE `\(table)_writes` (n BIGINT NOT NULL)")
                try connection.run("INSERT INTO `\(table)_writes` VALUES (0)")
                for event in ["INSERT", "UPDATE", "DELETE"] {
                    try connection.run(
                        "CREATE TRIGGER `\(table)_\(event.lowercased())` AFTER \(event) ON `\(table)` "
                            + "FOR EACH ROW UPDATE `\(table)_writes` SET n = n + 1")
                }
            }
            return DriverTestDatabase(engine: engine, backend: backend, sqlitePath: nil, directory: nil, table: table, admin: admin)
        #if Postgres
        case .postgres:
            var url = try StoreURL(try #require(Engine.postgresURL, "SESSION_STORE_POSTGRES_URL not set: use bash .ci/test"))
            var configuration = try PostgresConfiguration(url: &url)
            let table = "t_driver_\(String(UInt64.random(in: 0...UInt64.max), radix: 36))"
            configuration.table = table
            let backend = try await PostgresBackend(configuration: configuration)
            let admin = try await PostgresBackend(configuration: configuration)
            try await admin.call("triggers", retry: .never) { connection, _ in
                try await PostgresBackend.run(connection, "CREATE TABLE \"\(table)_writes\" (n bigint NOT NULL)")
                try await PostgresBackend.run(connection, "INSERT INTO \"\(table)_writes\" VALUES (0)")
                try await PostgresBackend.run(connection, """
                    CREATE FUNCTION "\(table)_count"() RETURNS trigger LANGUAGE plpgsql AS $$
                    BEGIN UPDATE "\(table)_writes" SET n = n + 1; RETURN NULL; END $$
                    """)
                try await PostgresBackend.run(connection, """
                    CREATE TRIGGER "\(table)_count" AFTER INSERT OR UPDATE OR DELETE ON "\(table)"
                    FOR EACH ROW EXECUTE FUNCTION "\(table)_count"()
                    """)
            }
            return DriverTestDatabase(engine: engine, backend: backend, sqlitePath: nil, directory: nil, table: table, postgresAdmin: admin)
        #endif
        }
    }

    /// Rows inserted, updated or deleted in the session table since it was opened.
    package func writes() async throws -> Int {
        switch engine {
        case .sqlite: try await scalar("SELECT n FROM write_count")
        case .mysql: try await scalar("SELECT n FROM `\(table)_writes`")
        #if Postgres
        case .postgres: try await scalar("SELECT n FROM \"\(table)_writes\"")
        #endif
        }
    }

    /// Rows in the session table, expired or not.
    package func rows() async throws -> Int {
        switch engine {
        case .sqlite: try await scalar("SELECT count(*) FROM sessions")
        case .mysql: try await scalar("SELECT count(*) FROM `\(table)`")
        #if Postgres
        case .postgres: try await scalar("SELECT count(*) FROM \"\(table)\"")
        #endif
        }
    }

    /// Closes the backend (if the test did not) and removes the database.
    package func remove() async throws {
        do {
            try await backend.close()
        } catch let error as StorageError where error.kind == .closed {
            // The test already shut the store down, which closed the backend.
        }
        switch engine {
        case .sqlite:
            if let directory { try FileManager.default.removeItem(at: directory) }
        case .mysql:
            let table = table
            let admin = try #require(admin)
            do {
                try await admin.call("drop", retry: .again) { connection, _ in
                    try connection.run("DROP TABLE IF EXISTS `\(table)`")
                    try connection.run("DROP TABLE IF EXISTS `\(table)_writes`")
                    try connection.run("DELETE FROM session_store_schema WHERE name = '\(table)'")
                    try connection.run("DELETE FROM session_store_lease WHERE name = '\(table)'")
                }
            } catch {
                try await admin.close()
                throw error
            }
            try await admin.close()
        #if Postgres
        case .postgres:
            let table = table
            let admin = try #require(postgresAdmin)
            let dropped = await PostgresBackend.settle {
                try await admin.call("drop", retry: .again) { connection, _ in
                    try await PostgresBackend.run(connection, "DROP TABLE IF EXISTS \"\(table)\"")
                    try await PostgresBackend.run(connection, "DROP TABLE IF EXISTS \"\(table)_writes\"")
                    try await PostgresBackend.run(connection, "DROP FUNCTION IF EXISTS \"\(table)_count\"()")
                    _ = try await PostgresBackend.rows(connection, "DELETE FROM session_store_schema WHERE name = $1", [.text(table)])
                    _ = try await PostgresBackend.rows(connection, "DELETE FROM session_store_lease WHERE name = $1", [.text(table)])
                }
            }
            try await admin.close()
            try dropped.get()
        #endif
        }
    }

    private func scalar(_ sql: String) async throws -> Int {
        switch engine {
        case .sqlite:
            let text = try sqlite(sql).first ?? nil
            return try #require(text.flatMap { Int($0) }, "no number from \(sql)")
        case .mysql:
            let admin = try #require(admin)
            let rows = try await admin.call("count", retry: .again) { connection, _ in try connection.rows(sql) }
            return try #require(rows.first?.first.flatMap { $0 }.flatMap { Int($0) }, "no number from \(sql)")
        #if Postgres
        case .postgres:
            let admin = try #require(postgresAdmin)
            return try await admin.call("count", retry: .again) { connection, _ in
                let rows = try await PostgresBackend.rows(connection, sql, [])
                return Int(try #require(rows.first).decode(Int64.self))
            }
        #endif
        }
    }

    /// Drops the sessions table under the store (SQLite only), so the store's next
    /// statement fails with a `StorageError`: a storage failure without a mock.
    package func dropSessionsTable() throws {
        try sqlite("DROP TABLE sessions")
    }

    /// Runs SQL on a raw connection of its own and returns the first column of the last
    /// statement's rows.
    @discardableResult
    private func sqlite(_ sql: String) throws -> [String?] {
        let path = try #require(sqlitePath)
        var database: OpaquePointer?
        guard sqlite3_open(path, &database) == SQLITE_OK, let database else {
            throw DriverTestDatabaseError(message: "cannot open \(path)")
        }
        defer { sqlite3_close_v2(database) }
        guard sqlite3_busy_timeout(database, 10_000) == SQLITE_OK else {
            throw DriverTestDatabaseError(message: String(cString: sqlite3_errmsg(database)))
        }
        var rows: [String?] = []
        var rest = sql
        while !rest.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty {
            var statement: OpaquePointer?
            var tail: UnsafePointer<CChar>?
            let current = rest
            let (code, remainder) = current.withCString { text in
                let code = sqlite3_prepare_v2(database, text, -1, &statement, &tail)
                return (code, tail.map { String(cString: $0) } ?? "")
            }
            rest = remainder
            guard code == SQLITE_OK else { throw DriverTestDatabaseError(message: String(cString: sqlite3_errmsg(database))) }
            guard let statement else { continue }
            defer { sqlite3_finalize(statement) }
            rows = []
            while true {
                let step = sqlite3_step(statement)
                if step == SQLITE_DONE { break }
                guard step == SQLITE_ROW else { throw DriverTestDatabaseError(message: String(cString: sqlite3_errmsg(database))) }
                rows.append(sqlite3_column_text(statement, 0).map { String(cString: $0) })
            }
        }
        return rows
    }
}

package struct DriverTestDatabaseError: Error {
    package let message: String
}

/// Runs `body` on a fresh database of `engine` and removes it afterwards, also on failure.
package func withDatabase(_ engine: Engine, _ body: (DriverTestDatabase) async throws -> Void) async throws {
    let database = try await DriverTestDatabase.open(engine)
    do {
        try await body(database)
    } catch {
        try await database.remove()
        throw error
    }
    try await database.remove()
}
#endif

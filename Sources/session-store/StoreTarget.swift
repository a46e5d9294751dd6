import Foundation
import Logging
import SessionStore
import SessionStoreMySQL
import SessionStoreSQLite
#if Postgres
import SessionStorePostgres
#endif

/// One store named on the command line: its URL parsed exactly as `SessionStore.open` does
/// (core options, then the backend's), every option checked, the password kept out of
/// ``display``.
struct StoreTarget: Sendable {
    /// The backend's own configuration.
    enum Backend: Sendable {
        case sqlite(SQLiteConfiguration)
        case mysql(MySQLConfiguration)
        #if Postgres
        case postgres(PostgresConfiguration)
        #endif
    }

    /// The URL with the password replaced by `***`.
    let display: String
    /// The store's policy options (`id_hash`, `cleanup_batch`, `clock_skew`, ...).
    let store: SessionStoreConfiguration
    let backend: Backend
    /// Whether the URL had a `fallback=` option, which the operator commands do not follow.
    let hadFallback: Bool
    /// The key ring the URL's `encryption_keys=` names, if any.
    let keys: EncryptionKeyRing?

    /// Parses and checks a configuration URL without touching any database.
    /// - Throws: `SessionStoreError` `invalidConfiguration`.
    init(_ text: String) throws {
        var url = try StoreURL(text)
        store = try SessionStoreConfiguration(url: &url)
        hadFallback = url.take("fallback") != nil
        keys = try EncryptionKeyRing.take(from: &url)
        switch url.scheme {
        case "sqlite":
            var configuration = try SQLiteConfiguration(url: &url)
            configuration.readerCount = 1
            backend = .sqlite(configuration)
        case "mysql", "mariadb":
            backend = .mysql(try MySQLConfiguration(url: &url))
        #if Postgres
        case "postgres", "postgresql":
            backend = .postgres(try PostgresConfiguration(url: &url))
        #endif
        default:
            throw StoreURL.invalid("unknown scheme \"\(url.scheme):\" (session-store knows \(Self.schemes))")
        }
        try url.checkAllTaken()
        display = url.description
    }

    /// The schemes this build opens, for error messages.
    #if Postgres
    static let schemes = "sqlite:, mysql: and postgres:"
    #else
    static let schemes = "sqlite: and mysql: (postgres: needs the Postgres trait)"
    #endif

    /// The table's name.
    var table: String {
        switch backend {
        case .sqlite(let configuration): configuration.table
        case .mysql(let configuration): configuration.table
        #if Postgres
        case .postgres(let configuration): configuration.table
        #endif
        }
    }

    /// The key layout the URL asks for.
    var keyLayout: KeyLayout {
        switch backend {
        case .sqlite(let configuration): configuration.keyLayout
        case .mysql(let configuration): configuration.keyLayout
        #if Postgres
        case .postgres: .idOnly
        #endif
        }
    }

    /// The exact statements the backend runs to create the table.
    func schemaStatements() throws -> [String] {
        switch backend {
        case .sqlite(let configuration): try SQLiteBackend.schemaStatements(for: configuration)
        case .mysql(let configuration): try MySQLBackend.schemaStatements(for: configuration)
        #if Postgres
        case .postgres(let configuration): try PostgresBackend.schemaStatements(for: configuration)
        #endif
        }
    }

    /// Runs ``schemaStatements()``; returns the recorded version and layout instead when the
    /// table already exists.
    func applySchema() async throws -> (version: Int64, layout: String)? {
        switch backend {
        case .sqlite(let configuration): try SQLiteBackend.applySchema(for: configuration)
        case .mysql(let configuration): try await MySQLBackend.applySchema(for: configuration, logger: toolLogger())
        #if Postgres
        case .postgres(let configuration): try await PostgresBackend.applySchema(for: configuration, logger: toolLogger())
        #endif
        }
    }

    /// Opens the backend as an app would (the table is created when missing).
    ///
    /// - Parameters:
    ///   - mustExist: For a SQLite file: fail instead of creating a new database.
    ///   - changingNothing: For a SQLite file: keep the expiry index an earlier release
    ///     created instead of dropping it on open (for a dry run).
    /// - Throws: ``CommandFailure`` for a missing SQLite file, ``StorageError`` when the
    ///   backend cannot open.
    func open(mustExist: Bool, changingNothing: Bool = false, logger: Logger) async throws -> any AdminBackend {
        if hadFallback {
            Console.error("note: the fallback= store in \(display) is not followed; this command acts on the primary store only")
        }
        switch backend {
        case .sqlite(var configuration):
            if mustExist && configuration.path != ":memory:" && !FileManager.default.fileExists(atPath: configuration.path) {
                throw CommandFailure("no database file at \(configuration.path) (\(display))")
            }
            configuration.dropsExpiryIndex = !changingNothing
            return try SQLiteBackend(configuration: configuration, logger: logger)
        case .mysql(let configuration):
            return try await MySQLBackend(configuration: configuration, logger: logger)
        #if Postgres
        case .postgres(let configuration):
            return try await PostgresBackend(configuration: configuration, logger: logger)
        #endif
        }
    }
}

/// A logger for backends: warnings and errors on standard error.
func toolLogger() -> Logger {
    var logger = Logger(label: "session-store")
    logger.logLevel = .warning
    return logger
}

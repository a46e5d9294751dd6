import Foundation
import Logging
import SessionStore
import SessionStoreMySQL
import SessionStoreSQLite
#if Postgres
import SessionStorePostgres
#endif

/// One store named on the command line: its URL parsed exactly as `SessionStore.open` does
/// (core options, then the backend's, through the backend's factory), every option checked,
/// the password kept out of ``display``.
struct StoreTarget: Sendable {
    /// The URL with the password replaced by `***`.
    let display: String
    /// The store's policy options (`id_hash`, `cleanup_batch`, `clock_skew`, ...).
    let store: SessionStoreConfiguration
    /// The backend's own configuration, as the commands act on it.
    let backend: any AdminTarget
    /// Whether the URL had a `fallback=` option, which the operator commands do not follow.
    let hadFallback: Bool
    /// The key ring the URL's `encryption_keys=` names, if any.
    let keys: EncryptionKeyRing?

    /// The backends this build links.
    #if Postgres
    static let factories: [StorageBackendFactory] = [.sqlite, .mysql, .postgres]
    #else
    static let factories: [StorageBackendFactory] = [.sqlite, .mysql]
    #endif

    /// Parses and checks a configuration URL without touching any database.
    /// - Throws: `SessionStoreError` `invalidConfiguration`.
    init(_ text: String) throws {
        var url = try StoreURL(text)
        store = try SessionStoreConfiguration(url: &url)
        hadFallback = url.take("fallback") != nil
        keys = try EncryptionKeyRing.take(from: &url)
        backend = try StorageBackendFactory.handling(url.scheme, among: Self.factories).adminTarget(&url)
        try url.checkAllTaken()
        display = url.description
    }

    /// The table's name.
    var table: String { backend.table }

    /// The key layout the URL asks for.
    var keyLayout: KeyLayout { backend.keyLayout }

    /// The exact statements the backend runs to create the table.
    func schemaStatements() throws -> [String] {
        try backend.schemaStatements()
    }

    /// Runs ``schemaStatements()``; returns the recorded version and layout instead when the
    /// table already exists.
    func applySchema() async throws -> (version: Int64, layout: String)? {
        try await backend.applySchema(logger: toolLogger())
    }

    /// Opens the backend as an app would (the table is created when missing).
    ///
    /// - Parameters:
    ///   - mustExist: For a database file: fail instead of creating a new database.
    ///   - changingNothing: Keep what an open changes on its own (SQLite: the expiry index an
    ///     earlier release created), for a dry run.
    /// - Throws: ``CommandFailure`` for a missing database file, ``StorageError`` when the
    ///   backend cannot open.
    func open(mustExist: Bool, changingNothing: Bool = false, logger: Logger) async throws -> any AdminBackend {
        if hadFallback {
            Console.error("note: the fallback= store in \(display) is not followed; this command acts on the primary store only")
        }
        if mustExist, let file = backend.databaseFile, !FileManager.default.fileExists(atPath: file) {
            throw CommandFailure("no database file at \(file) (\(display))")
        }
        return try await backend.openForAdmin(changingNothing: changingNothing, logger: logger)
    }
}

/// A logger for backends: warnings and errors on standard error.
func toolLogger() -> Logger {
    var logger = Logger(label: "session-store")
    logger.logLevel = .warning
    return logger
}

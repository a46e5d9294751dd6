package import Logging

/// What the operator CLI needs from a backend beyond ``StorageBackend``: figures, checks,
/// raw rows and schema versions. Each backend provides it in its `+Admin` file; the CLI
/// reaches it through ``StorageBackendFactory``, as apps reach backends.
package protocol AdminBackend: StorageBackend {
    /// The engine's name, e.g. `sqlite`.
    var engine: String { get }
    /// Counts, histogram, sizes, schema and lease of the table at `now`.
    func tableFigures(now: Int64) async throws -> TableFigures
    /// The engine's own consistency check; `["ok"]` when sound.
    func integrityCheck() async throws -> [String]
    /// The recorded schema version and key layout, `nil` when the table has none.
    func recordedSchema() async throws -> (version: Int64, layout: String)?
    /// Rows after `cursor` in key order, at most `limit`, live at `liveAt` when given.
    func storedRows(after cursor: SessionKey?, limit: Int, liveAt: Int64?) async throws -> [StoredRow]
    /// Rows the store could never have written because their id is not text.
    func unkeyedRowCount() async throws -> Int64
    /// Writes copied rows as they are: inserts missing ones, overwrites a stored one only
    /// when `replaceIf(stored, copy)`; returns how many were written.
    func importRows(
        _ rows: [(key: SessionKey, record: SessionRecord)],
        replaceIf: @escaping @Sendable (_ stored: SessionRecord, _ copy: SessionRecord) -> Bool
    ) async throws -> Int
    /// The number of live sessions of each owner that has any, in no particular order.
    func liveSessionsPerOwner(now: Int64) async throws -> [Int64]
    /// Rows with `expires_at < before`: what a cleanup at that cut-off deletes.
    func countExpired(before: Int64) async throws -> Int64
    /// The statements an upgrade would run, and the versions it goes between.
    func pendingMigrations() async throws -> (from: Int64, to: Int64, statements: [String])
    /// Runs the pending migrations; returns the versions before and after.
    func upgradeSchema() async throws -> (from: Int64, to: Int64)
}

/// One stored row as the operator tools read it: its key, and its record or why the row's
/// columns could not be read.
package typealias StoredRow = (key: SessionKey, record: Result<SessionRecord, StorageError>)

/// A backend's configuration, read from a store URL, that the operator CLI can act on before
/// (or instead of) opening the backend. A backend's configuration type conforms, so its
/// ``StorageBackendFactory`` hands it to the CLI.
package protocol AdminTarget: Sendable {
    /// The session table's name.
    var table: String { get }
    /// The key layout the URL asks for.
    var keyLayout: KeyLayout { get }
    /// The database file, for a backend that keeps one (SQLite; not `:memory:`); `nil` for a
    /// server.
    var databaseFile: String? { get }
    /// The exact statements the backend runs to create the table.
    func schemaStatements() throws -> [String]
    /// Runs ``schemaStatements()``; returns the recorded version and layout instead when the
    /// table already exists.
    func applySchema(logger: Logger) async throws -> (version: Int64, layout: String)?
    /// Opens the backend as an app would (the table is created when missing), for one
    /// operator command at a time.
    /// - Parameter changingNothing: Keep what an open would change on its own (SQLite: the
    ///   expiry index an earlier release created), for a dry run.
    func openForAdmin(changingNothing: Bool, logger: Logger) async throws -> any AdminBackend
}

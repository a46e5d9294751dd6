public import Logging
public import SessionStore

/// Opens ``SQLiteBackend``s from `sqlite:` configuration URLs.
///
/// Pass ``StorageBackendFactory/sqlite`` to the store's `open` so that a URL such as
/// `sqlite:///var/lib/app/sessions.db?synchronous=full` picks this backend.
public struct SQLiteBackendFactory: StorageBackendFactory {
    /// A factory; it has no state.
    public init() {}

    /// `["sqlite"]`.
    public var schemes: [String] { ["sqlite"] }

    /// Reads a ``SQLiteConfiguration`` from `url` (see ``SQLiteConfiguration/init(url:)``)
    /// and opens the backend.
    ///
    /// - Throws: `SessionStoreError` `invalidConfiguration` for bad options, and the
    ///   ``StorageError``s of ``SQLiteBackend/init(configuration:logger:)``.
    public func makeBackend(_ url: inout StoreURL, logger: Logger) async throws -> any StorageBackend {
        let configuration = try SQLiteConfiguration(url: &url)
        return try SQLiteBackend(configuration: configuration, logger: logger)
    }
}

extension StorageBackendFactory where Self == SQLiteBackendFactory {
    /// The SQLite backend factory, for `sqlite:` URLs.
    public static var sqlite: SQLiteBackendFactory { SQLiteBackendFactory() }
}

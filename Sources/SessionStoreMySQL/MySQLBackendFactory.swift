public import Logging
public import SessionStore

/// Opens ``MySQLBackend`` from `mysql://` and `mariadb://` configuration URLs.
public struct MySQLBackendFactory: StorageBackendFactory {
    /// `["mysql", "mariadb"]`.
    public var schemes: [String] { ["mysql", "mariadb"] }

    /// A factory.
    public init() {}

    /// Parses `url` with ``MySQLConfiguration/init(url:)`` and opens a backend.
    /// - Throws: ``SessionStoreError`` for a bad URL, ``StorageError`` when opening fails.
    public func makeBackend(_ url: inout StoreURL, logger: Logger) async throws -> any StorageBackend {
        let configuration = try MySQLConfiguration(url: &url)
        return try await MySQLBackend(configuration: configuration, logger: logger)
    }
}

extension StorageBackendFactory where Self == MySQLBackendFactory {
    /// The MySQL / MariaDB backend factory, for `SessionStore.open(_:backends:)`.
    public static var mysql: MySQLBackendFactory { MySQLBackendFactory() }
}

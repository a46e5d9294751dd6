public import SessionStore

extension StorageBackendFactory {
    /// Opens ``MySQLBackend``s from `mysql://` and `mariadb://` configuration URLs; options
    /// as in ``MySQLConfiguration/init(url:)``.
    public static let mysql = StorageBackendFactory(schemes: ["mysql", "mariadb"]) { url, logger in
        let configuration = try MySQLConfiguration(url: &url)
        return try await MySQLBackend(configuration: configuration, logger: logger)
    }
}

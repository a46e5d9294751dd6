public import SessionStoreCore

extension StorageBackendFactory {
    /// Opens ``MySQLBackend``s from `mysql://` and `mariadb://` configuration URLs such as
    /// `mysql://user:password@host:3306/database?table=sessions&pool=8`; options as in
    /// ``MySQLConfiguration/init(url:)``.
    public static let mysql = StorageBackendFactory(schemes: ["mysql", "mariadb"]) { url in
        try MySQLConfiguration(url: &url)
    } open: { configuration, logger in
        try await MySQLBackend(configuration: configuration, logger: logger)
    }
}

#if Postgres
public import SessionStoreCore

extension StorageBackendFactory {
    /// Opens ``PostgresBackend``s from `postgres://` and `postgresql://` configuration URLs
    /// such as `postgres://user:password@host:5432/database?table=sessions&pool=16`;
    /// options as in ``PostgresConfiguration/init(url:)``.
    public static let postgres = StorageBackendFactory(schemes: ["postgres", "postgresql"]) { url in
        try PostgresConfiguration(url: &url)
    } open: { configuration, logger in
        try await PostgresBackend(configuration: configuration, logger: logger)
    }
}
#endif

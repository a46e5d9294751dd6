public import SessionStore

extension StorageBackendFactory {
    /// Opens ``SQLiteBackend``s from `sqlite:` configuration URLs such as
    /// `sqlite:///var/lib/app/sessions.db?synchronous=full`; options as in
    /// ``SQLiteConfiguration/init(url:)``.
    public static let sqlite = StorageBackendFactory(schemes: ["sqlite"]) { url in
        try SQLiteConfiguration(url: &url)
    } open: { configuration, logger in
        try SQLiteBackend(configuration: configuration, logger: logger)
    }
}

public import SessionStore

extension StorageBackendFactory {
    /// Opens ``SQLiteBackend``s from `sqlite:` configuration URLs such as
    /// `sqlite:///var/lib/app/sessions.db?synchronous=full`; options as in
    /// ``SQLiteConfiguration/init(url:)``.
    public static let sqlite = StorageBackendFactory(schemes: ["sqlite"]) { url, logger in
        let configuration = try SQLiteConfiguration(url: &url)
        return try SQLiteBackend(configuration: configuration, logger: logger)
    }
}

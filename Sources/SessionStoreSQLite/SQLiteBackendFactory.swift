public import SessionStoreCore
import Foundation

extension StorageBackendFactory {
    /// Opens ``SQLiteBackend``s from `sqlite:` configuration URLs such as
    /// `sqlite:///var/lib/app/sessions.db?synchronous=full`; options as in
    /// ``SQLiteConfiguration/init(url:)``.
    ///
    /// Opening may wait up to the busy timeout for another process's lock, so it runs on a
    /// thread of its own, never on Swift's cooperative pool.
    public static let sqlite = StorageBackendFactory(schemes: ["sqlite"]) { url in
        try SQLiteConfiguration(url: &url)
    } open: { configuration, logger in
        try await withCheckedThrowingContinuation { continuation in
            startBackendThread(named: SQLiteThreadName.opener, logger: logger) {
                continuation.resume(with: Result { try SQLiteBackend(configuration: configuration, logger: logger) })
            }
        }
    }
}

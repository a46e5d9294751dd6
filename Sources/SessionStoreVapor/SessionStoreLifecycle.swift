#if Vapor
public import SessionStore
import Synchronization
public import Vapor

/// Runs a ``SessionStore`` with a Vapor application, as the store's swift-service-lifecycle
/// `Service` (``SessionStore/run()``) runs it in a service group: background cleanup every
/// ``SessionStoreConfiguration/backgroundCleanupInterval`` from boot, then, when the
/// application shuts down, a flush of pending writes and the close of every connection and
/// file.
///
/// `app.sessions.use(.sessionStore(store))` registers one. An app that builds
/// ``SessionStoreDriver`` itself registers it with the application's lifecycle:
/// ```swift
/// app.lifecycle.use(SessionStoreLifecycle(store: store))
/// ```
/// An application shut down without booting still closes the store. A store shut down by
/// other means stops the cleanup, and the shutdown here then does nothing more.
public final class SessionStoreLifecycle: LifecycleHandler, Sendable {
    /// The store this handler runs.
    public let store: SessionStore
    /// The store's `run()`, from boot until shutdown.
    private let running = Mutex<Task<Void, any Error>?>(nil)

    /// A handler that runs `store` with the application it is registered with.
    public init(store: SessionStore) {
        self.store = store
    }

    /// Starts the store's `run()` (background cleanup) once the application has booted.
    public func didBootAsync(_ application: Application) async throws {
        running.withLock { running in
            guard running == nil else { return }
            running = Task { [store] in try await store.run() }
        }
    }

    /// Ends the store's `run()`, which shuts the store down, and waits for it; closes the
    /// store directly when the application never booted. A failure to close is logged with
    /// the application's logger, the only place left to report it.
    public func shutdownAsync(_ application: Application) async {
        let task = running.withLock { $0 }
        do {
            if let task {
                // Cancelling `run()` ends its wait as a graceful shutdown does.
                task.cancel()
                try await task.value
            } else {
                try await store.shutdown()
            }
        } catch {
            application.logger.error("session store did not shut down cleanly", metadata: ["error": "\(error)"])
        }
    }
}
#endif

public import ServiceLifecycle

extension SessionStore: Service {
    /// Runs the store as a swift-service-lifecycle `Service`: background cleanup every
    /// ``SessionStoreConfiguration/backgroundCleanupInterval`` until graceful shutdown, then
    /// ``shutdown()``, which flushes pending writes and closes every connection and file.
    ///
    /// Pass the store in a `ServiceGroup`'s services (Hummingbird: `Application(router:services:)`)
    /// and the application starts and stops it with everything else. Cancellation ends the
    /// wait as graceful shutdown does: the store is shut down either way before `run()`
    /// returns. Without a service group, call ``startBackgroundCleanup(every:)`` and
    /// ``shutdown()`` yourself instead.
    /// - Throws: ``StorageError`` from closing the backend.
    public func run() async throws {
        if let interval = configuration.backgroundCleanupInterval {
            startBackgroundCleanup(every: interval)
        }
        do {
            try await gracefulShutdown()
        } catch {
            // Only cancellation ends the wait with an error: the group is stopping without
            // a graceful shutdown, and the store closes all the same.
            logger.debug("session store service cancelled; shutting the store down", metadata: ["error": "\(error)"])
        }
        try await shutdown()
    }
}

#if Vapor
public import SessionStore
public import Vapor

/// Vapor's session driver on a ``SessionStore``: Vapor's `SessionsMiddleware`, `req.session`
/// and session authentication keep working, with this store's properties.
///
/// Register it in one line, with a store opened once at startup:
/// ```swift
/// app.sessions.use(.sessionStore(store))
/// app.middleware.use(app.sessions.middleware)
/// ```
/// What it keeps from the store, whatever Vapor's middleware asks:
/// - A request that changes nothing writes nothing: Vapor calls `updateSession` on every
///   request with a session, and the driver compares the data with what it loaded.
/// - An unknown, expired or malformed cookie creates no row, and the client's id is never
///   adopted: such a request gets a new id, stored only once the session holds data.
/// - Concurrent requests on one session merge their changes instead of losing them.
/// - `req.session.destroy()` deletes the row; ``TypedSession/regenerateID()`` gives a new id
///   after login (the old one works for the store's grace period, then never again).
///
/// Vapor's `SessionData` holds strings; the same session's attributes are also reachable
/// with any `Codable` type through `req.typedSession`.
public struct SessionStoreDriver: AsyncSessionDriver {
    /// The store sessions live in.
    public let store: SessionStore

    /// A driver over an open store. Open the store once and share it.
    public init(store: SessionStore) {
        self.store = store
    }

    /// Stores the data of a session that had no (valid) cookie. An empty session gets a
    /// fresh id and no row.
    public func createSession(_ data: SessionData, for request: Request) async throws -> Vapor.SessionID {
        let state = request.sessionStoreState(store)
        let id = try await state.save(vaporData: data.snapshot, request: request)
        return Vapor.SessionID(string: id)
    }

    /// Loads the session a cookie names; `nil` (so Vapor starts a new session with a new
    /// id) when it is unknown, expired or malformed.
    public func readSession(_ sessionID: Vapor.SessionID, for request: Request) async throws -> SessionData? {
        let session: StoreSession
        do {
            session = try await store.load(id: sessionID.string)
        } catch {
            throw SessionStoreAbort(error)
        }
        let state = SessionStoreState(store: store, session: session)
        request.storage[SessionStoreStateKey.self] = state
        guard session.isStored else { return nil }
        return SessionData(initialData: state.vaporSnapshot())
    }

    /// Writes what the request changed, and nothing when it changed nothing.
    /// - Throws: ``SessionStoreAbort`` with status 409 when the session was destroyed or
    ///   renewed by another request while this one changed it (nothing was written).
    public func updateSession(
        _ sessionID: Vapor.SessionID, to data: SessionData, for request: Request
    ) async throws -> Vapor.SessionID {
        let state = try await request.sessionStoreState(store, matching: sessionID.string)
        let id = try await state.save(vaporData: data.snapshot, request: request)
        return Vapor.SessionID(string: id)
    }

    /// Deletes the session (`req.session.destroy()`).
    public func deleteSession(_ sessionID: Vapor.SessionID, for request: Request) async throws {
        let state = try await request.sessionStoreState(store, matching: sessionID.string)
        try await state.destroy()
    }
}

extension Application.Sessions.Provider {
    /// Keeps Vapor's sessions in `store`: `app.sessions.use(.sessionStore(store))`.
    ///
    /// The store is opened once by the caller and shared by every request (Vapor asks the
    /// provider for a driver on each use, so opening one here would open one per request).
    /// The application shuts the store down when it stops.
    public static func sessionStore(_ store: SessionStore) -> Self {
        .init { application in
            let driver = SessionStoreDriver(store: store)
            application.sessions.use { _ in driver }
            application.lifecycle.use(SessionStoreShutdown(store: store))
        }
    }
}

/// Shuts the store down with the application, so pending writes are flushed.
struct SessionStoreShutdown: LifecycleHandler {
    let store: SessionStore

    func shutdownAsync(_ application: Application) async {
        do {
            try await store.shutdown()
        } catch {
            application.logger.error("session store did not shut down cleanly", metadata: ["error": "\(error)"])
        }
    }
}
#endif

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
/// - A response sets the cookie only when it gives the client an id it does not have (a
///   new or renewed session): it never hands back an id another request just renewed, and
///   sends nothing for a session that is not stored (a middleware that
///   `.sessionStore(store)` adds takes Vapor's cookie out of such responses).
///
/// Vapor's `SessionData` holds strings; the same session's attributes are also reachable
/// with any `Codable` type through `req.typedSession`.
///
/// Vapor's middleware calls the `EventLoopFuture` methods. The end of a request that has
/// nothing to write completes on the spot; loads and saves run in a task on the request's
/// event loop, so a load that does not wait (a SQLite read) costs no thread hop.
public struct SessionStoreDriver: AsyncSessionDriver {
    /// The store sessions live in.
    public let store: SessionStore

    /// A driver over an open store. Open the store once and share it.
    ///
    /// `app.sessions.use(.sessionStore(store))` also runs the store with the application; a
    /// driver built here does not, so register the store's lifecycle too, or its background
    /// cleanup never runs and pending writes are not flushed at exit:
    /// ```swift
    /// app.sessions.use { _ in SessionStoreDriver(store: store) }
    /// app.lifecycle.use(SessionStoreLifecycle(store: store))
    /// ```
    public init(store: SessionStore) {
        self.store = store
    }

    // MARK: - What Vapor's middleware calls

    /// Stores the data of a session that had no (valid) cookie; see the `async` variant.
    public func createSession(_ data: SessionData, for request: Request) -> EventLoopFuture<Vapor.SessionID> {
        if let state = request.storage[SessionStoreStateKey.self] {
            if let done = Self.finishWithoutWriting(state, data, request) { return done }
        } else if data.snapshot.isEmpty {
            // A visitor without a cookie whose session holds nothing: no row and no cookie.
            request.storage[KeepClientCookieKey.self] = true
            return request.eventLoop.makeSucceededFuture(Vapor.SessionID(string: StoreSessionID.generate().text))
        }
        return onEventLoop(request) { try await self.createSession(data, for: request) }
    }

    /// Loads the session a cookie names; see the `async` variant.
    public func readSession(_ sessionID: Vapor.SessionID, for request: Request) -> EventLoopFuture<SessionData?> {
        onEventLoop(request) { try await self.readSession(sessionID, for: request) }
    }

    /// Writes what the request changed; see the `async` variant. A request that changed
    /// nothing completes here, without a task.
    public func updateSession(
        _ sessionID: Vapor.SessionID, to data: SessionData, for request: Request
    ) -> EventLoopFuture<Vapor.SessionID> {
        if let state = request.storage[SessionStoreStateKey.self], state.holds(sessionID.string),
           let done = Self.finishWithoutWriting(state, data, request) {
            return done
        }
        return onEventLoop(request) { try await self.updateSession(sessionID, to: data, for: request) }
    }

    /// The end of a request with nothing to write, completed on the spot; `nil` when
    /// something is left to save.
    private static func finishWithoutWriting(
        _ state: SessionStoreState, _ data: SessionData, _ request: Request
    ) -> EventLoopFuture<Vapor.SessionID>? {
        let pending: SessionStoreState.Pending
        do {
            pending = try state.pending(vaporData: data.snapshot)
        } catch {
            return request.eventLoop.makeFailedFuture(error)
        }
        switch pending {
        case .save: return nil
        case .sendCookie, .keepCookie: return request.eventLoop.makeSucceededFuture(cookie(pending, state))
        }
    }

    /// Deletes the session; see the `async` variant.
    public func deleteSession(_ sessionID: Vapor.SessionID, for request: Request) -> EventLoopFuture<Void> {
        onEventLoop(request) { try await self.deleteSession(sessionID, for: request) }
    }

    // MARK: - The same, async

    /// Stores the data of a session that had no (valid) cookie. An empty session gets a
    /// fresh id and no row.
    public func createSession(_ data: SessionData, for request: Request) async throws -> Vapor.SessionID {
        let state = request.sessionStoreState(store)
        return Self.cookie(try await state.save(vaporData: data.snapshot), state)
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
        let state = SessionStoreState(store: store, session: session, presented: session.isStored ? sessionID.string : nil)
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
        return Self.cookie(try await state.save(vaporData: data.snapshot), state)
    }

    /// Deletes the session (`req.session.destroy()`).
    public func deleteSession(_ sessionID: Vapor.SessionID, for request: Request) async throws {
        let state = try await request.sessionStoreState(store, matching: sessionID.string)
        try await state.destroy()
    }

    /// The id Vapor puts in the cookie; marks the state when the cookie must not change
    /// (the id returned then is the state's, which the guard takes out again).
    private static func cookie(_ pending: SessionStoreState.Pending, _ state: SessionStoreState) -> Vapor.SessionID {
        if case .sendCookie(let id) = pending { return Vapor.SessionID(string: id) }
        state.keepsClientCookie.store(true, ordering: .relaxed)
        return Vapor.SessionID(string: state.id)
    }

    /// Runs `body` in a task whose jobs run on the request's event loop, and completes the
    /// future there: no hop to the global executor and back for work that does not wait.
    private func onEventLoop<T: Sendable>(
        _ request: Request, _ body: @escaping @Sendable () async throws -> T
    ) -> EventLoopFuture<T> {
        let promise = request.eventLoop.makePromise(of: T.self)
        Task(executorPreference: EventLoopTaskExecutor(request.eventLoop)) {
            do {
                promise.succeed(try await body())
            } catch {
                promise.fail(error)
            }
        }
        return promise.futureResult
    }
}

extension Application.Sessions.Provider {
    /// Keeps Vapor's sessions in `store`: `app.sessions.use(.sessionStore(store))`.
    ///
    /// The store is opened once by the caller and shared by every request (Vapor asks the
    /// provider for a driver on each use, so opening one here would open one per request).
    /// The application runs the store (``SessionStoreLifecycle``): background cleanup from
    /// boot, and a flush and close when it stops.
    ///
    /// It also adds a small middleware (`SessionStoreCookieGuard`) that keeps a response
    /// from handing a renewed session's old id back to the client: register the store
    /// before `app.middleware.use(app.sessions.middleware)`, as Vapor needs anyway (its
    /// middleware takes the driver chosen at that moment).
    public static func sessionStore(_ store: SessionStore) -> Self {
        .init { application in
            let driver = SessionStoreDriver(store: store)
            application.sessions.use { _ in driver }
            application.middleware.use(SessionStoreCookieGuard())
            application.lifecycle.use(SessionStoreLifecycle(store: store))
        }
    }
}
#endif

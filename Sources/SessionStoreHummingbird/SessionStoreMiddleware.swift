#if Hummingbird
import Foundation
public import Hummingbird
import Logging
public import SessionStoreCore

/// Gives every request this store's ``Session`` through `context.session` and decides the
/// cookie: the store's full behaviour in a Hummingbird app, beyond what `PersistDriver` allows
/// (server-minted 128-bit ids, regeneration with a grace period, typed attributes, touch on
/// read, merged concurrent saves).
///
/// ```swift
/// let router = Router(context: BasicSessionStoreRequestContext.self)
/// router.add(middleware: SessionStoreMiddleware(store: store))
/// ```
/// After the handler, changes are saved (nothing is written when nothing changed); a new or
/// renewed id is sent as a cookie, logout clears it, and any other response leaves the
/// client's cookie alone: an unknown cookie costs one lookup and creates no row, and a
/// request still carrying an id that another request just renewed never hands the old id
/// back nor clears the new one.
///
/// Errors become HTTP statuses: 503 when storage fails or is shut down, 413 when the session
/// outgrows the size limit, 400 for an invalid attribute name, 409 when the session was
/// destroyed or renewed by another request while this one changed it (nothing written),
/// 500 otherwise. The store's own error is logged once with the request: at `error` level
/// for a 5xx answer, so an operator sees why storage failed, at `debug` for a 4xx.
public struct SessionStoreMiddleware<Context: SessionStoreRequestContext>: RouterMiddleware {
    /// The session cookie's attributes.
    public struct CookieSettings: Sendable {
        /// The cookie name. The default is `"session"`.
        public var name: String
        /// The default is `"/"`.
        public var path: String?
        /// The default is `nil` (the host that set it).
        public var domain: String?
        /// Sent over HTTPS only. The default is `true`; browsers accept secure cookies from
        /// `http://localhost`, so development over plain HTTP on localhost works as is.
        public var secure: Bool
        /// Hidden from JavaScript. The default is `true`.
        public var httpOnly: Bool
        /// The default is `.lax`: sent on top-level navigation, not on cross-site posts.
        public var sameSite: Cookie.SameSite?
        /// `Max-Age` of the cookie; `nil` makes it last until the browser closes (the
        /// server-side expiry decides either way). The default is `nil`.
        public var maxAge: Duration?

        /// Cookie attributes; every argument left out keeps its default, so
        /// `CookieSettings(name: "sid", maxAge: .seconds(1800))` changes just those two.
        public init(
            name: String = "session",
            path: String? = "/",
            domain: String? = nil,
            secure: Bool = true,
            httpOnly: Bool = true,
            sameSite: Cookie.SameSite? = .lax,
            maxAge: Duration? = nil
        ) {
            self.name = name
            self.path = path
            self.domain = domain
            self.secure = secure
            self.httpOnly = httpOnly
            self.sameSite = sameSite
            self.maxAge = maxAge
        }
    }

    let store: SessionStore
    let cookie: CookieSettings

    /// A middleware over an open store.
    public init(store: SessionStore, cookie: CookieSettings = CookieSettings()) {
        self.store = store
        self.cookie = cookie
    }

    /// Loads the session, runs the handler, saves what changed and sets or clears the cookie.
    public func handle(
        _ request: Request, context: Context, next: (Request, Context) async throws -> Response
    ) async throws -> Response {
        let presented = Self.cookieValue(named: cookie.name, in: request.headers)
        // No stored session (no cookie, an unknown or expired id): the handler starts a new
        // one only if it uses it, so such a request mints no id and writes nothing.
        let loaded = try await mapped(context) { try await store.loadIfStored(id: presented) }
        context.session.attach(store: store, session: loaded)
        var response: Response
        do {
            response = try await next(request, context)
        } catch let error as SessionStoreError {
            throw Self.httpError(error, context)
        } catch let error as StorageError {
            throw Self.httpError(error, context)
        }
        let (current, destroyed) = context.session.state.withLock { ($0.session, $0.destroyed) }
        guard var session = current else { return response }
        if session.hasChanges {
            let outcome = try await mapped(context) { try await store.save(&session) }
            context.session.state.withLock { $0.session = session }
            if outcome == .gone {
                context.logger.debug("session ended while the request changed it; nothing was written")
                throw HTTPError(.conflict, message: "The session ended while this request changed it; the change was not saved.")
            }
        }
        if session.isStored {
            // A retired session keeps the id the client presented: the client holds the
            // renewed one already, or receives it from the request that renewed it. A session
            // with a persistent lifetime of its own ("remember me") gets a Max-Age from its
            // expiry, sent again whenever a load extended it, so the cookie slides with it.
            let persistent = store.cookieMaxAge(for: session)
            let renewsCookie = persistent != nil && session.touchedOnLoad
            if (session.id.text != presented || renewsCookie) && !session.isRetired {
                response.setCookie(makeCookie(session.id.text, maxAge: persistent.map { .seconds($0) } ?? cookie.maxAge))
            }
        } else if presented != nil && destroyed {
            // Cleared only on logout. An id that names no stored session (unknown, expired,
            // or renewed with no grace period by a request that finished first) leaves the
            // cookie alone: clearing it could wipe the renewed id the browser holds now.
            response.setCookie(makeCookie("", maxAge: .zero))
        }
        return response
    }

    /// The value of the first cookie called `name` in the request's `Cookie` fields, as
    /// Hummingbird's `request.cookies[name]` finds it (pairs split at `;`, leading spaces
    /// and tabs dropped, the name up to the first `=`), read from the field bytes in one pass
    /// without parsing every cookie into a `Cookie`.
    static func cookieValue(named name: String, in headers: HTTPFields) -> String? {
        var name = name
        return name.withUTF8 { name -> String? in
            for field in headers where field.name == .cookie {
                var value = field.value
                if let found = value.withUTF8({ Self.cookieValue(named: name, in: $0) }) { return found }
            }
            return nil
        }
    }

    private static func cookieValue(named name: UnsafeBufferPointer<UInt8>, in field: UnsafeBufferPointer<UInt8>) -> String? {
        var start = 0
        while start < field.count {
            var end = start
            while end < field.count && field[end] != UInt8(ascii: ";") { end += 1 }
            var pairStart = start
            while pairStart < end && (field[pairStart] == UInt8(ascii: " ") || field[pairStart] == UInt8(ascii: "\t")) {
                pairStart += 1
            }
            var equals = pairStart
            while equals < end && field[equals] != UInt8(ascii: "=") { equals += 1 }
            if equals < end && name.elementsEqual(field[pairStart..<equals]) {
                return String(decoding: UnsafeBufferPointer(rebasing: field[(equals + 1)..<end]), as: UTF8.self)
            }
            start = end + 1
        }
        return nil
    }

    private func makeCookie(_ value: String, maxAge: Duration?) -> Cookie {
        let seconds = maxAge.map { Int($0.components.seconds) }
        if let sameSite = cookie.sameSite {
            return Cookie(
                name: cookie.name, value: value, maxAge: seconds, domain: cookie.domain, path: cookie.path,
                secure: cookie.secure, httpOnly: cookie.httpOnly, sameSite: sameSite)
        }
        return Cookie(
            name: cookie.name, value: value, maxAge: seconds, domain: cookie.domain, path: cookie.path,
            secure: cookie.secure, httpOnly: cookie.httpOnly)
    }

    private func mapped<T>(_ context: Context, _ body: () async throws -> T) async throws -> T {
        do {
            return try await body()
        } catch let error as SessionStoreError {
            throw Self.httpError(error, context)
        } catch let error as StorageError {
            throw Self.httpError(error, context)
        }
    }

    /// The status a client sees for a store failure, with its cause logged once to the
    /// request's log: at `error` for a server-side failure (5xx: storage down or shut down,
    /// a corrupt session), which an operator sees at the default level, and at `debug` for a
    /// request's own fault (4xx). The store's errors already leave ids and payloads out of
    /// their descriptions.
    static func httpError(_ error: any Error, _ context: Context) -> HTTPError {
        let answer = status(of: error)
        let level: Logger.Level = answer.status.code >= 500 ? .error : .debug
        context.logger.log(
            level: level, "session store failed",
            metadata: ["error": "\(error)", "status": "\(answer.status.code)"])
        return answer
    }

    private static func status(of error: any Error) -> HTTPError {
        switch error {
        case let error as SessionStoreError:
            switch error.code {
            case .closed: return HTTPError(.serviceUnavailable, message: "Session storage is shut down.")
            case .dataTooLarge: return HTTPError(.contentTooLarge, message: "The session is too large.")
            case .invalidAttributeName: return HTTPError(.badRequest, message: "Invalid session attribute name.")
            case .invalidOwner, .invalidHandle: return HTTPError(.badRequest, message: "Invalid session owner, device or handle.")
            default: return HTTPError(.internalServerError, message: "Session storage failed.")
            }
        case is StorageError:
            return HTTPError(.serviceUnavailable, message: "Session storage is unavailable.")
        default:
            return HTTPError(.internalServerError, message: "Session storage failed.")
        }
    }
}
#endif

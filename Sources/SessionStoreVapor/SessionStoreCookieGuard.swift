#if Vapor
import Synchronization
import Vapor

/// Takes the session cookie out of a response whose client must keep the cookie it has.
///
/// Vapor's `SessionsMiddleware` sets the cookie on every response with a session, from the
/// id the driver returns, and a driver cannot ask it not to. The driver sets a cookie only
/// when it gives the client an id the client does not have (see ``SessionStoreDriver``);
/// otherwise it marks the request, and this middleware removes the cookie Vapor added:
/// - the id the client presented, which another request may have renewed meanwhile (the
///   browser would drop the new id and be signed out once the grace period ends);
/// - an id naming no stored session (an unknown, expired or deleted one, or a visitor
///   without data): with no grace period it would replace the renewed id the browser holds.
///
/// `app.sessions.use(.sessionStore(store))` adds it to the application's middleware, in
/// front of Vapor's sessions middleware (which is added after the driver is chosen).
/// Responses of requests the driver did not mark pass through untouched.
struct SessionStoreCookieGuard: Middleware {
    func respond(to request: Request, chainingTo next: any Responder) -> EventLoopFuture<Response> {
        next.respond(to: request).map { response in
            let storage = request.storage
            let keep = storage[SessionStoreStateKey.self]?.keepsClientCookie.load(ordering: .relaxed) ?? storage[KeepClientCookieKey.self] ?? false
            let name = request.application.sessions.configuration.cookieName
            if keep {
                Self.removeCookie(named: name, from: response)
            } else if let state = storage[SessionStoreStateKey.self] {
                // A session with a persistent lifetime of its own ("remember me"): the cookie
                // lasts as long as the session, whatever Vapor's cookie factory says.
                let session = state.content.withLock { $0.session }
                if let maxAge = state.store.cookieMaxAge(for: session) {
                    Self.setMaxAge(maxAge, onCookie: name, of: response)
                }
            }
            return response
        }
    }

    /// Gives the `Set-Cookie` header for `name` a `Max-Age` of `seconds` in place of the
    /// factory's `Max-Age` and `Expires`.
    static func setMaxAge(_ seconds: Int, onCookie name: String, of response: Response) {
        let values = response.headers[.setCookie]
        let prefix = name + "="
        guard values.contains(where: { $0.hasPrefix(prefix) }) else { return }
        response.headers.remove(name: .setCookie)
        for value in values {
            guard value.hasPrefix(prefix) else {
                response.headers.add(name: .setCookie, value: value)
                continue
            }
            let kept = value.split(separator: ";").map { $0.trimmingCharacters(in: .whitespaces) }.filter { part in
                let lowered = part.lowercased()
                return !lowered.hasPrefix("max-age=") && !lowered.hasPrefix("expires=")
            }
            response.headers.add(name: .setCookie, value: (kept + ["Max-Age=\(seconds)"]).joined(separator: "; "))
        }
    }

    /// Removes the `Set-Cookie` headers for `name`, keeping any other cookie the app set.
    static func removeCookie(named name: String, from response: Response) {
        let values = response.headers[.setCookie]
        let prefix = name + "="
        let kept = values.filter { !$0.hasPrefix(prefix) }
        guard kept.count != values.count else { return }
        response.headers.remove(name: .setCookie)
        for value in kept { response.headers.add(name: .setCookie, value: value) }
    }
}
#endif

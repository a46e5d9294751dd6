#if Hummingbird
import Foundation
import Hummingbird
import HummingbirdTesting
import Logging
import SessionStoreCore
import SessionStoreDriverTestSupport
import SessionStoreHummingbird
import SessionStoreTestSupport
import SessionStoreTesting
import Testing

/// The native middleware: this store's sessions in Hummingbird handlers, counted in the
/// database.
@Suite("SessionStoreMiddleware")
struct SessionStoreMiddlewareTests {
    struct Fixture {
        let store: SessionStore
        let clock: ManualClock
        let database: DriverTestDatabase
    }

    func withStore(_ engine: Engine, _ body: (Fixture) async throws -> Void) async throws {
        try await withDatabase(engine) { database in
            let clock = ManualClock()
            let store = try SessionStore(backend: database.backend, clock: clock)
            try await body(Fixture(store: store, clock: clock, database: database))
        }
    }

    /// Login (regenerates), logout, a read-only page, a counter, and per-key writes.
    func application(
        _ store: SessionStore, cookie: SessionStoreMiddleware<BasicSessionStoreRequestContext>.CookieSettings = .init(),
        logger: Logger? = nil
    ) -> some ApplicationProtocol {
        let router = Router(context: BasicSessionStoreRequestContext.self)
        router.add(middleware: SessionStoreMiddleware(store: store, cookie: cookie))
        router.post("login") { request, context -> HTTPResponse.Status in
            let name = try request.uri.queryParameters.require("name")
            try await context.session.regenerateID()
            try context.session.set("user", name)
            return .ok
        }
        router.post("logout") { _, context -> HTTPResponse.Status in
            try await context.session.destroy()
            return .ok
        }
        router.get("me") { _, context -> String in
            guard let user: String = try context.session.get("user") else { throw HTTPError(.unauthorized) }
            return user
        }
        router.get("peek") { _, context -> String in
            try context.session.get("user", as: String.self) ?? "none"
        }
        router.post("count") { _, context -> String in
            String(try context.session.increment("count"))
        }
        router.post("set/:key") { _, context -> HTTPResponse.Status in
            try context.session.set(try context.parameters.require("key"), true)
            return .ok
        }
        router.post("attribute") { request, context -> HTTPResponse.Status in
            try context.session.set(try request.uri.queryParameters.require("name"), 1)
            return .ok
        }
        router.post("new-visitor") { _, context -> String in
            // A request without a stored session: its new session's id, read before and
            // after a change, is the one the cookie then carries.
            let before = try context.session.current.id.text
            try context.session.set("user", "visitor")
            let after = try context.session.current.id.text
            return before == after ? before : "changed"
        }
        router.post("ended-meanwhile") { request, context -> HTTPResponse.Status in
            // Another request logs out while this one runs.
            let id = try context.session.current.id.text
            var other = try await store.load(id: id)
            try await store.destroy(&other)
            try context.session.set("late", 1)
            return .ok
        }
        return Application(responder: router.buildResponder(), logger: logger)
    }

    static func cookie(_ response: TestResponse) -> ParsedCookie? {
        ParsedCookie(response.headers[.setCookie])
    }

    @Test("login stores the session under a new 128-bit id sent as a secure cookie", arguments: Engine.available)
    func loginSetsSecureCookie(engine: Engine) async throws {
        try await withStore(engine) { fixture in
            try await application(fixture.store).test(.router) { client in
                let cookie = try await client.execute(uri: "/login?name=adam", method: .post) { response in
                    #expect(response.status == .ok)
                    return try #require(Self.cookie(response))
                }
                #expect(cookie.name == "session")
                #expect(SessionID(validating: cookie.value) != nil)
                #expect(cookie.secure && cookie.httpOnly && cookie.sameSite == "Lax" && cookie.path == "/")
                try await client.execute(uri: "/me", method: .get, headers: [.cookie: "session=\(cookie.value)"]) { response in
                    #expect(String(buffer: response.body) == "adam")
                    #expect(response.headers[.setCookie] == nil)
                }
            }
            #expect(try await fixture.database.rows() == 1)
        }
    }

    @Test("regeneration: the old id works during the grace period, then never again", arguments: Engine.available)
    func regeneration(engine: Engine) async throws {
        try await withStore(engine) { fixture in
            try await application(fixture.store).test(.router) { client in
                let first = try await client.execute(uri: "/login?name=adam", method: .post) { try #require(Self.cookie($0)) }
                let second = try await client.execute(
                    uri: "/login?name=adam", method: .post, headers: [.cookie: "session=\(first.value)"]
                ) { try #require(Self.cookie($0)) }
                #expect(second.value != first.value)
                try await client.execute(uri: "/me", method: .get, headers: [.cookie: "session=\(first.value)"]) { response in
                    #expect(String(buffer: response.body) == "adam", "in flight during the grace period")
                }
                fixture.clock.advance(by: .seconds(6))
                try await client.execute(uri: "/peek", method: .get, headers: [.cookie: "session=\(first.value)"]) { response in
                    #expect(String(buffer: response.body) == "none")
                    #expect(Self.cookie(response) == nil, "a cookie naming no session is left alone, not cleared")
                }
                try await client.execute(uri: "/me", method: .get, headers: [.cookie: "session=\(second.value)"]) { response in
                    #expect(String(buffer: response.body) == "adam")
                }
            }
        }
    }

    @Test("logout deletes the row and clears the cookie", arguments: Engine.available)
    func logout(engine: Engine) async throws {
        try await withStore(engine) { fixture in
            try await application(fixture.store).test(.router) { client in
                let cookie = try await client.execute(uri: "/login?name=adam", method: .post) { try #require(Self.cookie($0)) }
                try await client.execute(uri: "/logout", method: .post, headers: [.cookie: "session=\(cookie.value)"]) { response in
                    let cleared = try #require(Self.cookie(response))
                    #expect(cleared.value == "" && cleared.maxAge == 0)
                }
                try await client.execute(uri: "/me", method: .get, headers: [.cookie: "session=\(cookie.value)"]) { response in
                    #expect(response.status == .unauthorized)
                }
            }
            #expect(try await fixture.database.rows() == 0)
        }
    }

    @Test("a __Host- cookie is cleared at logout over HTTP: the clearing cookie keeps Secure, Path=/ and no Domain")
    func hostPrefixedCookieIsClearedAtLogout() async throws {
        try await withStore(.sqlite) { fixture in
            let app = application(fixture.store, cookie: .init(name: "__Host-session"))
            try await app.test(.live) { client in
                let cookie = try await client.execute(uri: "/login?name=adam", method: .post) { try #require(Self.cookie($0)) }
                #expect(cookie.name == "__Host-session")
                let headers: HTTPFields = [.cookie: "__Host-session=\(cookie.value)"]
                try await client.execute(uri: "/logout", method: .post, headers: headers) { response in
                    // What browsers demand of any __Host- cookie, the clearing one included.
                    let cleared = try #require(Self.cookie(response))
                    #expect(cleared.name == "__Host-session")
                    #expect(cleared.value == "" && cleared.maxAge == 0)
                    #expect(cleared.secure && cleared.path == "/" && cleared.domain == nil)
                }
                try await client.execute(uri: "/me", method: .get, headers: headers) { response in
                    #expect(response.status == .unauthorized)
                }
            }
            #expect(try await fixture.database.rows() == 0)
        }
    }

    @Test("1000 read-only requests over HTTP write no row (counted in the database)", arguments: Engine.available)
    func readOnlyRequestsWriteNothing(engine: Engine) async throws {
        try await withStore(engine) { fixture in
            try await application(fixture.store).test(.live) { client in
                let cookie = try await client.execute(uri: "/login?name=adam", method: .post) { try #require(Self.cookie($0)) }
                let before = try await fixture.database.writes()
                for _ in 0..<1000 {
                    try await client.execute(uri: "/me", method: .get, headers: [.cookie: "session=\(cookie.value)"]) { response in
                        #expect(response.status == .ok)
                    }
                }
                #expect(try await fixture.database.writes() == before)
            }
        }
    }

    @Test("1000 requests over HTTP with unknown or malformed cookies create no row", arguments: Engine.available)
    func unknownCookiesCreateNothing(engine: Engine) async throws {
        try await withStore(engine) { fixture in
            try await application(fixture.store).test(.live) { client in
                for index in 0..<1000 {
                    let value = index.isMultiple(of: 2) ? SessionID.generate().text : "malformed-\(index)"
                    try await client.execute(uri: "/me", method: .get, headers: [.cookie: "session=\(value)"]) { response in
                        #expect(response.status == .unauthorized)
                    }
                }
            }
            #expect(try await fixture.database.writes() == 0)
            #expect(try await fixture.database.rows() == 0)
        }
    }

    @Test("20 parallel requests on one session, each setting its own key, keep all 20", arguments: Engine.available)
    func parallelRequestsKeepEveryKey(engine: Engine) async throws {
        try await withStore(engine) { fixture in
            try await application(fixture.store).test(.router) { client in
                let cookie = try await client.execute(uri: "/login?name=adam", method: .post) { try #require(Self.cookie($0)) }
                try await withThrowingTaskGroup(of: Void.self) { group in
                    for index in 0..<20 {
                        group.addTask {
                            try await client.execute(uri: "/set/key\(index)", method: .post, headers: [.cookie: "session=\(cookie.value)"]) {
                                response in #expect(response.status == .ok)
                            }
                        }
                    }
                    try await group.waitForAll()
                }
                let session = try await fixture.store.load(id: cookie.value)
                #expect(Set(session.keys) == Set((0..<20).map { "key\($0)" } + ["user"]))
            }
        }
    }

    @Test("parallel increments on one session add up", arguments: Engine.available)
    func parallelIncrements(engine: Engine) async throws {
        try await withStore(engine) { fixture in
            try await application(fixture.store).test(.router) { client in
                let cookie = try await client.execute(uri: "/login?name=adam", method: .post) { try #require(Self.cookie($0)) }
                try await withThrowingTaskGroup(of: Void.self) { group in
                    for _ in 0..<32 {
                        group.addTask {
                            try await client.execute(uri: "/count", method: .post, headers: [.cookie: "session=\(cookie.value)"]) {
                                response in #expect(response.status == .ok)
                            }
                        }
                    }
                    try await group.waitForAll()
                }
                let session = try await fixture.store.load(id: cookie.value)
                #expect(try session.get("count", as: Int.self) == 32)
            }
        }
    }

    @Test("a change to a session that ended meanwhile answers 409 and writes nothing", arguments: Engine.available)
    func changeToEndedSessionIsConflict(engine: Engine) async throws {
        try await withStore(engine) { fixture in
            try await application(fixture.store).test(.router) { client in
                let cookie = try await client.execute(uri: "/login?name=adam", method: .post) { try #require(Self.cookie($0)) }
                try await client.execute(uri: "/ended-meanwhile", method: .post, headers: [.cookie: "session=\(cookie.value)"]) {
                    response in #expect(response.status == .conflict)
                }
            }
            #expect(try await fixture.database.rows() == 0)
        }
    }

    @Test("an invalid attribute name from the request answers 400", arguments: Engine.available)
    func invalidAttributeNameIsBadRequest(engine: Engine) async throws {
        try await withStore(engine) { fixture in
            try await application(fixture.store).test(.router) { client in
                try await client.execute(uri: "/attribute?name=", method: .post) { response in
                    #expect(response.status == .badRequest)
                }
            }
            #expect(try await fixture.database.rows() == 0)
        }
    }

    @Test("storage that is shut down answers 503")
    func closedStoreIsServiceUnavailable() async throws {
        try await withStore(.sqlite) { fixture in
            try await fixture.store.shutdown()
            try await application(fixture.store).test(.router) { client in
                try await client.execute(uri: "/me", method: .get) { response in
                    #expect(response.status == .serviceUnavailable)
                }
            }
        }
    }

    @Test("cookie settings from the labelled initializer change what they name and keep the other defaults")
    func labelledCookieSettings() async throws {
        try await withStore(.sqlite) { fixture in
            let app = application(fixture.store, cookie: .init(name: "sid", maxAge: .seconds(1800)))
            try await app.test(.router) { client in
                let cookie = try await client.execute(uri: "/login?name=adam", method: .post) { response in
                    try #require(Self.cookie(response))
                }
                #expect(cookie.name == "sid")
                #expect(cookie.maxAge == 1800)
                #expect(cookie.secure && cookie.httpOnly)
                #expect(cookie.sameSite == "Lax")
                #expect(cookie.path == "/")
                #expect(cookie.domain == nil)
                try await client.execute(uri: "/me", method: .get, headers: [.cookie: "sid=\(cookie.value)"]) { response in
                    #expect(String(buffer: response.body) == "adam")
                }
            }
        }
    }

    /// An app's own context, written as the Hummingbird article shows.
    struct AppRequestContext: SessionStoreRequestContext {
        var coreContext: CoreRequestContextStorage
        let session = RequestSession()

        init(source: ApplicationRequestContextSource) {
            self.coreContext = .init(source: source)
        }
    }

    @Test("an app's own context that adds a RequestSession gets sessions from the middleware")
    func ownContextWithARequestSession() async throws {
        try await withStore(.sqlite) { fixture in
            let router = Router(context: AppRequestContext.self)
            router.add(middleware: SessionStoreMiddleware(store: fixture.store, cookie: .init(name: "sid")))
            router.post("login") { _, context -> HTTPResponse.Status in
                try context.session.set("user", "adam")
                return .ok
            }
            router.get("me") { _, context -> String in
                try context.session.get("user", as: String.self) ?? "none"
            }
            try await Application(router: router).test(.router) { client in
                let cookie = try await client.execute(uri: "/login", method: .post) { try #require(Self.cookie($0)) }
                #expect(cookie.name == "sid")
                try await client.execute(uri: "/me", method: .get, headers: [.cookie: "sid=\(cookie.value)"]) { response in
                    #expect(String(buffer: response.body) == "adam")
                }
            }
            #expect(try await fixture.database.rows() == 1)
        }
    }

    @Test("a storage failure answers 503 and logs its cause once at error level, without the id")
    func storageFailureLogsItsCause() async throws {
        let log = CapturedLog()
        try await withStore(.sqlite) { fixture in
            try await application(fixture.store, logger: log.logger).test(.router) { client in
                let cookie = try await client.execute(uri: "/login?name=adam", method: .post) { response in
                    try #require(Self.cookie(response))
                }
                try fixture.database.dropSessionsTable()
                try await client.execute(uri: "/me", method: .get, headers: [.cookie: "session=\(cookie.value)"]) {
                    response in
                    #expect(response.status == .serviceUnavailable)
                    #expect(!String(buffer: response.body).contains("no such table"))
                }
                let errors = log.lines(at: .error)
                #expect(errors.count == 1)
                #expect(errors.first?.contains("no such table") == true)
                #expect(!log.text.contains(cookie.value))
            }
        }
    }

    @Test("a new visitor without data gets no cookie and no row", arguments: Engine.available)
    func emptySessionSetsNoCookie(engine: Engine) async throws {
        try await withStore(engine) { fixture in
            try await application(fixture.store).test(.router) { client in
                try await client.execute(uri: "/me", method: .get) { response in
                    #expect(response.status == .unauthorized)
                    #expect(response.headers[.setCookie] == nil)
                }
            }
            #expect(try await fixture.database.writes() == 0)
        }
    }

    @Test("the session cookie is found by its exact name among other cookies, in any Cookie field", arguments: Engine.available)
    func cookieAmongOthers(engine: Engine) async throws {
        try await withStore(engine) { fixture in
            try await application(fixture.store).test(.router) { client in
                let cookie = try await client.execute(uri: "/login?name=adam", method: .post) { try #require(Self.cookie($0)) }
                let headerValues = [
                    "theme=dark; xsession=bogus;session2=bogus; \tsession=\(cookie.value); session=second",
                    "a=1;session=\(cookie.value)",
                ]
                for value in headerValues {
                    try await client.execute(uri: "/me", method: .get, headers: [.cookie: value]) { response in
                        #expect(String(buffer: response.body) == "adam", "\(value)")
                        #expect(response.headers[.setCookie] == nil)
                    }
                }
                var fields = HTTPFields()
                fields[values: .cookie] = ["theme=dark; lang=en", "session=\(cookie.value)"]
                try await client.execute(uri: "/me", method: .get, headers: fields) { response in
                    #expect(String(buffer: response.body) == "adam", "the second Cookie field")
                }
                for value in ["session", "session =\(cookie.value)", "Session=\(cookie.value)", "session="] {
                    try await client.execute(uri: "/peek", method: .get, headers: [.cookie: value]) { response in
                        #expect(String(buffer: response.body) == "none", "\(value) names no stored session")
                        #expect(response.headers[.setCookie] == nil)
                    }
                }
            }
            #expect(try await fixture.database.rows() == 1)
        }
    }

    @Test("a visitor's new session keeps one id through the request, and the cookie carries it", arguments: Engine.available)
    func newVisitorKeepsOneID(engine: Engine) async throws {
        try await withStore(engine) { fixture in
            try await application(fixture.store).test(.router) { client in
                for headers: HTTPFields in [[:], [.cookie: "session=\(SessionID.generate().text)"]] {
                    try await client.execute(uri: "/new-visitor", method: .post, headers: headers) { response in
                        let id = String(buffer: response.body)
                        #expect(SessionID(validating: id) != nil)
                        #expect(Self.cookie(response)?.value == id)
                    }
                }
            }
            #expect(try await fixture.database.rows() == 2)
        }
    }
}
#endif

#if Vapor
import Foundation
import SessionStoreCore
import SessionStoreDriverTestSupport
import SessionStoreTestSupport
import SessionStoreTesting
@testable import SessionStoreVapor
import Synchronization
import Testing
import Vapor
import VaporTesting

/// The Vapor driver through Vapor's own sessions middleware and VaporTesting, with every
/// write counted in the database.
@Suite("SessionStoreDriver (Vapor)")
struct SessionStoreDriverTests {
    struct Fixture {
        let store: SessionStore
        let clock: ManualClock
        let database: DriverTestDatabase
    }

    /// Records the order of the driver calls Vapor's middleware makes, passing them on.
    final class RecordingDriver: AsyncSessionDriver {
        let driver: SessionStoreDriver
        let calls = Mutex<[String]>([])

        init(driver: SessionStoreDriver) {
            self.driver = driver
        }

        func take() -> [String] { calls.withLock { calls in defer { calls = [] }; return calls } }

        func createSession(_ data: SessionData, for request: Request) async throws -> Vapor.SessionID {
            calls.withLock { $0.append("create") }
            return try await driver.createSession(data, for: request)
        }
        func readSession(_ sessionID: Vapor.SessionID, for request: Request) async throws -> SessionData? {
            calls.withLock { $0.append("read") }
            return try await driver.readSession(sessionID, for: request)
        }
        func updateSession(_ sessionID: Vapor.SessionID, to data: SessionData, for request: Request) async throws -> Vapor.SessionID {
            calls.withLock { $0.append("update") }
            return try await driver.updateSession(sessionID, to: data, for: request)
        }
        func deleteSession(_ sessionID: Vapor.SessionID, for request: Request) async throws {
            calls.withLock { $0.append("delete") }
            try await driver.deleteSession(sessionID, for: request)
        }
    }

    func withStore(_ engine: Engine, _ body: (Fixture) async throws -> Void) async throws {
        try await withDatabase(engine) { database in
            let clock = ManualClock()
            let store = try SessionStore(backend: database.backend, clock: clock)
            try await body(Fixture(store: store, clock: clock, database: database))
        }
    }

    /// Login (regenerates), logout, a read-only page, a counter, per-key writes, typed values.
    static func routes(_ app: Application, store: SessionStore) {
        app.post("login") { req async throws -> HTTPStatus in
            let name = try req.query.get(String.self, at: "name")
            try await req.typedSession.regenerateID()
            req.session.data["user"] = name
            return .ok
        }
        app.post("logout") { req -> HTTPStatus in
            req.session.destroy()
            return .ok
        }
        app.get("me") { req -> String in
            guard let user = req.session.data["user"] else { throw Abort(.unauthorized) }
            return user
        }
        app.get("peek") { req -> String in
            req.session.data["user"] ?? "none"
        }
        app.post("set", ":key") { req -> HTTPStatus in
            req.session.data[try req.parameters.require("key")] = "1"
            return .ok
        }
        app.post("cart") { req -> HTTPStatus in
            try req.typedSession.set("cart", [3, 1, 4])
            return .ok
        }
        app.get("cart") { req -> String in
            let cart = try req.typedSession.get("cart", as: [Int].self) ?? []
            return cart.map(String.init).joined(separator: ",")
        }
        app.post("count") { req -> String in
            String(try req.typedSession.increment("count"))
        }
        app.post("ended-meanwhile") { req async throws -> HTTPStatus in
            // Another request logs out while this one runs.
            var other = try await store.load(id: try req.typedSession.id)
            try await store.destroy(&other)
            req.session.data["late"] = "1"
            return .ok
        }
        app.post("save-early") { req async throws -> String in
            req.session.data["early"] = "1"
            return "\(try await req.typedSession.save())"
        }
    }

    /// An app with the store registered in one line, Vapor's middleware and the routes.
    func withVapor(_ store: SessionStore, _ body: (Application) async throws -> Void) async throws {
        try await withApp(configure: { app in
            app.sessions.use(.sessionStore(store))
            app.middleware.use(app.sessions.middleware)
            Self.routes(app, store: store)
        }, body)
    }

    /// Runs the app's HTTP server on a free loopback port for `body`, which gets its base URL.
    static func withServer<T>(_ app: Application, _ body: (String) async throws -> T) async throws -> T {
        try await app.server.start(address: .hostname("127.0.0.1", port: 0))
        let result: T
        do {
            let port = try #require(app.http.server.shared.localAddress?.port)
            result = try await body("http://127.0.0.1:\(port)")
        } catch {
            await app.server.shutdown()
            throw error
        }
        await app.server.shutdown()
        return result
    }

    static func headers(_ id: String) -> HTTPHeaders {
        ["Cookie": "vapor-session=\(id)"]
    }

    @Test("the one line hands Vapor the same driver and store every time")
    func oneLineRegistration() async throws {
        try await withStore(.sqlite) { fixture in
            try await withVapor(fixture.store) { app in
                let first = try #require(app.sessions.driver as? SessionStoreDriver)
                let second = try #require(app.sessions.driver as? SessionStoreDriver)
                #expect(first.store === fixture.store && second.store === fixture.store)
            }
        }
    }

    @Test("driver calls: create for a new session, read+update with the cookie, read+delete on destroy",
          arguments: Engine.available)
    func callOrder(engine: Engine) async throws {
        try await withStore(engine) { fixture in
            let recorder = RecordingDriver(driver: SessionStoreDriver(store: fixture.store))
            try await withApp(configure: { app in
                app.sessions.use { _ in recorder }
                app.middleware.use(app.sessions.middleware)
                Self.routes(app, store: fixture.store)
            }) { app in
                let id = try await app.testing().sendRequest(.POST, "set/a").cookieValue()
                #expect(recorder.take() == ["create"])
                #expect(try await fixture.database.rows() == 1)
                try await app.testing().test(.GET, "peek", headers: Self.headers(id)) { _ in }
                #expect(recorder.take() == ["read", "update"])
                #expect(try await fixture.database.writes() == 1, "the update wrote nothing")
                try await app.testing().test(.POST, "logout", headers: Self.headers(id)) { response in
                    #expect(response.headers.setCookie?["vapor-session"]?.expires.map { $0 < Date() } == true)
                }
                #expect(recorder.take() == ["read", "delete"])
                #expect(try await fixture.database.rows() == 0)
            }
        }
    }

    @Test("an invalid cookie gets a new id, never adopted, which works afterwards", arguments: Engine.available)
    func invalidCookie(engine: Engine) async throws {
        try await withStore(engine) { fixture in
            try await withVapor(fixture.store) { app in
                let id = try await app.testing().sendRequest(.POST, "login?name=adam", headers: Self.headers("foo"))
                    .cookieValue()
                #expect(id != "foo")
                #expect(SessionStoreCore.SessionID(validating: id) != nil)
                try await app.testing().test(.GET, "me", headers: Self.headers(id)) { response in
                    #expect(response.body.string == "adam")
                }
                try await app.testing().test(.GET, "me", headers: Self.headers("foo")) { response in
                    #expect(response.status == .unauthorized)
                }
            }
        }
    }

    @Test("the session cookie is found among other cookies in the header", arguments: Engine.available)
    func cookieParsing(engine: Engine) async throws {
        try await withStore(engine) { fixture in
            try await withVapor(fixture.store) { app in
                let id = try await app.testing().sendRequest(.POST, "login?name=adam").cookieValue()
                let header: HTTPHeaders = ["Cookie": "theme=dark; vapor-session=\(id); lang=\"en\""]
                try await app.testing().test(.GET, "me", headers: header) { response in
                    #expect(response.body.string == "adam")
                }
            }
        }
    }

    @Test("a quoted cookie value with spaces around it names the same session", arguments: Engine.available)
    func quotedCookie(engine: Engine) async throws {
        try await withStore(engine) { fixture in
            try await withVapor(fixture.store) { app in
                let id = try await app.testing().sendRequest(.POST, "login?name=adam").cookieValue()
                var headers = HTTPHeaders()
                headers.replaceOrAdd(name: .cookie, value: "vapor-session= \"\(id)\" ")
                try await app.testing().test(.GET, "me", headers: headers) { response in
                    #expect(response.body.string == "adam")
                }
            }
        }
    }

    @Test("1000 read-only requests over HTTP write no row (counted in the database)", arguments: Engine.available)
    func readOnlyRequestsWriteNothing(engine: Engine) async throws {
        try await withStore(engine) { fixture in
            try await withVapor(fixture.store) { app in
                try await Self.withServer(app) { base in
                    let login = try await app.client.post(URI(string: base + "/login?name=adam"))
                    let id = try #require(login.headers.setCookie?["vapor-session"]?.string)
                    let before = try await fixture.database.writes()
                    for _ in 0..<1000 {
                        let response = try await app.client.get(URI(string: base + "/me"), headers: Self.headers(id))
                        #expect(response.status == .ok)
                    }
                    #expect(try await fixture.database.writes() == before)
                }
            }
        }
    }

    @Test("1000 requests over HTTP with unknown or malformed cookies create no row", arguments: Engine.available)
    func unknownCookiesCreateNothing(engine: Engine) async throws {
        try await withStore(engine) { fixture in
            try await withVapor(fixture.store) { app in
                try await Self.withServer(app) { base in
                    for index in 0..<1000 {
                        let value = index.isMultiple(of: 2) ? SessionStoreCore.SessionID.generate().text : "malformed-\(index)"
                        let response = try await app.client.get(URI(string: base + "/me"), headers: Self.headers(value))
                        #expect(response.status == .unauthorized)
                    }
                }
            }
            #expect(try await fixture.database.writes() == 0)
            #expect(try await fixture.database.rows() == 0)
        }
    }

    @Test("regeneration: the old id works during the grace period, then never again", arguments: Engine.available)
    func regeneration(engine: Engine) async throws {
        try await withStore(engine) { fixture in
            try await withVapor(fixture.store) { app in
                let first = try await app.testing().sendRequest(.POST, "login?name=adam").cookieValue()
                let second = try await app.testing().sendRequest(.POST, "login?name=adam", headers: Self.headers(first))
                    .cookieValue()
                #expect(second != first)
                try await app.testing().test(.GET, "me", headers: Self.headers(first)) { response in
                    #expect(response.body.string == "adam", "in flight during the grace period")
                }
                fixture.clock.advance(by: .seconds(6))
                try await app.testing().test(.GET, "me", headers: Self.headers(first)) { response in
                    #expect(response.status == .unauthorized)
                }
                try await app.testing().test(.GET, "me", headers: Self.headers(second)) { response in
                    #expect(response.body.string == "adam")
                }
            }
        }
    }

    @Test("20 parallel requests on one session, each setting its own key, keep all 20", arguments: Engine.available)
    func parallelRequestsKeepEveryKey(engine: Engine) async throws {
        try await withStore(engine) { fixture in
            try await withVapor(fixture.store) { app in
                // One connection per request, and no client-side limit on waiting for one: the
                // test is about the 20 saves, not the HTTP client's pool on a loaded machine.
                app.http.client.configuration.connectionPool.concurrentHTTP1ConnectionsPerHostSoftLimit = 24
                app.http.client.configuration.timeout = .init(connect: .seconds(600), read: .seconds(600))
                let id = try await Self.withServer(app) { base in
                    let login = try await app.client.post(URI(string: base + "/login?name=adam"))
                    let id = try #require(login.headers.setCookie?["vapor-session"]?.string)
                    try await withThrowingTaskGroup(of: Void.self) { group in
                        for index in 0..<20 {
                            group.addTask {
                                let response = try await app.client.post(
                                    URI(string: base + "/set/key\(index)"), headers: Self.headers(id))
                                #expect(response.status == .ok)
                            }
                        }
                        try await group.waitForAll()
                    }
                    return id
                }
                let session = try await fixture.store.load(id: id)
                #expect(Set(session.keys) == Set((0..<20).map { "key\($0)" } + ["user"]))
            }
        }
    }

    @Test("typed Codable attributes live beside Vapor's string data and survive its changes", arguments: Engine.available)
    func typedAttributes(engine: Engine) async throws {
        try await withStore(engine) { fixture in
            try await withVapor(fixture.store) { app in
                let id = try await app.testing().sendRequest(.POST, "login?name=adam").cookieValue()
                try await app.testing().test(.POST, "cart", headers: Self.headers(id)) { _ in }
                try await app.testing().test(.POST, "set/other", headers: Self.headers(id)) { _ in }
                try await app.testing().test(.GET, "cart", headers: Self.headers(id)) { response in
                    #expect(response.body.string == "3,1,4")
                }
                let session = try await fixture.store.load(id: id)
                #expect(Set(session.keys) == ["cart", "other", "user"])
            }
        }
    }

    @Test("concurrent increments through the typed view add up", arguments: Engine.available)
    func parallelIncrements(engine: Engine) async throws {
        try await withStore(engine) { fixture in
            try await withVapor(fixture.store) { app in
                let tester = try app.testing()
                let id = try await tester.sendRequest(.POST, "login?name=adam").cookieValue()
                try await withThrowingTaskGroup(of: Void.self) { group in
                    for _ in 0..<32 {
                        group.addTask { _ = try await tester.sendRequest(.POST, "count", headers: Self.headers(id)) }
                    }
                    try await group.waitForAll()
                }
                #expect(try await fixture.store.load(id: id).get("count", as: Int.self) == 32)
            }
        }
    }

    @Test("a change to a session that ended meanwhile answers 409 and writes nothing", arguments: Engine.available)
    func changeToEndedSessionIsConflict(engine: Engine) async throws {
        try await withStore(engine) { fixture in
            try await withVapor(fixture.store) { app in
                let id = try await app.testing().sendRequest(.POST, "login?name=adam").cookieValue()
                try await app.testing().test(.POST, "ended-meanwhile", headers: Self.headers(id)) { response in
                    #expect(response.status == .conflict)
                }
            }
            #expect(try await fixture.database.rows() == 0)
        }
    }

    @Test("an early save reports its outcome and leaves the middleware nothing to write", arguments: Engine.available)
    func earlySave(engine: Engine) async throws {
        try await withStore(engine) { fixture in
            try await withVapor(fixture.store) { app in
                let id = try await app.testing().sendRequest(.POST, "login?name=adam").cookieValue()
                let before = try await fixture.database.writes()
                try await app.testing().test(.POST, "save-early", headers: Self.headers(id)) { response in
                    #expect(response.body.string == "updated")
                }
                #expect(try await fixture.database.writes() == before + 1)
            }
        }
    }

    @Test("a new visitor who stores nothing creates no row", arguments: Engine.available)
    func emptySessionCreatesNoRow(engine: Engine) async throws {
        try await withStore(engine) { fixture in
            try await withVapor(fixture.store) { app in
                try await app.testing().test(.GET, "me") { response in
                    #expect(response.status == .unauthorized)
                }
            }
            #expect(try await fixture.database.writes() == 0)
        }
    }

    @Test("a read-only request sets no cookie: the client keeps the id it has", arguments: Engine.available)
    func readOnlyRequestSetsNoCookie(engine: Engine) async throws {
        try await withStore(engine) { fixture in
            try await withVapor(fixture.store) { app in
                let id = try await app.testing().sendRequest(.POST, "login?name=adam").cookieValue()
                try await app.testing().test(.GET, "me", headers: Self.headers(id)) { response in
                    #expect(response.body.string == "adam")
                    #expect(response.headers.setCookie?["vapor-session"] == nil)
                }
            }
        }
    }

    @Test("a new visitor who stores nothing gets no cookie", arguments: Engine.available)
    func emptySessionSetsNoCookie(engine: Engine) async throws {
        try await withStore(engine) { fixture in
            try await withVapor(fixture.store) { app in
                try await app.testing().test(.GET, "peek") { response in
                    #expect(response.body.string == "none")
                    #expect(response.headers.setCookie?["vapor-session"] == nil)
                }
            }
        }
    }

    @Test("storage that is shut down answers 503")
    func closedStoreIsServiceUnavailable() async throws {
        try await withStore(.sqlite) { fixture in
            try await withVapor(fixture.store) { app in
                let id = try await app.testing().sendRequest(.POST, "login?name=adam").cookieValue()
                try await fixture.store.shutdown()
                try await app.testing().test(.GET, "me", headers: Self.headers(id)) { response in
                    #expect(response.status == .serviceUnavailable)
                }
            }
        }
    }
}

extension SessionStoreDriverTests {
    @Test("a storage failure answers 503 and logs its cause once at error level, without the id")
    func storageFailureLogsItsCause() async throws {
        let log = CapturedLog()
        try await withStore(.sqlite) { fixture in
            try await withApp(configure: { app in
                app.logger = log.logger
                app.sessions.use(.sessionStore(fixture.store))
                app.middleware.use(app.sessions.middleware)
                Self.routes(app, store: fixture.store)
            }) { app in
                let id = try await app.testing().sendRequest(.POST, "login?name=adam").cookieValue()
                try fixture.database.dropSessionsTable()
                try await app.testing().test(.GET, "me", headers: Self.headers(id)) { response in
                    #expect(response.status == .serviceUnavailable)
                    #expect(!response.body.string.contains("no such table"))
                }
                let errors = log.lines(at: .error)
                #expect(errors.count == 1)
                #expect(errors.first?.contains("no such table") == true)
                #expect(!log.text.contains(id))
            }
        }
    }
}

extension SessionStoreDriverTests {
    @Test("the secure cookie the Vapor article recommends is set at login and cleared at logout over HTTP")
    func recommendedCookieIsClearedAtLogout() async throws {
        try await withStore(.sqlite) { fixture in
            try await withApp(configure: { app in
                // As UsingWithVapor.md recommends.
                app.sessions.configuration = SessionsConfiguration(cookieName: "session") { id in
                    HTTPCookies.Value(string: id.string, isSecure: true, isHTTPOnly: true, sameSite: .lax)
                }
                app.sessions.use(.sessionStore(fixture.store))
                app.middleware.use(app.sessions.middleware)
                Self.routes(app, store: fixture.store)
            }) { app in
                try await Self.withServer(app) { base in
                    let login = try await app.client.post(URI(string: base + "/login?name=adam"))
                    let set = try #require(login.headers[.setCookie].first { $0.hasPrefix("session=") })
                    let attributes = Set(set.split(separator: ";").map { $0.trimmingCharacters(in: .whitespaces) })
                    #expect(attributes.isSuperset(of: ["Secure", "HttpOnly", "Path=/", "SameSite=Lax"]))
                    let id = try #require(login.headers.setCookie?["session"]?.string)
                    let cookie: HTTPHeaders = ["Cookie": "session=\(id)"]

                    let logout = try await app.client.post(URI(string: base + "/logout"), headers: cookie)
                    #expect(logout.status == .ok)
                    // A browser removes the cookie when a Set-Cookie with its name, path and
                    // domain has an expiry in the past: only a `__Host-` or `__Secure-` name
                    // would also demand `Secure`, which Vapor's clearing cookie lacks.
                    let cleared = try #require(logout.headers[.setCookie].first { $0.hasPrefix("session=") })
                    let parts = cleared.split(separator: ";").map { $0.trimmingCharacters(in: .whitespaces) }
                    #expect(parts.first == "session=")
                    #expect(parts.contains("Path=/"))
                    #expect(!parts.contains { $0.hasPrefix("Domain=") })
                    let expires = try #require(parts.first { $0.hasPrefix("Expires=") }?.dropFirst("Expires=".count))
                    #expect(expires.contains("1970"))

                    let after = try await app.client.get(URI(string: base + "/me"), headers: cookie)
                    #expect(after.status == .unauthorized)
                }
            }
            #expect(try await fixture.database.rows() == 0)
        }
    }
}

extension TestingHTTPResponse {
    /// The session id the response's cookie carries.
    func cookieValue(sourceLocation: SourceLocation = #_sourceLocation) throws -> String {
        try #require(headers.setCookie?["vapor-session"]?.string, "no session cookie", sourceLocation: sourceLocation)
    }
}
#endif

#if Hummingbird
import Foundation
import Hummingbird
import HummingbirdAuth
import HummingbirdTesting
import SessionStore
import SessionStoreDriverTestSupport
import SessionStoreHummingbird
import SessionStoreTesting
import Testing

/// HummingbirdAuth's `SessionMiddleware` behaviours with this package's `PersistDriver` as its
/// storage, and what the database sees under it.
@Suite("HummingbirdAuth sessions on SessionStorePersistDriver")
struct HummingbirdAuthSessionTests {
    struct User: Codable, Sendable {
        var name: String
    }

    func withDriver(
        _ engine: Engine, _ body: (SessionStorePersistDriver, ManualClock, DriverTestDatabase) async throws -> Void
    ) async throws {
        try await withDatabase(engine) { database in
            let clock = ManualClock()
            try await body(SessionStorePersistDriver(backend: database.backend, clock: clock), clock, database)
        }
    }

    /// Routes to log in (`/save?name=`), update, read the name and the TTL, and log out.
    func application(
        _ persist: SessionStorePersistDriver, configuration: SessionMiddlewareConfiguration = .init()
    ) -> some ApplicationProtocol {
        let router = Router(context: BasicSessionRequestContext<User, User>.self)
        router.add(middleware: SessionMiddleware(storage: persist, configuration: configuration))
        router.post("save") { request, context -> HTTPResponse.Status in
            guard let name = request.uri.queryParameters.get("name") else { throw HTTPError(.badRequest) }
            context.sessions.createSession(User(name: name), expiresIn: .seconds(600))
            return .ok
        }
        router.post("update") { request, context -> HTTPResponse.Status in
            guard let name = request.uri.queryParameters.get("name") else { throw HTTPError(.badRequest) }
            guard context.sessions.updateSession(User(name: name)) else { throw HTTPError(.badRequest) }
            return .ok
        }
        router.post("updateExpires/{expire}") { _, context -> HTTPResponse.Status in
            let expiresIn = try context.parameters.require("expire", as: Int.self)
            context.sessions.withLockedSession { $0?.expiresIn = .seconds(expiresIn) }
            return .ok
        }
        router.get("name") { _, context -> String in
            guard let user = context.sessions.session else { throw HTTPError(.unauthorized) }
            return user.name
        }
        router.get("peek") { _, context -> String? in
            context.sessions.session?.name
        }
        router.get("ttl") { _, context in
            context.sessions.withLockedSession { $0.map { String($0.expiresIn?.components.seconds ?? -1) } ?? "No-session" }
        }
        router.post("logout") { _, context -> HTTPResponse.Status in
            context.sessions.clearSession()
            return .ok
        }
        router.group()
            .addMiddleware { SessionAuthenticator { session, _ -> User? in session } }
            .get("me") { _, context -> String in try context.requireIdentity().name }
        return Application(responder: router.buildResponder())
    }

    @Test("the session authenticator finds the user of a stored session", arguments: Engine.available)
    func authenticator(engine: Engine) async throws {
        try await withDriver(engine) { driver, _, _ in
            try await application(driver).test(.router) { client in
                let cookie = try await client.execute(uri: "/save?name=adam", method: .post) { response in
                    try #require(response.headers[.setCookie])
                }
                try await client.execute(uri: "/me", method: .get, headers: [.cookie: cookie]) { response in
                    #expect(response.status == .ok)
                    #expect(String(buffer: response.body) == "adam")
                }
                try await client.execute(uri: "/me", method: .get) { response in
                    #expect(response.status == .unauthorized)
                }
            }
        }
    }

    @Test("an update is stored without a new cookie; a new expiry resends the same id", arguments: Engine.available)
    func update(engine: Engine) async throws {
        try await withDriver(engine) { driver, _, _ in
            try await application(driver).test(.router) { client in
                let cookie = try await client.execute(uri: "/save?name=john", method: .post) { response in
                    try #require(response.headers[.setCookie])
                }
                try await client.execute(uri: "/update?name=jane", method: .post, headers: [.cookie: cookie]) { response in
                    #expect(response.status == .ok)
                    #expect(response.headers[.setCookie] == nil)
                }
                try await client.execute(uri: "/name", method: .get, headers: [.cookie: cookie]) { response in
                    #expect(String(buffer: response.body) == "jane")
                }
                try await client.execute(uri: "/updateExpires/900", method: .post, headers: [.cookie: cookie]) { response in
                    let renewed = try #require(ParsedCookie(response.headers[.setCookie]))
                    #expect(renewed.value == ParsedCookie(cookie)?.value)
                }
                try await client.execute(uri: "/name", method: .get, headers: [.cookie: cookie]) { response in
                    #expect(String(buffer: response.body) == "jane")
                }
            }
        }
    }

    @Test("the session's TTL is the stored remaining time, and a new expiry replaces it", arguments: Engine.available)
    func ttl(engine: Engine) async throws {
        try await withDriver(engine) { driver, clock, _ in
            try await application(driver).test(.router) { client in
                let cookie = try await client.execute(uri: "/save?name=john", method: .post) { response in
                    try #require(response.headers[.setCookie])
                }
                clock.advance(by: .seconds(3))
                try await client.execute(uri: "/ttl", method: .get, headers: [.cookie: cookie]) { response in
                    #expect(response.headers[.setCookie] == nil)
                    #expect(String(buffer: response.body) == "597")
                }
                try await client.execute(uri: "/updateExpires/70", method: .post, headers: [.cookie: cookie]) { response in
                    #expect(response.headers[.setCookie] != nil)
                }
                try await client.execute(uri: "/ttl", method: .get, headers: [.cookie: cookie]) { response in
                    #expect(String(buffer: response.body) == "70")
                }
                clock.advance(by: .seconds(71))
                try await client.execute(uri: "/name", method: .get, headers: [.cookie: cookie]) { response in
                    #expect(response.status == .unauthorized)
                }
            }
        }
    }

    @Test("logout deletes the stored session and expires the cookie", arguments: Engine.available)
    func deletion(engine: Engine) async throws {
        try await withDriver(engine) { driver, _, database in
            try await application(driver).test(.router) { client in
                let cookie = try await client.execute(uri: "/save?name=john", method: .post) { response in
                    try #require(response.headers[.setCookie])
                }
                #expect(try await database.rows() == 1)
                try await client.execute(uri: "/logout", method: .post, headers: [.cookie: cookie]) { response in
                    let expired = try #require(ParsedCookie(response.headers[.setCookie]))
                    #expect(expired.isExpired)
                }
                #expect(try await database.rows() == 0)
                try await client.execute(uri: "/name", method: .get, headers: [.cookie: cookie]) { response in
                    #expect(response.status == .unauthorized)
                }
            }
        }
    }

    @Test("cookie parameters are applied and the value is stored under the prefixed key", arguments: Engine.available)
    func cookieParameters(engine: Engine) async throws {
        try await withDriver(engine) { driver, _, _ in
            let configuration = SessionMiddlewareConfiguration(
                sessionCookieParameters: .init(
                    name: "TEST_SESSION_COOKIE", domain: "test.com", path: "/test", secure: true, sameSite: .strict),
                keyPrefix: "hbTest/")
            try await application(driver, configuration: configuration).test(.router) { client in
                try await client.execute(uri: "/save?name=john", method: .post) { response in
                    let cookie = try #require(ParsedCookie(response.headers[.setCookie]))
                    #expect(cookie.name == "TEST_SESSION_COOKIE")
                    #expect(cookie.domain == "test.com")
                    #expect(cookie.path == "/test")
                    #expect(cookie.secure)
                    #expect(cookie.sameSite == "Strict")
                    #expect(try await driver.get(key: "hbTest/\(cookie.value)", as: User.self)?.name == "john")
                    #expect(try await driver.get(key: "hbs.\(cookie.value)", as: User.self) == nil)
                }
            }
        }
    }

    @Test("a session stored as another type is deleted and its cookie expired", arguments: Engine.available)
    func invalidSession(engine: Engine) async throws {
        try await withDriver(engine) { driver, _, database in
            let cookie = try await SessionStorage<Int>(driver).save(session: 1, expiresIn: .seconds(60))
            try await application(driver).test(.router) { client in
                try await client.execute(uri: "/peek", method: .get, headers: [.cookie: cookie.description]) { response in
                    #expect(response.status == .noContent)
                    let expired = try #require(ParsedCookie(response.headers[.setCookie]))
                    #expect(expired.isExpired)
                }
            }
            #expect(try await database.rows() == 0)
        }
    }

    @Test("a session id chosen by an attacker is never adopted at login", arguments: Engine.available)
    func fixationByChosenID(engine: Engine) async throws {
        try await withDriver(engine) { driver, _, _ in
            try await application(driver).test(.router) { client in
                try await client.execute(uri: "/save?name=adam", method: .post, headers: [.cookie: "SESSION_ID=fake-id"]) { response in
                    let cookie = try #require(ParsedCookie(response.headers[.setCookie]))
                    #expect(cookie.value != "fake-id")
                }
                try await client.execute(uri: "/me", method: .get, headers: [.cookie: "SESSION_ID=fake-id"]) { response in
                    #expect(response.status == .unauthorized)
                }
            }
        }
    }

    @Test("a second login gets a new id and leaves the first session as it was", arguments: Engine.available)
    func fixationAcrossLogins(engine: Engine) async throws {
        try await withDriver(engine) { driver, _, _ in
            try await application(driver).test(.router) { client in
                let first = try await client.execute(uri: "/save?name=adam", method: .post) { response in
                    try #require(response.headers[.setCookie])
                }
                let second = try await client.execute(uri: "/save?name=joannis", method: .post, headers: [.cookie: first]) {
                    response in try #require(response.headers[.setCookie])
                }
                #expect(ParsedCookie(first)?.value != ParsedCookie(second)?.value)
                try await client.execute(uri: "/me", method: .get, headers: [.cookie: first]) { response in
                    #expect(String(buffer: response.body) == "adam")
                }
                try await client.execute(uri: "/me", method: .get, headers: [.cookie: second]) { response in
                    #expect(String(buffer: response.body) == "joannis")
                }
            }
        }
    }

    @Test("1000 read-only requests on a session write no row (counted in the database)", arguments: Engine.available)
    func readOnlyRequestsWriteNothing(engine: Engine) async throws {
        try await withDriver(engine) { driver, _, database in
            try await application(driver).test(.live) { client in
                let cookie = try await client.execute(uri: "/save?name=john", method: .post) { response in
                    try #require(response.headers[.setCookie])
                }
                let before = try await database.writes()
                for _ in 0..<1000 {
                    try await client.execute(uri: "/name", method: .get, headers: [.cookie: cookie]) { response in
                        #expect(response.status == .ok)
                    }
                }
                #expect(try await database.writes() == before)
            }
        }
    }

    @Test("1000 requests with unknown cookies create no row (counted in the database)", arguments: Engine.available)
    func unknownCookiesCreateNothing(engine: Engine) async throws {
        try await withDriver(engine) { driver, _, database in
            try await application(driver).test(.live) { client in
                for index in 0..<1000 {
                    try await client.execute(uri: "/name", method: .get, headers: [.cookie: "SESSION_ID=unknown\(index)"]) {
                        response in #expect(response.status == .unauthorized)
                    }
                }
            }
            #expect(try await database.writes() == 0)
            #expect(try await database.rows() == 0)
        }
    }
}
#endif

#if Hummingbird
import Hummingbird
import HummingbirdTesting
import SessionStore
import SessionStoreDriverTestSupport
import SessionStoreHummingbird
import SessionStoreTesting
import Testing

/// Sign-in renews the session's id while other requests of the same browser still carry
/// the old one: none of them may hand the old id back or clear the cookie (with no grace
/// period, clearing it would wipe the renewed id from the browser). Each request in flight
/// is held inside its handler by a ``RequestGate`` while the renewal completes.
@Suite("Renewal with requests in flight (SessionStoreMiddleware)")
struct RenewalInFlightTests {
    struct Fixture {
        let clock: ManualClock
        let gate: RequestGate
    }

    /// Both grace periods the store distinguishes: a retired row, or none at all.
    static let graces: [Duration] = [.seconds(5), .zero]

    func withStore(_ engine: Engine, grace: Duration, _ body: (SessionStore, Fixture) async throws -> Void) async throws {
        try await withDatabase(engine) { database in
            let clock = ManualClock()
            var configuration = SessionStoreConfiguration()
            configuration.regenerationGracePeriod = grace
            let store = try SessionStore(backend: database.backend, configuration: configuration, clock: clock)
            try await body(store, Fixture(clock: clock, gate: RequestGate()))
        }
    }

    /// Login, a read-only page, and a read and a write held at the gate.
    func application(_ store: SessionStore, _ gate: RequestGate) -> some ApplicationProtocol {
        let router = Router(context: BasicSessionStoreRequestContext.self)
        router.add(middleware: SessionStoreMiddleware(store: store))
        router.post("login") { _, context -> HTTPResponse.Status in
            try await context.session.regenerateID()
            try context.session.set("user", "adam")
            return .ok
        }
        router.get("me") { _, context -> String in
            guard let user: String = try context.session.get("user") else { throw HTTPError(.unauthorized) }
            return user
        }
        router.get("held") { _, context -> String in
            let user = try context.session.get("user", as: String.self)
            await gate.pass()
            return user ?? "none"
        }
        router.post("held-write") { _, context -> HTTPResponse.Status in
            await gate.pass()
            try context.session.set("late", 1)
            return .ok
        }
        return Application(responder: router.buildResponder())
    }

    static func cookie(_ response: TestResponse) -> ParsedCookie? {
        ParsedCookie(response.headers[.setCookie])
    }

    static func login(_ client: some TestClientProtocol, _ id: String? = nil) async throws -> String {
        let headers: HTTPFields = id.map { [.cookie: "session=\($0)"] } ?? [:]
        return try await client.execute(uri: "/login", method: .post, headers: headers) { response in
            try #require(Self.cookie(response)).value
        }
    }

    /// Signs in, holds a request with the first id at the gate, signs in again with it (a
    /// renewal) and lets the held request finish; returns both ids and what it answered.
    static func straddle(
        _ client: some TestClientProtocol, _ gate: RequestGate, _ path: String, method: HTTPRequest.Method
    ) async throws -> (old: String, new: String, status: HTTPResponse.Status, body: String, cookie: ParsedCookie?) {
        let old = try await login(client)
        let held = Task {
            try await client.execute(uri: path, method: method, headers: [.cookie: "session=\(old)"]) { response in
                (response.status, String(buffer: response.body), Self.cookie(response))
            }
        }
        await gate.waitForArrival()
        let new = try await login(client, old)
        #expect(new != old)
        gate.open()
        let (status, body, cookie) = try await held.value
        return (old, new, status, body, cookie)
    }

    @Test("a read that loaded the old id before the renewal changes no cookie; the user stays signed in",
          arguments: Engine.available, graces)
    func readInFlightKeepsTheRenewedCookie(engine: Engine, grace: Duration) async throws {
        try await withStore(engine, grace: grace) { store, fixture in
            try await application(store, fixture.gate).test(.router) { client in
                let (old, new, status, body, cookie) = try await Self.straddle(client, fixture.gate, "/held", method: .get)
                #expect(status == .ok && body == "adam")
                #expect(cookie == nil, "neither the old id nor a cleared cookie")
                fixture.clock.advance(by: .seconds(6))
                try await client.execute(uri: "/me", method: .get, headers: [.cookie: "session=\(new)"]) { response in
                    #expect(String(buffer: response.body) == "adam")
                }
                try await client.execute(uri: "/me", method: .get, headers: [.cookie: "session=\(old)"]) { response in
                    #expect(response.status == .unauthorized)
                }
            }
        }
    }

    @Test("a change that loaded the old id before the renewal answers 409, writes nothing and changes no cookie",
          arguments: Engine.available, graces)
    func changeInFlightIsConflict(engine: Engine, grace: Duration) async throws {
        try await withStore(engine, grace: grace) { store, fixture in
            try await application(store, fixture.gate).test(.router) { client in
                let (_, new, status, _, cookie) = try await Self.straddle(client, fixture.gate, "/held-write", method: .post)
                #expect(status == .conflict)
                #expect(cookie == nil)
                try await client.execute(uri: "/me", method: .get, headers: [.cookie: "session=\(new)"]) { response in
                    #expect(String(buffer: response.body) == "adam")
                }
            }
        }
    }

    @Test("a request that presents the old id after the renewal changes no cookie", arguments: Engine.available, graces)
    func oldIdAfterRenewalChangesNoCookie(engine: Engine, grace: Duration) async throws {
        try await withStore(engine, grace: grace) { store, fixture in
            fixture.gate.open()
            try await application(store, fixture.gate).test(.router) { client in
                let old = try await Self.login(client)
                let new = try await Self.login(client, old)
                try await client.execute(uri: "/held", method: .get, headers: [.cookie: "session=\(old)"]) { response in
                    // Readable during the grace period (retired row); unknown without one.
                    #expect(String(buffer: response.body) == (grace > .zero ? "adam" : "none"))
                    #expect(Self.cookie(response) == nil, "neither the old id nor a cleared cookie")
                }
                try await client.execute(uri: "/me", method: .get, headers: [.cookie: "session=\(new)"]) { response in
                    #expect(String(buffer: response.body) == "adam")
                }
            }
        }
    }
}
#endif

#if Vapor
import Foundation
import SessionStore
import SessionStoreDriverTestSupport
import SessionStoreTesting
@testable import SessionStoreVapor
import Testing
import Vapor
import VaporTesting

/// Sign-in flows over HTTP through Vapor's sessions middleware and `req.typedSession`:
/// login binds the owner, the devices page lists them, one is ended and then every other,
/// and "remember me" gives the cookie the session's own Max-Age.
@Suite("Owner flows over HTTP (Vapor)")
struct VaporOwnerFlowTests {
    static func routes(_ app: Application) {
        app.post("login") { req async throws -> HTTPStatus in
            let user = try req.query.get(String.self, at: "user")
            let remember = (try? req.query.get(String.self, at: "remember")) == "1"
            try await req.typedSession.logIn(
                owner: user, device: SessionDevice(userAgent: req.headers.first(name: .userAgent)),
                lifetime: remember ? SessionLifetime(idleTimeout: .seconds(30 * 86_400)) : nil)
            req.session.data["theme"] = "dark"
            return .ok
        }
        app.get("devices") { req async throws -> String in
            try await req.typedSession.ownerSessions().sessions
                .map { "\($0.isCurrent ? "*" : "-")\($0.device.userAgent ?? "?")" }.joined(separator: ",")
        }
        app.get("handles") { req async throws -> String in
            try await req.typedSession.ownerSessions().sessions.filter { !$0.isCurrent }.map(\.handle).joined(separator: ",")
        }
        app.post("revoke") { req async throws -> String in
            String(try await req.typedSession.revoke(handle: try req.query.get(String.self, at: "handle")))
        }
        app.post("password") { req async throws -> String in
            String(try await req.typedSession.revokeOthers())
        }
        app.get("me") { req async throws -> String in
            guard let owner = try req.typedSession.owner else { throw Abort(.unauthorized) }
            return owner
        }
    }

    func withOwnerApp(_ engine: Engine, _ body: (Application) async throws -> Void) async throws {
        try await withDatabase(engine) { database in
            let store = try SessionStore(backend: database.backend, clock: ManualClock())
            try await withApp(configure: { app in
                app.sessions.use(.sessionStore(store))
                app.middleware.use(app.sessions.middleware)
                Self.routes(app)
            }, body)
        }
    }

    static func headers(_ id: String, agent: String? = nil) -> HTTPHeaders {
        var headers: HTTPHeaders = ["Cookie": "vapor-session=\(id)"]
        if let agent { headers.add(name: .userAgent, value: agent) }
        return headers
    }

    @Test("login on three devices, list them, end one, then all others", arguments: Engine.available)
    func devicesListedAndEnded(engine: Engine) async throws {
        try await withOwnerApp(engine) { app in
            let tester = try app.testing()
            var cookies: [String] = []
            for agent in ["phone", "laptop", "tablet"] {
                cookies.append(try await tester.sendRequest(.POST, "login?user=u-1", headers: ["User-Agent": agent]).cookieValue())
            }
            let listed = try await tester.sendRequest(.GET, "devices", headers: Self.headers(cookies[1])).body.string
            #expect(Set(listed.split(separator: ",").map(String.init)) == ["-phone", "*laptop", "-tablet"], "\(listed)")
            let handles = try await tester.sendRequest(.GET, "handles", headers: Self.headers(cookies[1])).body.string
                .split(separator: ",").map(String.init)
            #expect(handles.count == 2 && handles.allSatisfy { !cookies.contains($0) }, "handles are never cookies")
            let one = try await tester.sendRequest(.POST, "revoke?handle=\(handles[0])", headers: Self.headers(cookies[1]))
            #expect(one.body.string == "1")
            let others = try await tester.sendRequest(.POST, "password", headers: Self.headers(cookies[1]))
            #expect(others.body.string == "1")
            for (index, value) in cookies.enumerated() {
                let me = try await tester.sendRequest(.GET, "me", headers: Self.headers(value))
                #expect(me.status == (index == 1 ? .ok : .unauthorized), "device \(index)")
            }
        }
    }

    struct Member: SessionAuthenticatable, Authenticatable {
        var id: String
        var sessionID: String { id }
    }

    struct MemberAuthenticator: AsyncSessionAuthenticator {
        typealias User = Member
        func authenticate(sessionID: String, for request: Request) async throws {
            request.auth.login(Member(id: sessionID))
        }
    }

    @Test("Vapor's session authentication binds the owner at req.auth.login and unbinds at logout", arguments: Engine.available)
    func vaporAuthenticationBindsTheOwner(engine: Engine) async throws {
        try await withDatabase(engine) { database in
            let store = try SessionStore(backend: database.backend, clock: ManualClock())
            try await withApp(configure: { app in
                app.sessions.use(.sessionStore(store))
                app.middleware.use(app.sessions.middleware)
                let members = app.grouped(MemberAuthenticator())
                members.post("login") { req -> HTTPStatus in
                    req.auth.login(Member(id: "member-7"))
                    return .ok
                }
                members.post("logout") { req -> HTTPStatus in
                    req.auth.logout(Member.self)
                    return .ok
                }
                members.get("who") { req -> String in req.auth.get(Member.self)?.id ?? "nobody" }
            }, { app in
                let tester = try app.testing()
                let id = try await tester.sendRequest(.POST, "login").cookieValue()
                #expect(try await store.load(id: id).owner == "member-7", "bound at login")
                #expect(try await store.sessions(ownedBy: "member-7").sessions.count == 1)
                #expect(try await tester.sendRequest(.GET, "who", headers: Self.headers(id)).body.string == "member-7")
                _ = try await tester.sendRequest(.POST, "logout", headers: Self.headers(id))
                #expect(try await store.load(id: id).owner == nil, "unbound at logout")
                #expect(try await store.sessions(ownedBy: "member-7").sessions.isEmpty)
            })
        }
    }

    @Test("remember me gives the cookie the session's Max-Age", arguments: Engine.available)
    func rememberMeCookie(engine: Engine) async throws {
        try await withOwnerApp(engine) { app in
            let response = try await app.testing().sendRequest(.POST, "login?user=u-2&remember=1")
            let header = try #require(response.headers[.setCookie].first { $0.hasPrefix("vapor-session=") })
            #expect(header.contains("Max-Age=\(30 * 86_400)") && !header.lowercased().contains("expires="), "\(header)")
        }
    }
}
#endif

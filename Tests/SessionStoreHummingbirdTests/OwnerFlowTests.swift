#if Hummingbird
import Foundation
import Hummingbird
import HummingbirdTesting
import SessionStore
import SessionStoreDriverTestSupport
import SessionStoreHummingbird
import SessionStoreTesting
import Testing

/// Sign-in flows over HTTP through the native middleware: login binds the owner, a
/// "where you're signed in" page lists the devices, and "sign out everywhere else" ends
/// the other sessions, with a request of an ended device answered as signed out.
@Suite("Owner flows over HTTP (Hummingbird)")
struct OwnerFlowTests {
    func application(_ store: SessionStore) -> some ApplicationProtocol {
        let router = Router(context: BasicSessionStoreRequestContext.self)
        router.add(middleware: SessionStoreMiddleware(store: store))
        router.post("login") { request, context -> HTTPResponse.Status in
            let user = try request.uri.queryParameters.require("user")
            let agent = request.headers[.userAgent]
            try await context.session.logIn(owner: user, device: SessionDevice(userAgent: agent))
            try context.session.set("theme", "dark")
            return .ok
        }
        router.get("devices") { _, context -> String in
            let page = try await context.session.ownerSessions()
            return page.sessions.map { "\($0.isCurrent ? "*" : "-")\($0.device.userAgent ?? "?")" }.joined(separator: ",")
        }
        router.get("handles") { _, context -> String in
            try await context.session.ownerSessions().sessions.filter { !$0.isCurrent }.map(\.handle).joined(separator: ",")
        }
        router.post("revoke") { request, context -> String in
            String(try await context.session.revoke(handle: try request.uri.queryParameters.require("handle")))
        }
        router.post("password") { _, context -> String in
            String(try await context.session.revokeOthers())
        }
        router.get("me") { _, context -> String in
            guard let owner = try context.session.current.owner else { throw HTTPError(.unauthorized) }
            return owner
        }
        return Application(responder: router.buildResponder())
    }

    func cookie(_ response: TestResponse) throws -> String {
        try #require(ParsedCookie(response.headers[.setCookie])?.value)
    }

    @Test("login on three devices, list them, end one, then all others", arguments: Engine.available)
    func devicesListedAndEnded(engine: Engine) async throws {
        try await withDatabase(engine) { database in
            let store = try SessionStore(backend: database.backend, clock: ManualClock())
            try await application(store).test(.router) { client in
                var cookies: [String] = []
                for agent in ["phone", "laptop", "tablet"] {
                    cookies.append(try await client.execute(
                        uri: "/login?user=u-1", method: .post, headers: [.userAgent: agent]) { try cookie($0) })
                }
                try await client.execute(uri: "/devices", method: .get, headers: [.cookie: "session=\(cookies[1])"]) { response in
                    let listed = String(buffer: response.body).split(separator: ",").map(String.init)
                    #expect(Set(listed) == ["-phone", "*laptop", "-tablet"], "\(listed)")
                }
                let handles = try await client.execute(uri: "/handles", method: .get, headers: [.cookie: "session=\(cookies[1])"]) {
                    String(buffer: $0.body).split(separator: ",").map(String.init)
                }
                #expect(handles.count == 2 && handles.allSatisfy { !cookies.contains($0) }, "handles are never cookies")
                try await client.execute(
                    uri: "/revoke?handle=\(handles[0])", method: .post, headers: [.cookie: "session=\(cookies[1])"]
                ) { #expect(String(buffer: $0.body) == "1") }
                try await client.execute(uri: "/password", method: .post, headers: [.cookie: "session=\(cookies[1])"]) { response in
                    #expect(String(buffer: response.body) == "1", "the one device left beside this one ended")
                }
                for (index, value) in cookies.enumerated() {
                    try await client.execute(uri: "/me", method: .get, headers: [.cookie: "session=\(value)"]) { response in
                        #expect(response.status == (index == 1 ? .ok : .unauthorized), "device \(index)")
                    }
                }
            }
        }
    }

    @Test("remember me gives the cookie a Max-Age that slides with use; others stay session cookies", arguments: Engine.available)
    func rememberMeCookie(engine: Engine) async throws {
        try await withDatabase(engine) { database in
            let clock = ManualClock()
            let store = try SessionStore(backend: database.backend, clock: clock)
            let router = Router(context: BasicSessionStoreRequestContext.self)
            router.add(middleware: SessionStoreMiddleware(store: store))
            router.post("login") { request, context -> HTTPResponse.Status in
                let remember = request.uri.queryParameters["remember"] == "1"
                try await context.session.logIn(
                    owner: "u-3", lifetime: remember ? SessionLifetime(idleTimeout: .seconds(30 * 86_400)) : nil)
                return .ok
            }
            router.get("page") { _, _ -> HTTPResponse.Status in .ok }
            try await Application(responder: router.buildResponder()).test(.router) { client in
                let remembered = try await client.execute(uri: "/login?remember=1", method: .post) { response in
                    try #require(ParsedCookie(response.headers[.setCookie]))
                }
                #expect(remembered.attributes["max-age"] == String(30 * 86_400), "\(remembered.attributes)")
                let plain = try await client.execute(uri: "/login", method: .post) { response in
                    try #require(ParsedCookie(response.headers[.setCookie]))
                }
                #expect(plain.attributes["max-age"] == nil, "a session cookie: \(plain.attributes)")
                clock.advance(by: .seconds(2 * 86_400))
                try await client.execute(uri: "/page", method: .get, headers: [.cookie: "session=\(remembered.value)"]) { response in
                    let again = ParsedCookie(response.headers[.setCookie])
                    #expect(again?.value == remembered.value && again?.attributes["max-age"] == String(30 * 86_400),
                            "the extended session's cookie is sent again with a fresh Max-Age")
                }
                try await client.execute(uri: "/page", method: .get, headers: [.cookie: "session=\(remembered.value)"]) { response in
                    #expect(response.headers[.setCookie] == nil, "not again until the next touch")
                }
            }
        }
    }

    @Test("a request in flight on a revoked device cannot save it back", arguments: Engine.available)
    func revokedDeviceStaysSignedOut(engine: Engine) async throws {
        try await withDatabase(engine) { database in
            let store = try SessionStore(backend: database.backend, clock: ManualClock())
            let router = Router(context: BasicSessionStoreRequestContext.self)
            router.add(middleware: SessionStoreMiddleware(store: store))
            router.post("login") { _, context -> HTTPResponse.Status in
                try await context.session.logIn(owner: "u-2")
                return .ok
            }
            // The revoke lands while this request runs, between its load and its save.
            router.post("slow-write") { _, context -> String in
                let owner = try #require(try context.session.current.owner)
                _ = try await store.revokeAll(ownedBy: owner)
                try context.session.set("late", 1)
                return String(describing: try await context.session.save())
            }
            let value = try await Application(responder: router.buildResponder()).test(.router) { client in
                let value = try await client.execute(uri: "/login", method: .post) { try cookie($0) }
                try await client.execute(uri: "/slow-write", method: .post, headers: [.cookie: "session=\(value)"]) { response in
                    #expect(String(buffer: response.body) == "gone")
                }
                return value
            }
            let again = try await store.load(id: value)
            #expect(!again.isStored, "the revoked session never came back")
        }
    }
}
#endif

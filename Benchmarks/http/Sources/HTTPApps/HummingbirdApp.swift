import HTTPTypes
import Hummingbird
import HummingbirdAuth
import Logging
import SessionStoreCore
import SessionStoreHummingbird
import SessionStoreSQLite

/// The load generator's session slot, echoed by /login so it can follow the new cookie.
package let slotHeader = HTTPField.Name("X-Slot")!

/// The session value HummingbirdAuth stores.
struct UserSession: Codable, Sendable {
    var user: String
    var n: Int
}

/// The Hummingbird app of `variant` on a loopback `port` and the SQLite file at `path`, and
/// what to run after it stopped. `http-app` serves it; `http-callgrind` drives it in process.
package func makeHummingbirdApp(
    _ variant: Variant, port: Int, path: String
) async throws -> (app: any ApplicationProtocol, shutdown: @Sendable () async throws -> Void) {
    let configuration = ApplicationConfiguration(address: .hostname("127.0.0.1", port: port))
    // Hummingbird's default: info level, no line per request.
    let logger = Logger(label: "http-app")
    switch variant {
    case .hummingbirdNative:
        let store = try await SessionStore.open("sqlite://\(path)", backends: [.sqlite])
        let router = Router(context: BasicSessionStoreRequestContext.self)
        router.add(middleware: SessionStoreMiddleware(store: store))
        router.post("login") { request, context -> String in
            try await context.session.regenerateID()
            try context.session.set("user", "user\(Int.random(in: 0..<1_000_000))")
            return "login:" + (request.headers[slotHeader] ?? "")
        }
        router.get("read") { _, context -> String in
            try context.session.get("user", as: String.self) ?? "anonymous"
        }
        router.post("write") { _, context -> String in
            "write:\(try context.session.increment("n"))"
        }
        let app = Application(router: router, configuration: configuration, logger: logger)
        return (app, { try await store.shutdown() })
    case .hummingbirdStore:
        var sqlite = SQLiteConfiguration(path: path)
        sqlite.table = "sessions"
        let persist = SessionStorePersistDriver(backend: try SQLiteBackend(configuration: sqlite))
        return (authSessionsApp(persist, configuration: configuration, logger: logger), {})
    case .hummingbirdStoreInMemory:
        let persist = SessionStorePersistDriver(backend: InMemoryBackend())
        return (authSessionsApp(persist, configuration: configuration, logger: logger), {})
    case .hummingbirdMemory:
        return (authSessionsApp(MemoryPersistDriver(), configuration: configuration, logger: logger), {})
    default:
        fatalError("not a Hummingbird variant")
    }
}

/// HummingbirdAuth's session middleware on `persist`.
func authSessionsApp(
    _ persist: some PersistDriver, configuration: ApplicationConfiguration, logger: Logger
) -> any ApplicationProtocol {
    let router = Router(context: BasicSessionRequestContext<UserSession, UserSession>.self)
    router.add(middleware: SessionMiddleware(storage: persist))
    router.post("login") { request, context -> String in
        context.sessions.createSession(UserSession(user: "user\(Int.random(in: 0..<1_000_000))", n: 0))
        return "login:" + (request.headers[slotHeader] ?? "")
    }
    router.get("read") { _, context -> String in
        context.sessions.session?.user ?? "anonymous"
    }
    router.post("write") { _, context -> String in
        context.sessions.withLockedSession { $0?.n += 1 }
        return "write"
    }
    return Application(router: router, configuration: configuration, services: [persist], logger: logger)
}

import Fluent
import FluentPostgresDriver
import FluentSQLiteDriver
import HTTPApps
import SessionStoreCore
import SessionStorePostgres
import SessionStoreSQLite
import SessionStoreVapor
import Vapor

/// The Vapor app of `variant` on a loopback `port` and the SQLite file at `path`, not yet
/// started. `http-app` serves it; `http-callgrind` drives it in process.
package func makeVaporApp(_ variant: Variant, port: Int, path: String) async throws -> Application {
    // As a new app runs: Vapor's default logging (info level, one line per request from
    // Vapor's route logging), for every variant alike.
    let app = try await Application.make(Environment(name: "production", arguments: ["http-app"]))
    app.http.server.configuration.hostname = "127.0.0.1"
    app.http.server.configuration.port = port
    switch variant {
    case .vaporStore, .vaporStoreTyped:
        let store = try await SessionStore.open("sqlite://\(path)", backends: [.sqlite])
        app.sessions.use(.sessionStore(store))
    case .vaporFluent, .vaporFluentWAL:
        app.databases.use(.sqlite(.file(path)), as: .sqlite)
        app.sessions.use(.fluent)
        app.migrations.add(SessionRecord.migration)
        try await app.autoMigrate()
        if variant == .vaporFluentWAL, let sql = app.db as? any SQLDatabase {
            try await sql.raw("PRAGMA journal_mode=WAL").run()
        }
    case .vaporStorePostgres:
        let store = try await SessionStore.open(path, backends: [.postgres])
        app.sessions.use(.sessionStore(store))
    case .vaporFluentPostgres:
        // Fluent's PostgreSQL driver as its docs set it up; its sessions table is
        // `_fluent_sessions`, so `table=` is the store's and is left out of Fluent's URL.
        var components = URLComponents(string: path)
        components?.queryItems = nil
        guard let url = components?.url else { throw Abort(.internalServerError, reason: "bad PostgreSQL URL") }
        try app.databases.use(.postgres(url: url), as: .psql)
        app.sessions.use(.fluent)
        app.migrations.add(SessionRecord.migration)
        try await app.autoMigrate()
    case .vaporMemory:
        app.sessions.use(.memory)
    default:
        fatalError("not a Vapor variant")
    }
    // The same cookie for every Vapor variant, as the store's docs recommend: HttpOnly and
    // SameSite, no Expires (Secure is left off because wrk speaks plain HTTP).
    app.sessions.configuration = SessionsConfiguration(cookieName: "vapor-session") { id in
        HTTPCookies.Value(string: id.string, isSecure: false, isHTTPOnly: true, sameSite: .lax)
    }
    app.middleware.use(app.sessions.middleware)

    if variant == .vaporStoreTyped {
        // The store's typed view, as its docs show it: `req.typedSession`.
        app.post("login") { req async throws -> String in
            try await req.typedSession.regenerateID()
            try req.typedSession.set("user", "user\(Int.random(in: 0..<1_000_000))")
            return "login:" + (req.headers.first(name: "X-Slot") ?? "")
        }
        app.get("read") { req -> String in
            try req.typedSession.get("user", as: String.self) ?? "anonymous"
        }
        app.post("write") { req -> String in
            "write:\(try req.typedSession.increment("n"))"
        }
    } else {
        // Vapor's own API, `req.session.data`, for every driver (the store's id renewal is
        // the one call Vapor has no API for).
        app.post("login") { req async throws -> String in
            if variant == .vaporStore || variant == .vaporStorePostgres { try await req.typedSession.regenerateID() }
            req.session.data["user"] = "user\(Int.random(in: 0..<1_000_000))"
            return "login:" + (req.headers.first(name: "X-Slot") ?? "")
        }
        app.get("read") { req -> String in
            req.session.data["user"] ?? "anonymous"
        }
        app.post("write") { req -> String in
            let count = (req.session.data["n"].flatMap { Int($0) } ?? 0) + 1
            req.session.data["n"] = String(count)
            return "write:\(count)"
        }
    }
    return app
}

import ArgumentParser
import SessionStore

/// `session-store sessions --owner U URL [--json] [--limit N]`: an owner's live sessions,
/// newest first, with their device facts and the handles `revoke` takes.
struct SessionsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sessions",
        abstract: "List an owner's live sessions with their device facts and handles.",
        discussion: """
            Lists what a "where you're signed in" page shows: created, last seen, expiry, \
            IP address, user agent and label of each live session bound to the owner, \
            newest first, page by page (bounded memory for owners with many sessions). A \
            handle can end its session with `revoke --handle`; it can never serve as a cookie.
            """
    )

    @Option(help: "The owner (the app's user id).")
    var owner: String

    @Argument(help: "Configuration URL of the store.")
    var url: String

    @Option(help: "List at most this many sessions (default: all).")
    var limit: Int?

    @Flag(help: "Print the sessions as JSON, one array.")
    var json = false

    func validate() throws {
        _ = try validatedTarget(url)
        if let limit, limit < 1 { throw ValidationError("--limit must be at least 1") }
    }

    struct Row: Encodable {
        var handle: String
        var createdAt: Int64
        var lastSeen: Int64
        var expiresAt: Int64
        var ipAddress: String?
        var userAgent: String?
        var label: String?
    }

    func run() async throws {
        let target = try StoreTarget(url)
        let backend = try await target.open(mustExist: true, logger: toolLogger())
        let store = try SessionStore(backend: backend, configuration: target.store, logger: toolLogger())
        var rows: [Row] = []
        do {
            var cursor: String?
            repeat {
                let wanted = min(1000, (limit ?? Int.max) - rows.count)
                let page = try await store.sessions(ownedBy: owner, after: cursor, limit: wanted)
                rows += page.sessions.map {
                    Row(handle: $0.handle, createdAt: $0.createdAt, lastSeen: $0.lastSeen, expiresAt: $0.expiresAt,
                        ipAddress: $0.device.ipAddress, userAgent: $0.device.userAgent, label: $0.device.label)
                }
                cursor = page.nextCursor
            } while cursor != nil && rows.count < (limit ?? Int.max)
        } catch {
            try await store.shutdown()
            throw error
        }
        try await store.shutdown()
        if json {
            try Console.json(rows)
            return
        }
        Console.out("\(Format.count(Int64(rows.count))) live sessions of this owner in \(target.display)")
        for row in rows {
            let device = [row.label, row.userAgent, row.ipAddress].compactMap { $0 }.joined(separator: " | ")
            Console.out(
                "\(row.handle)  created \(Format.time(row.createdAt))  last seen \(Format.time(row.lastSeen))  "
                    + "expires \(Format.time(row.expiresAt))  \(device.isEmpty ? "-" : device)")
        }
    }
}

/// `session-store revoke --owner U [--handle H | --except H] URL`: ends an owner's
/// sessions, all of them, all but one, or one.
struct RevokeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "revoke",
        abstract: "End an owner's sessions: all, all but one (--except), or one (--handle).",
        discussion: """
            Deletes the owner's rows in bounded batches (the URL's cleanup_batch), so an owner \
            with many sessions never holds a lock for long. A request still in flight on an \
            ended session cannot write it back. Handles come from `session-store sessions`.
            """
    )

    @Option(help: "The owner (the app's user id).")
    var owner: String

    @Option(help: "End only the session with this handle.")
    var handle: String?

    @Option(help: "Keep the session with this handle, end the others.")
    var except: String?

    @Argument(help: "Configuration URL of the store.")
    var url: String

    @Flag(help: "Print the result as JSON.")
    var json = false

    func validate() throws {
        _ = try validatedTarget(url)
        if handle != nil && except != nil { throw ValidationError("--handle and --except exclude each other") }
    }

    struct Report: Encodable {
        var ended: Int
    }

    func run() async throws {
        let target = try StoreTarget(url)
        let backend = try await target.open(mustExist: true, logger: toolLogger())
        let store = try SessionStore(backend: backend, configuration: target.store, logger: toolLogger())
        let ended: Int
        do {
            if let handle {
                ended = try await store.revoke(handle: handle, ownedBy: owner)
            } else if let except {
                ended = try await store.revokeAll(ownedBy: owner, exceptHandle: except)
            } else {
                ended = try await store.revokeAll(ownedBy: owner)
            }
        } catch {
            try await store.shutdown()
            throw error
        }
        try await store.shutdown()
        if json {
            try Console.json(Report(ended: ended))
        } else {
            Console.out("ended \(Format.count(Int64(ended))) sessions of this owner in \(target.display)")
        }
    }
}

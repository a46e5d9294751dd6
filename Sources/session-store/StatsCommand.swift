import ArgumentParser
import SessionStore

/// `session-store stats URL [--json]`: how many sessions, how many expired and waiting for
/// cleanup, when the live ones expire, how big the table is, and who holds the cleanup lease.
struct StatsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "stats",
        abstract: "Show rows, live and expired sessions, expiry histogram, sizes, schema and cleanup lease.",
        discussion: """
            "expired" counts rows past their expiry that cleanup has not deleted yet. \
            Sizes: SQLite from the dbstat table (the table's b-tree), the file \
            and its WAL; MySQL from information_schema. Times are UTC; in --json they are \
            milliseconds since the Unix epoch.
            """
    )

    @Argument(help: "Configuration URL of the store.")
    var url: String

    @Flag(help: "Print the figures as JSON.")
    var json = false

    func validate() throws {
        _ = try validatedTarget(url)
    }

    func run() async throws {
        let target = try StoreTarget(url)
        let backend = try await target.open(mustExist: true, logger: toolLogger())
        var figures: StatsReport
        do {
            let now = SystemSessionClock().now()
            figures = StatsReport(
                engine: backend.engine, table: target.table, figures: try await backend.tableFigures(now: now), now: now)
            figures.owners = StatsReport.Owners(counts: try await backend.liveSessionsPerOwner(now: now))
        } catch {
            try await backend.close()
            throw error
        }
        try await backend.close()
        if json {
            try Console.json(figures)
            return
        }
        Console.out(Self.render(figures, display: target.display))
    }

    /// The figures as aligned `name  value` lines.
    static func render(_ figures: StatsReport, display: String) -> String {
        var lines: [(String, String)] = [("store", display)]
        let schema = figures.schemaVersion.map { "version \($0), key layout \(figures.keyLayout ?? "?")" } ?? "no schema row"
        lines.append(("schema", schema))
        lines.append(("rows", Format.count(figures.rows)))
        lines.append(("live", Format.count(figures.live) + (figures.retired > 0 ? " (\(Format.count(figures.retired)) retired ids in their grace period)" : "")))
        lines.append(("expired", Format.count(figures.expiredNotCleaned) + " (not yet cleaned up)"))
        let expiring = figures.expiring
        lines.append((
            "expiring",
            "next hour \(Format.count(expiring.nextHour)), next day \(Format.count(expiring.nextDay)), "
                + "next week \(Format.count(expiring.nextWeek)), later \(Format.count(expiring.later))"
        ))
        if let oldest = figures.oldestCreated, let newest = figures.newestCreated {
            lines.append(("created", "oldest \(Format.time(oldest)), newest \(Format.time(newest))"))
        } else {
            lines.append(("created", "-"))
        }
        if let table = figures.tableBytes {
            if figures.engine == "mysql" {
                lines.append((
                    "table size",
                    Format.bytes(table) + " + indexes " + Format.bytes(figures.indexBytes ?? 0)
                        + " (InnoDB estimates; ANALYZE TABLE refreshes them)"
                ))
            } else {
                // Releases before the key-order cleanup kept an index on expires_at; an open drops it.
                let index = figures.indexBytes.map { $0 > 0 ? " + expiry index " + Format.bytes($0) : "" } ?? ""
                lines.append(("table size", Format.bytes(table) + index))
            }
        } else {
            lines.append(("table size", "unknown (SQLite built without dbstat)"))
        }
        if let file = figures.fileBytes {
            lines.append(("file size", Format.bytes(file) + (figures.walBytes.map { ", WAL " + Format.bytes($0) } ?? "")))
        }
        if let owners = figures.owners, owners.owners > 0 {
            lines.append((
                "owners",
                "\(Format.count(owners.owners)) with \(Format.count(owners.boundSessions)) live sessions; per owner max "
                    + "\(Format.count(owners.maxPerOwner)), p99 \(Format.count(owners.p99PerOwner))"))
        }
        if let lease = figures.cleanupLease {
            lines.append((
                "cleanup lease",
                "\(lease.holder) until \(Format.time(lease.expiresAt))" + (lease.lapsed ? " (lapsed)" : "")
            ))
        } else {
            lines.append(("cleanup lease", "free"))
        }
        let width = lines.map(\.0.count).max() ?? 0
        return lines.map { name, value in
            name + String(repeating: " ", count: width - name.count + 2) + value
        }.joined(separator: "\n")
    }
}

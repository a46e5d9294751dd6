import SessionStore
import SessionStoreMySQL

extension MySQLBackend: AdminBackend {
    var engine: String { "mysql" }

    func figures(now: Int64) async throws -> TableFigures {
        let figures = try await tableFigures(now: now)
        return TableFigures(
            engine: engine, table: configuration.table, rows: figures.rows, live: figures.live,
            retired: figures.retired, expiredNotCleaned: figures.rows - figures.live,
            expiring: TableFigures.Expiring(
                nextHour: figures.expiring[0], nextDay: figures.expiring[1],
                nextWeek: figures.expiring[2], later: figures.expiring[3]),
            oldestCreated: figures.oldestCreated, newestCreated: figures.newestCreated,
            tableBytes: figures.tableBytes, indexBytes: figures.indexBytes,
            fileBytes: nil, walBytes: nil,
            schemaVersion: figures.schemaVersion, keyLayout: figures.keyLayout,
            cleanupLease: figures.leaseHolder.map { holder in
                let expiresAt = figures.leaseExpiresAt ?? 0
                return TableFigures.Lease(holder: holder, expiresAt: expiresAt, lapsed: expiresAt <= now)
            })
    }
}

import SessionStore
import SessionStoreMySQL

extension MySQLBackend: AdminBackend {
    var engine: String { "mysql" }

    func figures(now: Int64) async throws -> TableFigures {
        TableFigures(engine: engine, table: configuration.table, server: try await tableFigures(now: now), now: now)
    }
}

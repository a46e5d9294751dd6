#if Postgres
import SessionStore
import SessionStorePostgres

extension PostgresBackend: AdminBackend {
    var engine: String { "postgres" }

    func figures(now: Int64) async throws -> TableFigures {
        TableFigures(engine: engine, table: configuration.table, server: try await tableFigures(now: now), now: now)
    }
}
#endif

#if Postgres
import PostgresNIO
public import SessionStore

extension PostgresBackend {
    /// Rewrites a live row's data, owner and details at `expectedVersion`.
    ///
    /// After a lost connection, the row at `expectedVersion + 1` with this data and owner
    /// means the lost attempt committed; at `expectedVersion` it did not, and it runs again.
    public func rebind(
        _ key: SessionKey, data: [UInt8], owner: String?, details: [UInt8]?, expiresAt: Int64, expectedVersion: Int64,
        now: Int64
    ) async throws -> Bool {
        let statements = statements
        let values: [PostgresValue] = [
            .bytes(data), owner.map { .text($0) } ?? .null, details.map { .bytes($0) } ?? .null, .int(expiresAt), .int(now),
            .text(key.value), .int(expectedVersion),
        ]
        return try await call("rebind", retry: .again) { connection, attempt in
            if attempt.followsLostConnection {
                let stored = try await Self.row(connection, statements.read, [.text(key.value)])
                if let stored, stored.version == expectedVersion + 1 {
                    return stored.data == data && stored.owner == owner && stored.details == details
                }
                guard let stored, stored.version == expectedVersion else { throw Self.ambiguous("rebind") }
            }
            return try await Self.count(connection, statements.rebind, values) > 0
        }
    }

    /// A page of `owner`'s live sessions through the partial owner index.
    public func ownedSessions(
        owner: String, now: Int64, after position: OwnedRecordPosition?, limit: Int
    ) async throws -> [OwnedRecord] {
        let sql = statements.ownedSessions(afterPosition: position != nil)
        var values: [PostgresValue] = [.text(owner), .int(now), .int(Int64(limit))]
        if let position { values += [.int(position.createdAt), .text(position.key.value)] }
        let bound = values
        let rows = try await call("ownedSessions", retry: .read) { connection, _ in
            try await Self.rows(connection, sql, bound)
        }
        return try rows.map { row in
            do {
                let (id, createdAt, lastSeen, expiresAt, details) = try row.decode((String, Int64, Int64, Int64, ByteBuffer?).self)
                return OwnedRecord(
                    key: SessionKey(value: id), createdAt: createdAt, lastSeen: lastSeen, expiresAt: expiresAt,
                    details: details.map { Array($0.readableBytesView) })
            } catch {
                throw StorageError(
                    kind: .corrupt, engine: "postgres", operation: "ownedSessions", message: "row columns could not be read",
                    statement: sql)
            }
        }
    }

    /// Deletes up to `limit` of `owner`'s rows (only `only`, never `except`) in one
    /// statement. Run again after a lost connection (deleting is idempotent), in which case
    /// the count leaves out what the lost attempt deleted.
    public func deleteOwned(owner: String, only: SessionKey?, except: SessionKey?, limit: Int) async throws -> Int {
        let statements = statements
        if let only {
            return try await call("deleteOwned", retry: .again) { connection, _ in
                try await Self.count(connection, statements.deleteOwnedOne, [.text(only.value), .text(owner)])
            }
        }
        let values: [PostgresValue] = [.text(owner), except.map { .text($0.value) } ?? .null, .int(Int64(limit))]
        return try await call("deleteOwned", retry: .again) { connection, _ in
            try await Self.counted(connection, statements.deleteOwnedBatch, values, operation: "deleteOwned")
        }
    }

    /// Keeps `owner`'s `keep` most recently used live rows and deletes the others, in one
    /// statement that locks the ranked rows, so two trims of one owner run one after the
    /// other and rank the same way.
    public func trimOwned(owner: String, keep: Int, now: Int64) async throws -> Int {
        let sql = statements.trimOwned
        return try await call("trimOwned", retry: .again) { connection, _ in
            try await Self.counted(connection, sql, [.text(owner), .int(now), .int(Int64(keep))], operation: "trimOwned")
        }
    }

    /// Runs a statement ending in `SELECT count(*)` and returns the count.
    private static func counted(
        _ connection: PostgresConnection, _ sql: String, _ values: [PostgresValue], operation: String
    ) async throws -> Int {
        guard let first = try await rows(connection, sql, values).first else {
            throw StorageError(kind: .other, engine: "postgres", operation: operation, message: "no count returned", statement: sql)
        }
        return Int(try first.decode(Int64.self))
    }
}
#endif

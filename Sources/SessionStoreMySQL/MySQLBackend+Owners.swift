public import SessionStoreCore

extension MySQLBackend {
    /// Rewrites a live row's data, owner and details at `expectedVersion`.
    ///
    /// After a lost connection, the row at `expectedVersion + 1` with this data and owner
    /// means the lost attempt committed; at `expectedVersion` it did not, and it runs again.
    /// - Throws: `StorageError` (`.schema` on a table from before schema version 2).
    public func rebind(
        _ key: SessionKey, data: [UInt8], owner: String?, details: [UInt8]?, expiresAt: Int64, expectedVersion: Int64,
        now: Int64
    ) async throws -> Bool {
        let statements = statements
        guard statements.hasOwners else { throw ownersNeedUpgrade("rebind") }
        let keyValues = statements.keyValues(key)
        let parameters: [MySQLValue] = [.bytes(data), owner.map { .text($0) } ?? .null, details.map { .bytes($0) } ?? .null]
            + [.int(expiresAt), .int(now)] + keyValues + [.int(expectedVersion), .int(now)]
        return try await call("rebind", retry: .again) { connection, attempt in
            if attempt.followsLostConnection {
                let stored = try Self.row(connection, statements, statements.read, keyValues, operation: "rebind")
                if let stored, stored.version == expectedVersion + 1 {
                    return stored.data == data && stored.owner == owner && stored.details == details
                }
                guard let stored, stored.version == expectedVersion else { throw Self.ambiguous("rebind") }
            }
            return try connection.statement(statements.rebind).execute(parameters) > 0
        }
    }

    /// A page of `owner`'s live sessions through the owner index.
    /// - Throws: `StorageError`.
    public func ownedSessions(
        owner: String, now: Int64, after position: OwnedRecordPosition?, limit: Int
    ) async throws -> [OwnedRecord] {
        let statements = statements
        guard statements.hasOwners else { throw ownersNeedUpgrade("ownedSessions") }
        let sql = statements.ownedSessions(afterPosition: position != nil)
        let positionValues: [MySQLValue] = position.map {
            [.int($0.createdAt), .int($0.createdAt), .text($0.key.value)]
        } ?? []
        let parameters: [MySQLValue] = [.text(owner), .int(now)] + positionValues + [.int(Int64(limit))]
        let columns: [MySQLColumnKind] = [.bytes, .int, .int, .int, .bytes]
        let rows = try await call("ownedSessions", retry: .again) { connection, _ in
            try connection.statement(sql).query(parameters, columns: columns)
        }
        return try rows.map { row in
            guard let id = row[0].bytes.flatMap({ String(validating: $0, as: UTF8.self) }), let createdAt = row[1].int,
                  let lastSeen = row[2].int, let expiresAt = row[3].int
            else {
                throw StorageError(
                    kind: .corrupt, engine: "mysql", operation: "ownedSessions", message: "row has NULL or non-UTF-8 key columns",
                    statement: sql)
            }
            return OwnedRecord(
                key: SessionKey(value: id), createdAt: createdAt, lastSeen: lastSeen, expiresAt: expiresAt, details: row[4].bytes)
        }
    }

    /// Deletes up to `limit` of `owner`'s rows (only `only`, never `except`) in one
    /// statement. Run again after a lost connection (deleting is idempotent), in which case
    /// the count leaves out what the lost attempt deleted.
    /// - Throws: `StorageError`.
    public func deleteOwned(owner: String, only: SessionKey?, except: SessionKey?, limit: Int) async throws -> Int {
        let statements = statements
        guard statements.hasOwners else { throw ownersNeedUpgrade("deleteOwned") }
        let sql: String
        let parameters: [MySQLValue]
        if let only {
            sql = statements.deleteOwnedOne
            parameters = statements.keyValues(only) + [.text(owner)]
        } else {
            sql = statements.deleteOwnedBatch
            parameters = [.text(owner), except.map { .text($0.value) } ?? .null, .int(Int64(limit))]
        }
        return Int(try await call("deleteOwned", retry: .again) { connection, _ in
            try connection.statement(sql).execute(parameters)
        })
    }

    /// Keeps `owner`'s `keep` most recently used live rows and deletes the others: the
    /// owner's live rows are read ranked under their row locks and the surplus deleted in
    /// one transaction, so two trims on one server run one after the other, and on a
    /// Galera cluster two that delete the same rows conflict and one runs again (every
    /// trim ranks the rows the same way).
    /// - Throws: `StorageError`.
    public func trimOwned(owner: String, keep: Int, now: Int64) async throws -> Int {
        let statements = statements
        guard statements.hasOwners else { throw ownersNeedUpgrade("trimOwned") }
        let checksum = statements.layout == .checksumAndID
        let columns: [MySQLColumnKind] = checksum ? [.int, .bytes] : [.bytes]
        return try await call("trimOwned", retry: .again) { connection, _ in
            try connection.transaction {
                let ranked = try connection.statement(statements.rankOwned).query([.text(owner), .int(now)], columns: columns)
                var deleted = 0
                for row in ranked.dropFirst(keep) {
                    let keyValues: [MySQLValue] = checksum
                        ? [row[0].int.map { .int($0) } ?? .null, row[1].bytes.map { .bytes($0) } ?? .null]
                        : [row[0].bytes.map { .bytes($0) } ?? .null]
                    deleted += Int(try connection.statement(statements.deleteOwnedOne).execute(keyValues + [.text(owner)]))
                }
                return deleted
            }
        }
    }

    func ownersNeedUpgrade(_ operation: String) -> StorageError {
        StorageError(
            kind: .schema, engine: "mysql", operation: operation,
            message: "table \(statements.table) predates session owners (schema version \(MySQLStatements.ownersVersion)); "
                + "run `session-store upgrade` to add them")
    }
}

/// The store's rules that the drivers apply to rows they write themselves (Hummingbird's
/// `PersistDriver`), so each rule has one owner.
extension SessionStore {
    /// The touch rule: a read moves a row's expiry from `expiresAt` to `extended` only when
    /// that gains at least `interval` (milliseconds), so busy rows are not rewritten on every
    /// request.
    @inline(__always)
    package static func touchIsDue(expiresAt: Int64, extended: Int64, interval: Int64) -> Bool {
        extended > expiresAt && extended - expiresAt >= interval
    }

    /// The size rule: encoded row data may be at most ``SessionStoreConfiguration/maxDataSize``
    /// bytes.
    /// - Throws: ``SessionStoreError`` `dataTooLarge` (the caller writes nothing).
    package func checkSize(of data: [UInt8], session id: SessionID? = nil) throws {
        try Self.checkSize(of: data, limit: configuration.maxDataSize, session: id)
    }

    /// The size rule for a limit read outside the store (inside a backend's merge).
    static func checkSize(of data: [UInt8], limit: Int, session id: SessionID?) throws {
        guard data.count <= limit else {
            throw SessionStoreError(
                .dataTooLarge, "encoded session is \(data.count) bytes, over the limit of \(limit); nothing was written",
                session: id)
        }
    }

    /// The conflict rule: runs `attempt` until it settles, at most
    /// ``SessionStoreConfiguration/maxConflictRetries`` times more than once. An attempt
    /// that returns `nil` lost to a concurrent write; it is counted as a conflict and the
    /// next attempt decides again on what that write left.
    /// - Throws: what `attempt` throws; ``SessionStoreError`` `conflictRetriesExhausted`
    ///   with `exhausted` as its message when no attempt settled.
    package func retryingConflicts<Result>(
        _ exhausted: @autoclosure () -> String, session id: SessionID?, _ attempt: () async throws -> Result?
    ) async throws -> Result {
        for _ in 0...configuration.maxConflictRetries {
            if let result = try await attempt() { return result }
            metrics.conflicts.increment()
        }
        throw SessionStoreError(.conflictRetriesExhausted, exhausted(), session: id)
    }
}

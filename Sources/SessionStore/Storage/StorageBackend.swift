/// One stored session as a backend keeps it.
public struct SessionRecord: Sendable, Equatable {
    /// The encoded attributes (see ``AttributeCodec``); opaque to backends.
    public var data: [UInt8]
    /// Incremented by one on every data write; starts at 1. `0` marks a retired row.
    public var version: Int64
    /// When the session was first stored, in milliseconds since the Unix epoch.
    public var createdAt: Int64
    /// When the session stops being valid, in milliseconds since the Unix epoch.
    public var expiresAt: Int64
    /// The owner the session is bound to (the app's user id), or `nil`: a column of its own
    /// with an index, so an owner's sessions can be listed and ended.
    public var owner: String?
    /// The session's own lifetime and device facts, encoded by the core; opaque to backends.
    /// `nil` when the session has none.
    public var details: [UInt8]?
    /// When the session was last used, in milliseconds since the Unix epoch: its creation,
    /// then the `now` of each write that moved its expiry (update, merge, touch, rebind), so
    /// it costs no write of its own.
    public var lastSeen: Int64

    public init(
        data: [UInt8], version: Int64, createdAt: Int64, expiresAt: Int64,
        owner: String? = nil, details: [UInt8]? = nil, lastSeen: Int64? = nil
    ) {
        self.data = data
        self.version = version
        self.createdAt = createdAt
        self.expiresAt = expiresAt
        self.owner = owner
        self.details = details
        self.lastSeen = lastSeen ?? createdAt
    }
}

/// A session of one owner, as ``StorageBackend/ownedSessions(owner:now:after:limit:)``
/// lists it: everything but the data.
public struct OwnedRecord: Sendable, Equatable {
    /// The row's key.
    public var key: SessionKey
    /// When it was first stored, in milliseconds since the Unix epoch.
    public var createdAt: Int64
    /// When it was last used (see ``SessionRecord/lastSeen``).
    public var lastSeen: Int64
    /// When it expires.
    public var expiresAt: Int64
    /// Its details (see ``SessionRecord/details``).
    public var details: [UInt8]?

    public init(key: SessionKey, createdAt: Int64, lastSeen: Int64, expiresAt: Int64, details: [UInt8]?) {
        self.key = key
        self.createdAt = createdAt
        self.lastSeen = lastSeen
        self.expiresAt = expiresAt
        self.details = details
    }
}

/// Where a listing of an owner's sessions goes on: after the row created at `createdAt`
/// with key `key`, in the order newest first (`createdAt` descending, then key descending).
public struct OwnedRecordPosition: Sendable, Equatable {
    public var createdAt: Int64
    public var key: SessionKey

    public init(createdAt: Int64, key: SessionKey) {
        self.createdAt = createdAt
        self.key = key
    }
}

/// Where sessions are kept: a thin mapping of a few operations onto one engine.
///
/// All policy (ids, expiry rules, dirty tracking, conflict handling, cleanup scheduling)
/// lives in ``SessionStore``; a backend only stores rows and evaluates the conditions
/// below atomically.
///
/// ## Implementation requirements
/// - Rows are identified by ``SessionKey``; compare ``SessionKey/value`` byte-for-byte.
/// - Times are milliseconds since the Unix epoch, chosen by the caller. A row whose
///   `expiresAt <= now` is expired: ``load(_:now:)``, ``update(_:data:expectedVersion:expiresAt:now:)``
///   and ``touch(_:expiresAt:now:)`` must treat it as missing.
/// - Each method is atomic: its condition is checked and its change applied in one step
///   (one statement or one transaction), so concurrent callers never interleave inside it.
/// - A method returns only after its change is durable to the degree the backend's
///   configuration promises; it never reports success for an uncommitted write.
/// - Failures are thrown, preferably as ``StorageError``; nothing is swallowed.
/// - Methods may be called concurrently from many tasks. Blocking work must not occupy
///   Swift's cooperative thread pool for long.
public protocol StorageBackend: Sendable {
    /// Returns the live row for `key`, or `nil` when it is missing or expired at `now`.
    func load(_ key: SessionKey, now: Int64) async throws -> SessionRecord?

    /// Stores a new row. Returns `false`, changing nothing, when a live row with `key`
    /// exists. An expired row with the same key may be replaced.
    func insert(_ key: SessionKey, _ record: SessionRecord) async throws -> Bool

    /// Replaces the data of a live row whose version is `expectedVersion`, sets its
    /// version to `expectedVersion + 1` and its expiry to the larger of the stored one and
    /// `expiresAt`. Returns `false`, changing nothing, when the row is missing, expired or
    /// at another version.
    func update(
        _ key: SessionKey, data: [UInt8], expectedVersion: Int64, expiresAt: Int64, now: Int64
    ) async throws -> Bool

    /// Reads the live row for `key` and applies the write `decide` chooses for it, with no
    /// other write to that row between the read and the write: the store's merge of
    /// concurrent saves, which therefore never fails because another request saved.
    ///
    /// `decide` gets the live row (`nil` when it is missing or expired; a retired row, at
    /// version `0`, is passed as it is) and returns the write plus a result for the
    /// caller; with `nil` there is nothing to write to and the write is ignored. A ``MergeWrite/replace(data:expiresAt:)`` sets the data, increments the
    /// version and sets the expiry to the larger of the stored one and `expiresAt`.
    /// `decide` must be quick and free of side effects: a backend may call it more than once
    /// (optimistic attempts) and returns the result of the call whose write it applied.
    /// An error thrown by `decide` is rethrown with nothing written.
    func merge<Result: Sendable>(
        _ key: SessionKey, now: Int64,
        _ decide: @escaping @Sendable (SessionRecord?) throws -> (MergeWrite, Result)
    ) async throws -> Result

    /// Moves a live row's expiry forward to `expiresAt` when it is earlier; never backwards.
    /// Returns `true` when a row was changed.
    func touch(_ key: SessionKey, expiresAt: Int64, now: Int64) async throws -> Bool

    /// Marks a live row retired: sets its version to `0` and moves its expiry back to
    /// `expiresAt` when that is earlier (never forwards). Used to retire an id after
    /// regeneration with a grace period: the store reads such a row but never extends or
    /// rewrites it. Returns `true` when a row exists for `key` (live, retired or expired),
    /// also when it was already retired with an earlier expiry, so a retried retire
    /// reports the same as the first.
    func retire(_ key: SessionKey, expiresAt: Int64) async throws -> Bool

    /// Deletes the row for `key` (only at `expectedVersion` when given). Returns `true`
    /// when a row was deleted.
    func delete(_ key: SessionKey, expectedVersion: Int64?) async throws -> Bool

    /// Deletes at most `limit` rows with `expiresAt < before`, evaluated at delete time,
    /// and returns how many it deleted. The store calls it in a loop until fewer than
    /// `limit` come back, so each call must hold locks only briefly.
    func deleteExpired(before: Int64, limit: Int) async throws -> Int

    /// Takes the cleanup lease for `holder` until `now + duration`, or renews it; `false`
    /// when another holder has it. Declared here (not only in the extension) so a call
    /// through `any StorageBackend` reaches a backend's own lease.
    func acquireCleanupLease(holder: String, now: Int64, duration: Int64) async throws -> Bool

    /// Gives up the cleanup lease when `holder` has it.
    func releaseCleanupLease(holder: String) async throws

    // MARK: Owners (see ``SessionRecord/owner``)

    /// Replaces the data, owner and details of a live row whose version is
    /// `expectedVersion`, sets its version to `expectedVersion + 1`, its expiry to exactly
    /// `expiresAt` (a shorter lifetime may move it back) and its last use to `now`. Returns
    /// `false`, changing nothing, when the row is missing, expired or at another version.
    func rebind(
        _ key: SessionKey, data: [UInt8], owner: String?, details: [UInt8]?, expiresAt: Int64, expectedVersion: Int64,
        now: Int64
    ) async throws -> Bool

    /// Up to `limit` live rows (expiry after `now`, version not `0`) of `owner`, newest
    /// first: `createdAt` descending, then ``SessionKey/value`` descending (byte order);
    /// only rows after `position` in that order when given. Served by an index on the owner.
    func ownedSessions(owner: String, now: Int64, after position: OwnedRecordPosition?, limit: Int) async throws -> [OwnedRecord]

    /// Deletes up to `limit` rows of `owner` (live, retired or expired), atomically: only
    /// the row `only` when given, never the row `except` when given. Returns how many it
    /// deleted. The store calls it in a loop until fewer than `limit` come back, so each
    /// call must hold locks only briefly.
    func deleteOwned(owner: String, only: SessionKey?, except: SessionKey?, limit: Int) async throws -> Int

    /// Keeps the `keep` most recently used live rows of `owner` (version not `0`; by
    /// `lastSeen`, then `createdAt`, then key, all descending) and deletes its other live
    /// rows, atomically. Returns how many it deleted. Every caller ranks the rows the same
    /// way, so two racing calls end the same rows.
    func trimOwned(owner: String, keep: Int, now: Int64) async throws -> Int

    /// Flushes pending writes and releases every connection and thread; returns only when
    /// they are closed. A second call does nothing; other calls after it throw
    /// ``StorageError/Kind/closed``.
    func close() async throws
}

/// The write a ``StorageBackend/merge(_:now:_:)`` decision asks for.
public enum MergeWrite: Sendable, Equatable {
    /// Leave the row as it is.
    case none
    /// Replace the row's data, bump its version, move its expiry forward to `expiresAt`.
    case replace(data: [UInt8], expiresAt: Int64)
    /// Delete the row.
    case delete
}

extension StorageBackend {
    /// A merge from optimistic attempts (``load(_:now:)``, then a versioned
    /// ``update(_:data:expectedVersion:expiresAt:now:)`` or ``delete(_:expectedVersion:)``),
    /// for backends that cannot lock a row. Each failed attempt means another request's
    /// write landed, so the loop always makes progress; it gives up with
    /// ``StorageError/Kind/busy`` only after 10,000 attempts.
    public func optimisticMerge<Result: Sendable>(
        _ key: SessionKey, now: Int64,
        _ decide: @escaping @Sendable (SessionRecord?) throws -> (MergeWrite, Result)
    ) async throws -> Result {
        for attempt in 0..<10_000 {
            if attempt > 0 { await Task.yield() }
            let current = try await load(key, now: now)
            let (write, result) = try decide(current)
            guard let current else { return result }
            switch write {
            case .none:
                return result
            case .replace(let data, let expiresAt):
                if try await update(key, data: data, expectedVersion: current.version, expiresAt: expiresAt, now: now) {
                    return result
                }
            case .delete:
                if try await delete(key, expectedVersion: current.version) { return result }
            }
        }
        throw StorageError(
            kind: .busy, engine: "store", operation: "merge",
            message: "the row kept changing during 10000 optimistic merge attempts")
    }

    /// A lease that lets at most one of several stores sharing this backend clean at a
    /// time. Backends shared by several processes override it; the default always grants.
    ///
    /// - Parameters:
    ///   - holder: A unique name of the caller.
    ///   - now: The caller's time, in milliseconds since the Unix epoch.
    ///   - duration: How long the lease lasts if the holder crashes, in milliseconds.
    public func acquireCleanupLease(holder: String, now: Int64, duration: Int64) async throws -> Bool {
        true
    }

    /// Gives up a lease taken with ``acquireCleanupLease(holder:now:duration:)``.
    public func releaseCleanupLease(holder: String) async throws {}
}

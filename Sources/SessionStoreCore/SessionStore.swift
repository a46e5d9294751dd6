public import CoreMetrics
public import Logging
import Synchronization

/// The front door: loads, saves, regenerates and destroys sessions, and cleans up
/// expired ones, on any ``StorageBackend``.
///
/// All policy lives here once: id validation, dirty tracking (unchanged sessions are not
/// written, empty ones never stored), sliding and absolute expiry with a touch interval,
/// conflict merging between concurrent requests, and single-flight batched cleanup.
public final class SessionStore: Sendable {
    /// The policy this store applies.
    public let configuration: SessionStoreConfiguration
    /// The backend rows are kept in.
    public let backend: any StorageBackend
    let clock: any SessionClock
    let logger: Logger
    let metrics: StoreMetrics
    /// The expiry policy in milliseconds, converted from `Duration`s once.
    let lifetimes: Lifetimes
    let cleanupState = Mutex(CleanupState())
    let isClosed = Atomic<Bool>(false)
    /// Names this store when it takes the shared cleanup lease.
    let instanceName = "store-" + SessionID.generate().text

    /// Creates a store over `backend`.
    /// - Parameters:
    ///   - backend: Where rows are kept; the store closes it on ``shutdown()``.
    ///   - configuration: The policy: expiry, size limits, retries, cleanup batches.
    ///   - clock: The time source for expiry; inject one in tests.
    ///   - metricsLabel: The prefix of the store's swift-metrics counters.
    ///   - metricsFactory: Where counters go; `nil` uses the global `MetricsSystem`.
    ///   - logger: Where the store logs (failures it also throws at debug only).
    /// - Throws: ``SessionStoreError`` `invalidConfiguration` when `configuration` fails
    ///   ``SessionStoreConfiguration/validate()`` (a configuration may come from a file or the
    ///   environment, so a bad one is an error, never a trap); the backend is left open.
    public convenience init(
        backend: any StorageBackend,
        configuration: SessionStoreConfiguration = SessionStoreConfiguration(),
        clock: any SessionClock = SystemSessionClock(),
        logger: Logger = Logger(label: "SessionStore"),
        metricsLabel: String = "session_store",
        metricsFactory: (any MetricsFactory)? = nil
    ) throws {
        try configuration.validate()
        self.init(
            backend: backend, validConfiguration: configuration, clock: clock, logger: logger,
            metricsLabel: metricsLabel, metricsFactory: metricsFactory)
    }

    /// A store over a configuration already validated (parsed from a URL, or a constant of
    /// this package's own), for callers that cannot throw.
    package init(
        backend: any StorageBackend,
        validConfiguration configuration: SessionStoreConfiguration,
        clock: any SessionClock = SystemSessionClock(),
        logger: Logger = Logger(label: "SessionStore"),
        metricsLabel: String = "session_store",
        metricsFactory: (any MetricsFactory)? = nil
    ) {
        self.backend = backend
        self.configuration = configuration
        self.clock = clock
        self.logger = logger
        self.metrics = StoreMetrics(label: metricsLabel, factory: metricsFactory)
        self.lifetimes = Lifetimes(configuration)
    }

    /// ``SessionStoreConfiguration``'s expiry policy in milliseconds. Converting a
    /// `Duration` (128-bit arithmetic) on every load cost more than the touch decision
    /// it feeds.
    struct Lifetimes: Sendable {
        let idle: Int64?
        let absolute: Int64?
        let touch: Int64

        init(_ configuration: SessionStoreConfiguration) {
            idle = configuration.idleTimeout?.milliseconds
            absolute = configuration.absoluteLifetime?.milliseconds
            touch = configuration.touchInterval.milliseconds
        }

        /// When a session created at `createdAt` and used at `now` expires, under its own
        /// lifetime when it has one.
        @inline(__always)
        func expiry(createdAt: Int64, now: Int64, _ own: SessionBinding.StoredLifetime? = nil) -> Int64 {
            var expiresAt = Int64.max
            if let own {
                if own.idle > 0 { expiresAt = now + own.idle }
                if own.absolute > 0 { expiresAt = min(expiresAt, createdAt + own.absolute) }
                return expiresAt
            }
            if let idle { expiresAt = now + idle }
            if let absolute { expiresAt = min(expiresAt, createdAt + absolute) }
            return expiresAt
        }
    }

    /// Opens a store from one configuration string, on whichever of `backends` it names:
    /// switching engines is a configuration change.
    ///
    /// ```swift
    /// let store = try await SessionStore.open("sqlite:///var/lib/app/sessions.db?idle_timeout=30m",
    ///                                         backends: [.sqlite, .mysql])
    /// ```
    /// The option `fallback=<percent-encoded URL>` adds a legacy store read on a miss
    /// (see ``FallbackBackend``), e.g. the SQLite file a site is moving away from.
    /// - Throws: ``SessionStoreError`` `invalidConfiguration` for a bad URL or unknown
    ///   option, ``StorageError`` when the backend cannot open.
    public static func open(
        _ configurationURL: String,
        backends: [StorageBackendFactory],
        clock: any SessionClock = SystemSessionClock(),
        logger: Logger = Logger(label: "SessionStore")
    ) async throws -> SessionStore {
        var url = try StoreURL(configurationURL)
        let configuration = try SessionStoreConfiguration(url: &url)
        let legacyURL = url.take("fallback")
        let keyRing = try EncryptionKeyRing.take(from: &url)
        var backend = try await openBackend(&url, backends: backends, logger: logger)
        if let legacyURL {
            var legacy = try StoreURL(legacyURL)
            do {
                let legacyBackend = try await openBackend(&legacy, backends: backends, logger: logger)
                backend = FallbackBackend(primary: backend, legacy: legacyBackend)
            } catch {
                try await backend.close()
                throw error
            }
            logger.info("reading legacy sessions from \(legacy)")
        }
        // Outermost, so legacy rows are opened too and rows copied from there keep their form.
        if let keyRing { backend = EncryptingBackend(wrapping: backend, keys: keyRing) }
        logger.info("session store opened", metadata: ["url": "\(url)"])
        // `SessionStoreConfiguration(url:)` validated the configuration.
        return SessionStore(backend: backend, validConfiguration: configuration, clock: clock, logger: logger)
    }

    /// Opens the backend `url` names once every option was understood.
    private static func openBackend(
        _ url: inout StoreURL, backends: [StorageBackendFactory], logger: Logger
    ) async throws -> any StorageBackend {
        try await StorageBackendFactory.handling(url.scheme, among: backends).makeBackend(&url, logger: logger)
    }

    // MARK: - Sessions

    /// A new, empty session with a freshly minted id. Nothing is stored until it has data
    /// and is saved.
    public func newSession() -> Session {
        Session(id: SessionID.generate(), stored: nil, values: [:])
    }

    /// Loads the session a client presented, or a new empty one.
    ///
    /// A missing, malformed, unknown or expired id gives a new session with a new id; the
    /// client's id is never adopted. A malformed id costs no database work. When the
    /// session's expiry is due to move by at least the touch interval, it is extended here
    /// (one-column write), so a request in flight keeps its session alive.
    /// - Throws: ``SessionStoreError`` `corruptData`/`unsupportedFormat`/`undecryptable` (unless the policy
    ///   is ``SessionStoreConfiguration/CorruptDataPolicy/startNewSession``), ``StorageError``.
    public func load(id text: String?) async throws -> Session {
        try await loadIfStored(id: text) ?? newSession()
    }

    /// The stored session a client presented, or `nil` where ``load(id:)`` would give a new
    /// session: no id is minted, so a driver that lets a request without a stored session
    /// (a bot, an unknown cookie) go by without one pays nothing for it. Counted and logged
    /// as ``load(id:)``.
    /// - Throws: What ``load(id:)`` throws.
    @inline(__always)
    package func loadIfStored(id text: String?) async throws -> Session? {
        try checkOpen()
        guard let text else {
            metrics.loadNoID.increment()
            return nil
        }
        guard let id = SessionID(validating: text) else {
            metrics.loadMalformed.increment()
            logger.debug("malformed session id rejected", metadata: ["length": "\(text.utf8.count)"])
            return nil
        }
        return try await loadValidated(id)
    }

    /// Loads a session by a validated id, or gives a new empty one when it is unknown.
    public func load(_ id: SessionID) async throws -> Session {
        try await loadValidated(id) ?? newSession()
    }

    /// The body of the loads, inlined into each: an async call is a task allocation and an
    /// executor check, as much as the rest of this function's own work. `nil` when no live
    /// session is stored under `id` (or its row is unreadable and `on_corrupt` says to start over).
    @inline(__always)
    private func loadValidated(_ id: SessionID) async throws -> Session? {
        try checkOpen()
        let key = storageKey(for: id)
        let now = clock.now()
        let record: SessionRecord?
        do {
            record = try await logged("load", id) { try await backend.load(key, now: now) }
        } catch let error as SessionStoreError where error.code == .undecryptable {
            return try unreadableRow(error, id)
        }
        guard let record, record.expiresAt > now else {
            metrics.loadMiss.increment()
            return nil
        }
        // One pass checks the whole row (damage shows here, under `on_corrupt`); values
        // are converted only when read.
        let row: AttributeRow
        var binding = SessionBinding.unbound
        do {
            row = try AttributeRow(validating: record.data)
            if record.owner != nil || record.details != nil {
                binding = try SessionBinding(owner: record.owner, details: record.details)
            }
        } catch let error as SessionStoreError {
            return try unreadableRow(error, id)
        }
        metrics.loadHit.increment()
        var stored = Session.Stored(
            version: record.version, createdAt: record.createdAt, expiresAt: record.expiresAt, binding: binding)
        var touched = false
        let extended = lifetimes.expiry(createdAt: record.createdAt, now: now, binding.lifetime)
        if record.version != Self.retiredVersion,
           Self.touchIsDue(expiresAt: record.expiresAt, extended: extended, interval: lifetimes.touch) {
            let moved = try await logged("touch", id) { try await backend.touch(key, expiresAt: extended, now: now) }
            if moved {
                metrics.touched.increment()
                stored.expiresAt = extended
                touched = true
            }
        }
        // Built last, so no `Session` is kept across the touch's suspension and copied out.
        return Session(id: id, stored: stored, row: row, touchedOnLoad: touched)
    }

    /// A stored row that cannot be decoded or decrypted, per `on_corrupt`: thrown, or
    /// reported here (the only report of the lost session) and `nil` (a new session follows).
    private func unreadableRow(_ error: SessionStoreError, _ id: SessionID) throws -> Session? {
        var error = error
        error.session = id.redacted
        (error.code == .undecryptable ? metrics.loadUndecryptable : metrics.loadCorrupt).increment()
        if configuration.corruptDataPolicy == .startNewSession {
            logger.warning("stored session cannot be read; starting a new one", metadata: ["session": "\(id.redacted)", "error": "\(error)"])
            return nil
        }
        logger.debug("stored session cannot be read", metadata: ["session": "\(id.redacted)", "error": "\(error)"])
        throw error
    }

    /// Writes what changed, and only that.
    ///
    /// - An unchanged session, or a new one without data, writes nothing (`.skipped`).
    /// - A new session with data is inserted (`.created`).
    /// - A stored session with changes is rewritten (`.updated`), or its row deleted when
    ///   its last attribute was removed (`.deleted`).
    ///
    /// Concurrent requests never make a save fail: every row has a version, and when
    /// another request saved first, only the attributes this request changed are applied
    /// to the current row, atomically in the backend (``StorageBackend/merge(_:now:_:)``),
    /// and the outcome is `.merged(overwrote:)`. Attributes only the other request changed
    /// are kept; for an attribute both changed, the save that commits last wins and names
    /// it in `overwrote`; increments add up. If the row was destroyed, regenerated or
    /// expired meanwhile, nothing is written (`.gone`).
    /// - Throws: ``SessionStoreError`` `dataTooLarge` (nothing written), `corruptData`,
    ///   `attributeCoding` (an increment met a non-integer); ``StorageError``.
    @discardableResult
    public func save(_ session: inout Session) async throws -> SaveOutcome {
        try checkOpen()
        guard session.hasChanges else {
            if session.stored == nil { metrics.skippedEmpty.increment() } else { metrics.skippedUnchanged.increment() }
            return .skipped
        }
        let key = storageKey(for: session.id)
        let id = session.id
        guard let stored = session.stored else {
            guard !session.isEmpty else {
                session.changes = [:]
                metrics.skippedEmpty.increment()
                return .skipped
            }
            let now = clock.now()
            let values = session.values.dictionary
            let data = try encode(values, id)
            let record = SessionRecord(
                data: data, version: 1, createdAt: now, expiresAt: lifetimes.expiry(createdAt: now, now: now))
            guard try await logged("insert", id, { try await backend.insert(key, record) }) else {
                throw SessionStoreError(.idCollision, "a new session's id already exists; nothing was overwritten", session: id)
            }
            session.markSaved(.init(version: 1, createdAt: record.createdAt, expiresAt: record.expiresAt), values: values)
            metrics.created.increment()
            return .created
        }
        if stored.version == Self.retiredVersion {
            // Read during a regeneration's grace period: readable, never written again.
            return sessionGone(&session, "save")
        }
        // The common case: nobody saved since this request loaded, one versioned write.
        let now = clock.now()
        if session.holdsNothing {
            if try await logged("delete", id, { try await backend.delete(key, expectedVersion: stored.version) }) {
                session = Session(id: id, stored: nil, values: [:])
                metrics.deleted.increment()
                return .deleted
            }
        } else {
            let values = session.values.dictionary
            let data = try encode(values, id)
            let expiresAt = lifetimes.expiry(createdAt: stored.createdAt, now: now, stored.binding.lifetime)
            let written = try await logged("update", id) {
                try await backend.update(key, data: data, expectedVersion: stored.version, expiresAt: expiresAt, now: now)
            }
            if written {
                session.markSaved(
                    .init(
                        version: stored.version + 1, createdAt: stored.createdAt, expiresAt: max(expiresAt, stored.expiresAt),
                        binding: stored.binding),
                    values: values)
                metrics.updated.increment()
                return .updated
            }
        }
        // Another request saved first, or the row is gone: merge into the current row.
        return try await merge(&session, key: key) { _ in }
    }

    /// Runs `change` on the session's latest stored state and saves the result atomically:
    /// a read-modify-write that no concurrent request can make lost.
    ///
    /// This request's unsaved changes are applied first, then `change`, on the row as it is
    /// in storage at the moment of the write (inside the backend's merge, so `change` must
    /// be quick, and may run more than once). For a stored session only; a new session is
    /// changed and saved as usual. Afterwards `session` holds the saved state.
    /// - Returns: The save's outcome (`.updated`/`.merged`, `.deleted` when `change` left
    ///   it empty, `.gone` when the session was destroyed meanwhile).
    /// - Throws: what `change` threw (nothing written), and what ``save(_:)`` throws.
    @discardableResult
    public func modify(
        _ session: inout Session, _ change: @escaping @Sendable (inout Session) throws -> Void
    ) async throws -> SaveOutcome {
        try checkOpen()
        guard let stored = session.stored else {
            try change(&session)
            return try await save(&session)
        }
        if stored.version == Self.retiredVersion { return sessionGone(&session, "modify") }
        return try await merge(&session, key: storageKey(for: session.id), change)
    }

    /// The merge of a save whose optimistic write lost, or of ``modify(_:_:)``.
    private func merge(
        _ session: inout Session, key: SessionKey, _ change: @escaping @Sendable (inout Session) throws -> Void
    ) async throws -> SaveOutcome {
        enum Decision: Sendable {
            case gone
            case deleted
            case written(Session, overwrote: [String])
        }
        let pending = session
        let id = session.id
        let now = clock.now()
        let configuration = configuration
        let lifetimes = lifetimes
        let decision = try await logged("merge", id) {
            try await backend.merge(key, now: now) { current -> (MergeWrite, Decision) in
                guard let current, current.version != Self.retiredVersion else { return (.none, .gone) }
                let currentValues: [String: [UInt8]]
                let binding: SessionBinding
                do {
                    currentValues = try AttributeCodec.decodeStored(current.data)
                    binding = try SessionBinding(owner: current.owner, details: current.details)
                } catch var error as SessionStoreError {
                    error.session = id.redacted
                    throw error
                }
                let (values, overwrote) = try pending.rebased(on: currentValues)
                var result = Session(
                    id: id,
                    stored: .init(
                        version: current.version, createdAt: current.createdAt, expiresAt: current.expiresAt, binding: binding),
                    values: values)
                try change(&result)
                if result.holdsNothing { return (.delete, .deleted) }
                let written = result.values.dictionary
                let data = try Self.encode(written, id, limit: configuration.maxDataSize)
                let expiresAt = lifetimes.expiry(createdAt: current.createdAt, now: now, binding.lifetime)
                result.markSaved(
                    .init(
                        version: current.version + 1, createdAt: current.createdAt,
                        expiresAt: max(expiresAt, current.expiresAt), binding: binding),
                    values: written)
                return (.replace(data: data, expiresAt: expiresAt), .written(result, overwrote: overwrote))
            }
        }
        switch decision {
        case .gone:
            return sessionGone(&session, "save")
        case .deleted:
            session = Session(id: id, stored: nil, values: [:])
            metrics.deleted.increment()
            return .deleted
        case .written(let result, let overwrote):
            let merged = result.stored?.version != (pending.stored?.version ?? 0) + 1
            session = result
            if merged {
                metrics.conflicts.increment()
                if !overwrote.isEmpty {
                    logger.debug(
                        "save replaced attributes another request had changed",
                        metadata: ["session": "\(id.redacted)", "attributes": "\(overwrote)"])
                }
                return .merged(overwrote: overwrote)
            }
            metrics.updated.increment()
            return .updated
        }
    }

    /// A save that found its session destroyed, retired or expired: nothing is written and
    /// `session` becomes a new, empty one.
    func sessionGone(_ session: inout Session, _ operation: String) -> SaveOutcome {
        metrics.gone.increment()
        logger.debug("\(operation) found its session gone; nothing written", metadata: ["session": "\(session.id.redacted)"])
        session = newSession()
        return .gone
    }

    /// Gives the session a new id (call it after login, against session fixation), keeping
    /// its data, owner and lifetime. The old id keeps working for the grace period, then
    /// never again.
    ///
    /// Only a live session is moved: when the stored session was destroyed, expired, or
    /// retired by another regeneration since it was loaded, nothing is written and
    /// `session` becomes a new, empty one (as ``save(_:)`` does when it returns `.gone`),
    /// so a stale request cannot bring a logged-out session back under a new id.
    /// - Throws: ``SessionStoreError``, ``StorageError``.
    public func regenerateID(_ session: inout Session) async throws {
        try await regenerate(&session, binding: nil)
    }

    /// Moves the session to a new id; with `newBinding`, the new row carries that owner,
    /// device and lifetime from its first write, so the new id never exists unbound.
    func regenerate(_ session: inout Session, binding newBinding: SessionBinding?) async throws {
        try checkOpen()
        let oldID = session.id
        let newID = SessionID.generate()
        let newKey = storageKey(for: newID)
        guard let stored = session.stored else {
            guard let newBinding else {
                session.id = newID
                return
            }
            // Nothing stored yet: the bound session is written at once, under the new id.
            session.id = newID
            return try await insertBound(&session, newBinding)
        }
        let oldKey = storageKey(for: oldID)
        guard stored.version != Self.retiredVersion else { return regenerationFoundGone(&session) }
        try await retryingConflicts(
            "concurrent saves kept changing the session during regeneration; its id was not changed", session: oldID
        ) { () -> Void? in
            let now = clock.now()
            guard let current = try await logged("load", oldID, { try await backend.load(oldKey, now: now) }),
                  current.version != Self.retiredVersion
            else { return regenerationFoundGone(&session) }
            // Carry over what other requests saved since this one loaded, plus this one's changes.
            let values: [String: [UInt8]]
            let binding: SessionBinding
            do {
                values = try session.rebased(on: try AttributeCodec.decodeStored(current.data)).values
                binding = try newBinding ?? SessionBinding(owner: current.owner, details: current.details)
            } catch var error as SessionStoreError {
                error.session = oldID.redacted
                throw error
            }
            if values.isEmpty && binding.isEmpty {
                try await destroy(&session)
                session.id = newID
                return ()
            }
            let record = SessionRecord(
                data: try encode(values, oldID), version: 1, createdAt: current.createdAt,
                expiresAt: lifetimes.expiry(createdAt: current.createdAt, now: now, binding.lifetime),
                owner: binding.owner, details: binding.encodedDetails, lastSeen: now)
            guard try await logged("insert", newID, { try await backend.insert(newKey, record) }) else {
                throw SessionStoreError(.idCollision, "a regenerated id already exists; nothing was overwritten", session: newID)
            }
            // Without a grace period the old row goes only at the version copied, so a save
            // that lands in between is not lost: the copy is taken back and redone.
            let grace = configuration.regenerationGracePeriod.milliseconds
            let retired = if grace == 0 {
                try await logged("delete", oldID) { try await backend.delete(oldKey, expectedVersion: current.version) }
            } else {
                try await logged("retire", oldID) { try await backend.retire(oldKey, expiresAt: now + grace) }
            }
            if retired {
                session.id = newID
                session.markSaved(
                    .init(version: 1, createdAt: record.createdAt, expiresAt: record.expiresAt, binding: binding), values: values)
                metrics.regenerated.increment()
                return ()
            }
            // Saved or destroyed meanwhile: take the copy back; the re-read tells which.
            _ = try await logged("delete", newID) { try await backend.delete(newKey, expectedVersion: nil) }
            return nil
        }
    }

    /// Stores a session that was never stored, with its binding, under its id: the first
    /// write of a session signed in before it had a row.
    func insertBound(_ session: inout Session, _ binding: SessionBinding) async throws {
        let id = session.id
        let now = clock.now()
        let values = session.values.dictionary
        let record = SessionRecord(
            data: try encode(values, id), version: 1, createdAt: now,
            expiresAt: lifetimes.expiry(createdAt: now, now: now, binding.lifetime),
            owner: binding.owner, details: binding.encodedDetails)
        guard try await logged("insert", id, { try await backend.insert(storageKey(for: id), record) }) else {
            throw SessionStoreError(.idCollision, "a new session's id already exists; nothing was overwritten", session: id)
        }
        session.markSaved(.init(version: 1, createdAt: now, expiresAt: record.expiresAt, binding: binding), values: values)
        metrics.created.increment()
    }

    /// Regeneration of a session that was destroyed, expired or retired meanwhile: nothing
    /// is written and `session` becomes a new, empty one.
    private func regenerationFoundGone(_ session: inout Session) {
        metrics.gone.increment()
        logger.debug("regeneration found its session gone; nothing written", metadata: ["session": "\(session.id.redacted)"])
        session = newSession()
    }

    /// Deletes the stored session (logout) and resets `session` to a new, empty one.
    /// - Throws: ``StorageError``.
    public func destroy(_ session: inout Session) async throws {
        try checkOpen()
        let id = session.id
        if session.stored != nil {
            let key = storageKey(for: id)
            if try await logged("delete", id, { try await backend.delete(key, expectedVersion: nil) }) {
                metrics.destroyed.increment()
            }
        }
        session = newSession()
    }

    // MARK: - Helpers

    /// The key rows of session `id` are stored under, per ``SessionStoreConfiguration/idHashing``.
    /// For tools and migrations that reach the backend directly.
    public func storageKey(for id: SessionID) -> SessionKey {
        SessionKey(id, hashing: configuration.idHashing)
    }

    /// The version a backend gives a row retired by ``StorageBackend/retire(_:expiresAt:)``.
    static let retiredVersion: Int64 = 0

    func checkOpen() throws {
        if isClosed.load(ordering: .relaxed) {
            throw SessionStoreError(.closed, "the session store was shut down")
        }
    }

    func encode(_ values: [String: [UInt8]], _ id: SessionID) throws -> [UInt8] {
        try Self.encode(values, id, limit: configuration.maxDataSize)
    }

    private static func encode(_ values: [String: [UInt8]], _ id: SessionID, limit: Int) throws -> [UInt8] {
        let data = AttributeCodec.encodeStored(values)
        try checkSize(of: data, limit: limit, session: id)
        return data
    }

    /// Runs a backend call, counting its failure and logging it at debug (the caller gets
    /// the error and decides what to report) before rethrowing it.
    @inline(__always)
    func logged<T>(_ operation: String, _ id: SessionID?, _ body: () async throws -> T) async throws -> T {
        do {
            return try await body()
        } catch var error as SessionStoreError where error.code == .undecryptable {
            // The row's fault, not the storage's (see `EncryptingBackend`): the caller decides.
            error.session = id?.redacted
            throw error
        } catch {
            metrics.errors.increment()
            logger.debug(
                "session storage failed",
                metadata: ["operation": "\(operation)", "session": "\(id?.redacted ?? "-")", "error": "\(error)"])
            throw error
        }
    }
}

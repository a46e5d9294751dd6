#if Hummingbird
import Foundation
public import Hummingbird
public import Logging
public import SessionStoreCore

/// Hummingbird's key/value ``PersistDriver`` on any ``StorageBackend`` of this package, so
/// HummingbirdAuth's `SessionMiddleware(storage:)` (or any other user of `PersistDriver`)
/// switches to SQLite or MySQL in one line.
///
/// Follows the protocol as Hummingbird's own drivers do: `create` throws
/// `PersistError.duplicate` for a live key, `set` with `expires: nil` keeps the stored
/// expiry, `getWithTTL` gives the exact remaining time (never rounded up), an expired value
/// is absent, and reading a value as another type throws `PersistError.invalidConversion`.
/// Rows are keyed by the SHA-256 of the key string (as the store keys session ids), so a copy
/// of the table does not reveal session cookies. Values are stored as JSON.
///
/// It is a swift-service-lifecycle `Service`, as every `PersistDriver` is: add it to the
/// application's services and ``run()`` deletes expired rows every
/// ``Configuration/cleanupInterval`` until graceful shutdown, then closes the backend. A driver
/// that is not run starts no task; call ``cleanup()`` and ``shutdown()`` yourself then.
public struct SessionStorePersistDriver: PersistDriver {
    /// How the driver expires, touches and cleans values.
    public struct Configuration: Sendable {
        /// Sliding expiry: when set, reading a value whose expiry is finite pushes it to
        /// `now + idleTimeout`, at most once per `touchInterval` (a one-column write), so active
        /// sessions stay alive without a write per request. The default is `nil` (values
        /// expire when their `expires` said, as with Hummingbird's own drivers).
        public var slidingExpiry: (idleTimeout: Duration, touchInterval: Duration)?
        /// How often ``run()`` deletes expired rows in the background; `nil` leaves it to the
        /// app (``cleanup()``). Must be positive. The default is 10 minutes.
        public var cleanupInterval: Duration? = .seconds(600)
        /// Whether keys are stored as their SHA-256 or as they are. The default is
        /// ``IDHashing/sha256``.
        public var keyHashing: IDHashing = .sha256

        /// The defaults.
        public init() {}
    }

    /// The policy this driver applies.
    public let configuration: Configuration
    let backend: any StorageBackend
    let clock: any SessionClock
    /// Runs cleanup (batched, leased between processes) and shutdown on the same backend.
    let store: SessionStore
    /// The last values read or written, so reading an unchanged value does not decode it again.
    let decoded = DecodedValueCache()

    /// A driver over `backend`; the driver closes it on shutdown.
    /// - Parameter clock: The time source for expiry; inject one in tests.
    public init(
        backend: any StorageBackend, configuration: Configuration = Configuration(),
        clock: any SessionClock = SystemSessionClock()
    ) {
        self.backend = backend
        self.configuration = configuration
        self.clock = clock
        var storeConfiguration = SessionStoreConfiguration()
        storeConfiguration.idleTimeout = nil
        storeConfiguration.backgroundCleanupInterval = configuration.cleanupInterval
        self.store = SessionStore(backend: backend, validConfiguration: storeConfiguration, clock: clock)
    }

    /// Opens the backend a store URL names (the same URLs as ``SessionStore/open(_:backends:clock:logger:)``,
    /// backend options only), so switching between SQLite and MySQL is a configuration change:
    /// ```swift
    /// let persist = try await SessionStorePersistDriver.open("sqlite:///var/lib/app/sessions.db", backends: [.sqlite])
    /// ```
    /// - Throws: ``SessionStoreError`` `invalidConfiguration` for a bad URL, an unknown option or
    ///   a scheme none of `backends` handles; ``StorageError`` when the backend cannot open.
    public static func open(
        _ url: String, backends: [StorageBackendFactory], configuration: Configuration = Configuration(),
        clock: any SessionClock = SystemSessionClock(), logger: Logger = Logger(label: "SessionStoreHummingbird")
    ) async throws -> SessionStorePersistDriver {
        var storeURL = try StoreURL(url)
        // Every option is checked before the backend opens.
        let backend = try await StorageBackendFactory.handling(storeURL.scheme, among: backends)
            .makeBackend(&storeURL, logger: logger)
        return SessionStorePersistDriver(backend: backend, configuration: configuration, clock: clock)
    }

    /// Stores `value` under `key`.
    /// - Throws: `PersistError.duplicate` when a live value exists for `key`;
    ///   ``StorageError``; ``SessionStoreError`` `dataTooLarge`.
    public func create<Object: Codable & Sendable>(key: String, value: Object, expires: Duration?) async throws {
        let now = clock.now()
        let key = storageKey(key)
        let data = try encode(value)
        let record = SessionRecord(data: data, version: 1, createdAt: now, expiresAt: Self.expiry(expires, now: now))
        guard try await backend.insert(key, record) else { throw PersistError.duplicate }
        decoded.keep(value, for: key.value, bytes: data, version: 1)
    }

    /// Stores `value` under `key`, replacing any value; `expires: nil` keeps a stored
    /// value's expiry (a new value then never expires).
    /// - Throws: ``StorageError``; ``SessionStoreError`` `dataTooLarge`, or
    ///   `conflictRetriesExhausted` when other writers changed the key in every one of the
    ///   store's conflict retries (``SessionStoreConfiguration/maxConflictRetries``).
    public func set<Object: Codable & Sendable>(key: String, value: Object, expires: Duration?) async throws {
        let data = try encode(value)
        let key = storageKey(key)
        // A key this driver has neither read nor written lately is most likely new
        // (HummingbirdAuth's sign-in sets a freshly drawn key): an insert stores it in one
        // round trip, where the merge below would first find no row and then insert. When a
        // live row exists after all, the insert writes nothing and the merge replaces it.
        if !decoded.holds(key.value) {
            let now = clock.now()
            let record = SessionRecord(
                data: data, version: 1, createdAt: now, expiresAt: expires.map { Self.expiry($0, now: now) } ?? Int64.max)
            if try await backend.insert(key, record) {
                decoded.keep(value, for: key.value, bytes: data, version: 1)
                return
            }
        }
        // A key read or written lately (HummingbirdAuth loads the session before the handler
        // changes it): while the row is still at the version seen and the expiry stays, one
        // conditional update replaces the value, where the merge below reads and writes in a
        // transaction. Anything else (another writer, an expired row) takes the merge.
        if expires == nil, let version = decoded.version(of: key.value),
           try await backend.update(key, data: data, expectedVersion: version, expiresAt: 0, now: clock.now()) {
            decoded.keep(value, for: key.value, bytes: data, version: version + 1)
            return
        }
        // A lost round means another writer's change landed: decide again on what it left.
        let version = try await store.retryingConflicts("the key kept changing; the value was not set", session: nil) { () -> Int64? in
            let now = clock.now()
            let expiresAt = expires.map { Self.expiry($0, now: now) }
            // Atomic read-decide-write: replace in place unless the expiry moves backwards,
            // which a backend write never does (expiry only grows).
            let step: SetStep = try await backend.merge(key, now: now) { current in
                guard let current else { return (.none, .missing) }
                let target = expiresAt ?? current.expiresAt
                if target < current.expiresAt { return (.none, .shorten(version: current.version)) }
                return (.replace(data: data, expiresAt: target), .written(version: current.version + 1))
            }
            switch step {
            case .written(let version):
                return version
            case .missing:
                let record = SessionRecord(data: data, version: 1, createdAt: now, expiresAt: expiresAt ?? Int64.max)
                if try await backend.insert(key, record) { return 1 }
            case .shorten(let version):
                // An earlier expiry: replace the row (delete at the version read, then insert).
                if try await backend.delete(key, expectedVersion: version) {
                    let record = SessionRecord(data: data, version: version + 1, createdAt: now, expiresAt: expiresAt ?? now)
                    if try await backend.insert(key, record) { return version + 1 }
                }
            }
            await Task.yield()
            return nil
        }
        decoded.keep(value, for: key.value, bytes: data, version: version)
    }

    /// The value under `key`, or `nil` when absent or expired.
    /// - Throws: `PersistError.invalidConversion` when the value is not an `Object`;
    ///   ``StorageError``.
    public func get<Object: Codable & Sendable>(key: String, as type: Object.Type) async throws -> Object? {
        try await getWithTTL(key: key, as: type)?.object
    }

    /// The value under `key` and its exact remaining lifetime (`nil` for a value without
    /// expiry), or `nil` when absent or expired.
    /// - Throws: `PersistError.invalidConversion` when the value is not an `Object`;
    ///   ``StorageError``.
    public func getWithTTL<Object: Codable & Sendable>(
        key: String, as type: Object.Type
    ) async throws -> (object: Object, ttl: Duration?)? {
        let key = storageKey(key)
        // Expiry is stored in whole milliseconds, but the remaining time is counted from the
        // precise instant: one read in the same millisecond as the write has less left.
        let instant = clock.preciseNow()
        let now = instant.milliseconds
        guard var record = try await backend.load(key, now: now) else { return nil }
        let object: Object
        if let cached = decoded.value(for: key.value, bytes: record.data, version: record.version, as: Object.self) {
            object = cached
        } else {
            object = try decode(record.data)
            decoded.keep(object, for: key.value, bytes: record.data, version: record.version)
        }
        if let (idle, interval) = configuration.slidingExpiry, record.expiresAt != Int64.max {
            let extended = now + idle.milliseconds
            if SessionStore.touchIsDue(expiresAt: record.expiresAt, extended: extended, interval: interval.milliseconds),
               try await backend.touch(key, expiresAt: extended, now: now) {
                record.expiresAt = extended
            }
        }
        let ttl: Duration? = record.expiresAt == Int64.max ? nil : .milliseconds(record.expiresAt) - instant
        return (object, ttl)
    }

    /// Removes the value under `key`, if any.
    /// - Throws: ``StorageError``.
    public func remove(key: String) async throws {
        let key = storageKey(key)
        // A removed value (a signed-out session) is not kept in memory either.
        decoded.forget(key.value)
        _ = try await backend.delete(key, expectedVersion: nil)
    }

    /// Deletes expired values now (batched; one process at a time when several share the
    /// database) and returns how many it deleted.
    /// - Throws: ``StorageError``.
    public func cleanup() async throws -> Int {
        try await store.cleanup()
    }

    /// Runs the driver as a `Service` (the store's ``SessionStore/run()``): background cleanup
    /// every ``Configuration/cleanupInterval`` until graceful shutdown or cancellation, then
    /// ``shutdown()``.
    /// - Throws: ``StorageError`` from closing the backend.
    public func run() async throws {
        try await store.run()
    }

    /// Stops background cleanup and closes the backend; later calls throw `closed`. ``run()``
    /// calls it on graceful shutdown; call it yourself for a driver that is not run.
    /// - Throws: ``StorageError`` from closing the backend.
    public func shutdown() async throws {
        try await store.shutdown()
    }

    // MARK: - Helpers

    /// The row key of `key`: its SHA-256 in base64url, or the key itself.
    func storageKey(_ key: String) -> SessionKey {
        SessionKey(text: key, hashing: configuration.keyHashing)
    }

    /// When a value stored at `now` for `duration` expires; a positive duration under one
    /// millisecond still lasts one.
    static func expiry(_ duration: Duration?, now: Int64) -> Int64 {
        guard let duration else { return Int64.max }
        let (seconds, attoseconds) = duration.components
        guard seconds >= 0, attoseconds >= 0 else { return now }
        let milliseconds = seconds.multipliedReportingOverflow(by: 1000)
        guard !milliseconds.overflow else { return Int64.max }
        let rest = (attoseconds + 999_999_999_999_999) / 1_000_000_000_000_000
        let (total, overflow) = milliseconds.partialValue.addingReportingOverflow(rest)
        guard !overflow else { return Int64.max }
        let (sum, sumOverflow) = now.addingReportingOverflow(total)
        return sumOverflow ? Int64.max : sum
    }

    private func encode(_ value: some Encodable) throws -> [UInt8] {
        let json: Data
        do {
            json = try JSONEncoder().encode(value)
        } catch {
            throw SessionStoreError(.attributeCoding, "value cannot be encoded: \(error)", underlying: error)
        }
        let data = AttributeCodec.encode([Self.attribute: Array(json)])
        try store.checkSize(of: data)
        return data
    }

    private func decode<Object: Decodable>(_ data: [UInt8]) throws -> Object {
        let attributes = try AttributeCodec.decode(data)
        guard let json = attributes[Self.attribute] else { throw PersistError.invalidConversion }
        do {
            return try JSONDecoder().decode(Object.self, from: Data(json))
        } catch {
            throw PersistError.invalidConversion
        }
    }

    /// The one attribute a persisted value is stored under, in the store's row format.
    static let attribute = "value"
}

/// What ``SessionStorePersistDriver/set(key:value:expires:)`` found in one atomic step.
private enum SetStep: Sendable {
    case written(version: Int64)
    case missing
    case shorten(version: Int64)
}
#endif

/// The store's policy: expiry, size limits, conflict retries and cleanup batching.
///
/// The same policy applies on every backend.
public struct SessionStoreConfiguration: Sendable {
    /// What a load does with a stored row that cannot be decoded.
    public enum CorruptDataPolicy: String, Sendable {
        /// Throw ``SessionStoreError`` `corruptData` (or `unsupportedFormat`, `undecryptable`).
        case throwError = "error"
        /// Log the error, count it, and hand out a new empty session instead.
        case startNewSession = "new"
    }

    /// Sliding expiry: a session unused for this long expires. `nil` disables it.
    /// The default is 30 minutes.
    public var idleTimeout: Duration? = .seconds(30 * 60)
    /// Absolute lifetime from the session's creation, however active. `nil` disables it.
    /// The default is `nil`.
    public var absoluteLifetime: Duration?
    /// A read extends a session only when that gains at least this much time, so busy
    /// sessions are not rewritten on every request. The default is 60 seconds.
    public var touchInterval: Duration = .seconds(60)
    /// The largest encoded session accepted by a save, in bytes. The default is 64 KiB.
    public var maxDataSize: Int = 64 * 1024
    /// What a load does with a corrupt row. The default is ``CorruptDataPolicy/throwError``.
    public var corruptDataPolicy: CorruptDataPolicy = .throwError
    /// How often a save re-reads and re-applies its changes after a concurrent save.
    /// The default is 16.
    public var maxConflictRetries: Int = 16
    /// Rows deleted per cleanup statement; smaller batches stall writers less.
    /// The default is 1000.
    public var cleanupBatchSize: Int = 1000
    /// How long an old id keeps working after ``SessionStore/regenerateID(_:)``, for
    /// requests already in flight. The default is 5 seconds; `.zero` kills it at once.
    public var regenerationGracePeriod: Duration = .seconds(5)
    /// Whether rows are keyed by the id's SHA-256 (so a copy of the table cannot be used to
    /// take over sessions) or by the id itself. The default is ``IDHashing/sha256``.
    public var idHashing: IDHashing = .sha256
    /// How long a cleanup lease lasts if its holder dies mid-cleanup. The default is 5 minutes.
    public var cleanupLeaseDuration: Duration = .seconds(300)

    /// How far apart the clocks of the hosts sharing one database may be. Cleanup deletes
    /// only rows that expired at least this long ago, and a cleanup lease counts as lapsed
    /// only this long after its expiry, so a host whose clock runs ahead can neither delete
    /// another host's live sessions nor take its lease early. Loads still treat a row as
    /// expired at its exact expiry. The default is 60 seconds.
    public var clockSkewAllowance: Duration = .seconds(60)

    /// The longest idle timeout a session may be given of its own (``SessionLifetime``).
    /// The default is 400 days, the longest cookie lifetime browsers keep.
    public var maxIdleTimeout: Duration = .seconds(400 * 86_400)
    /// The longest absolute lifetime a session may be given of its own (``SessionLifetime``).
    /// The default is 400 days.
    public var maxAbsoluteLifetime: Duration = .seconds(400 * 86_400)
    /// Binding a session to an owner who already has this many live sessions ends the
    /// owner's least recently used ones. `nil`, the default, sets no cap.
    public var maxSessionsPerOwner: Int?
    /// How often ``SessionStore/run()`` (the store as a swift-service-lifecycle `Service`)
    /// deletes expired sessions in the background; `nil` leaves cleanup to the app. The
    /// default is 60 seconds.
    public var backgroundCleanupInterval: Duration? = .seconds(60)

    /// The defaults.
    public init() {}

    /// Reads the core's options from a configuration URL: `idle_timeout`,
    /// `absolute_lifetime`, `touch_interval`, `max_size`, `on_corrupt` (`error`|`new`),
    /// `conflict_retries`, `cleanup_batch`, `regenerate_grace`, `cleanup_lease`,
    /// `clock_skew`, `cleanup_interval`, `id_hash` (`sha256`|`none`), `max_idle_timeout`,
    /// `max_absolute_lifetime`, `max_sessions_per_owner` (`0`: no cap).
    /// - Throws: ``SessionStoreError`` `invalidConfiguration`.
    public init(url: inout StoreURL) throws {
        if let value = try url.takeDuration("idle_timeout") { idleTimeout = value == .zero ? nil : value }
        if let value = try url.takeDuration("absolute_lifetime") { absoluteLifetime = value == .zero ? nil : value }
        if let value = try url.takeDuration("touch_interval") { touchInterval = value }
        if let value = try url.takeInt("max_size", in: 16...(64 * 1024 * 1024)) { maxDataSize = value }
        if let value = try url.takeChoice("on_corrupt", ["error": CorruptDataPolicy.throwError, "new": .startNewSession]) {
            corruptDataPolicy = value
        }
        if let value = try url.takeInt("conflict_retries", in: 0...1000) { maxConflictRetries = value }
        if let value = try url.takeInt("cleanup_batch", in: 1...1_000_000) { cleanupBatchSize = value }
        if let value = try url.takeDuration("regenerate_grace") { regenerationGracePeriod = value }
        if let value = try url.takeDuration("cleanup_lease") { cleanupLeaseDuration = value }
        if let value = try url.takeDuration("clock_skew") { clockSkewAllowance = value }
        if let value = try url.takeDuration("cleanup_interval") { backgroundCleanupInterval = value == .zero ? nil : value }
        if let value = try url.takeChoice("id_hash", ["sha256": IDHashing.sha256, "none": .none]) { idHashing = value }
        if let value = try url.takeDuration("max_idle_timeout") { maxIdleTimeout = value }
        if let value = try url.takeDuration("max_absolute_lifetime") { maxAbsoluteLifetime = value }
        if let value = try url.takeInt("max_sessions_per_owner", in: 0...1_000_000) {
            maxSessionsPerOwner = value == 0 ? nil : value
        }
        try validate()
    }

    /// Checks the values for consistency.
    /// - Throws: ``SessionStoreError`` `invalidConfiguration`.
    public func validate() throws {
        if let idleTimeout, idleTimeout <= .zero { throw StoreURL.invalid("idle timeout must be positive") }
        if let absoluteLifetime, absoluteLifetime <= .zero { throw StoreURL.invalid("absolute lifetime must be positive") }
        if touchInterval < .zero { throw StoreURL.invalid("touch interval must not be negative") }
        if let idleTimeout, touchInterval >= idleTimeout {
            throw StoreURL.invalid("touch interval must be shorter than the idle timeout, or sessions expire between touches")
        }
        if maxDataSize < 16 { throw StoreURL.invalid("maximum data size must be at least 16 bytes") }
        if cleanupBatchSize < 1 { throw StoreURL.invalid("cleanup batch size must be at least 1") }
        if maxConflictRetries < 0 { throw StoreURL.invalid("conflict retries must not be negative") }
        if regenerationGracePeriod < .zero { throw StoreURL.invalid("regeneration grace period must not be negative") }
        if cleanupLeaseDuration <= .zero { throw StoreURL.invalid("cleanup lease duration must be positive") }
        if clockSkewAllowance < .zero { throw StoreURL.invalid("clock skew allowance must not be negative") }
        if maxIdleTimeout <= .zero { throw StoreURL.invalid("maximum idle timeout must be positive") }
        if maxAbsoluteLifetime <= .zero { throw StoreURL.invalid("maximum absolute lifetime must be positive") }
        if let maxSessionsPerOwner, maxSessionsPerOwner < 1 {
            throw StoreURL.invalid("maximum sessions per owner must be at least 1")
        }
        if let backgroundCleanupInterval, backgroundCleanupInterval <= .zero {
            throw StoreURL.invalid("background cleanup interval must be positive")
        }
    }

}

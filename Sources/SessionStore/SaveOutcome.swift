/// What ``SessionStore/save(_:)`` did, so callers and tests can see every write.
public enum SaveOutcome: String, Sendable, Equatable {
    /// A new session was written for the first time.
    case created
    /// A stored session's data was rewritten.
    case updated
    /// The session's last attribute was removed, so its row was deleted.
    case deleted
    /// Nothing changed (or a new session stayed empty): nothing was written.
    case skipped
    /// The stored session was destroyed, regenerated or expired by another request before
    /// this save; nothing was written and the session was reset to a new, empty one. A
    /// session is never resurrected by a late save.
    case gone
}

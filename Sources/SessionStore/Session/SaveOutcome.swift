/// What ``SessionStore/save(_:)`` did, so callers and tests can see every write.
public enum SaveOutcome: Sendable, Equatable {
    /// A new session was written for the first time.
    case created
    /// A stored session's data was rewritten; no other request had saved it meanwhile.
    case updated
    /// Another request saved the session after this one loaded it: this request's changes
    /// were applied on top of that newer row (attributes only the other request changed
    /// are kept). `overwrote` names, sorted, the attributes the other request had changed
    /// that this save then replaced or removed: the only way a concurrent change is lost,
    /// reported rather than silent. Increments (``Session/increment(_:by:)``) never are.
    case merged(overwrote: [String])
    /// The session's last attribute was removed, so its row was deleted.
    case deleted
    /// Nothing changed (or a new session stayed empty): nothing was written.
    case skipped
    /// The stored session was destroyed, regenerated or expired by another request before
    /// this save; nothing was written and the session was reset to a new, empty one. A
    /// session is never resurrected by a late save.
    case gone

    /// Whether the session's data is now in storage as the caller left it (`created`,
    /// `updated` or `merged`).
    public var wroteData: Bool {
        switch self {
        case .created, .updated, .merged: true
        case .deleted, .skipped, .gone: false
        }
    }
}

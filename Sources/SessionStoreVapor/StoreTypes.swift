#if Vapor
import SessionStore

// Vapor and this package both name types `Session` and `SessionID`, and the module
// `SessionStore` shares its name with its front-door class, so `SessionStore.Session`
// cannot name the store's type where Vapor is imported. These aliases can.

/// The store's session type.
typealias StoreSession = Session
/// The store's session id type.
typealias StoreSessionID = SessionID
#endif

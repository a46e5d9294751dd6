#if Vapor
import SessionStoreCore

/// The store's id type (Vapor has its own `SessionID`, and the module's name is also its
/// class's, so `SessionStore.SessionID` cannot name it where Vapor is imported).
typealias StoreID = SessionID
#endif

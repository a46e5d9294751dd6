#if Hummingbird
import SessionStore

// The module `SessionStore` shares its name with its front-door class, so
// `SessionStore.Session` cannot name the store's session type; these aliases can.

/// The store's session type.
typealias StoreSession = Session
#endif

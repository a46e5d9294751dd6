/// The apps compared.
package enum Variant: String, CaseIterable, Sendable {
    /// Vapor with this store's driver (`app.sessions.use(.sessionStore(store))`), routes on
    /// `req.session.data`.
    case vaporStore = "vapor-store"
    /// The same through the store's typed view (`req.typedSession`) in every route.
    case vaporStoreTyped = "vapor-store-typed"
    /// Vapor with Fluent's database sessions on SQLite, as shipped (rollback journal).
    case vaporFluent = "vapor-fluent"
    /// Vapor with Fluent's sessions on a SQLite file in WAL mode.
    case vaporFluentWAL = "vapor-fluent-wal"
    /// Vapor with this store's driver on PostgreSQL (the DATABASE argument is a `postgres://` URL).
    case vaporStorePostgres = "vapor-store-pg"
    /// Vapor with Fluent's database sessions on PostgreSQL through fluent-postgres-driver, as
    /// shipped (its default pool, one connection per event loop).
    case vaporFluentPostgres = "vapor-fluent-pg"
    /// Vapor with its in-memory sessions: the ceiling.
    case vaporMemory = "vapor-memory"
    /// Hummingbird with HummingbirdAuth's sessions on this store's `PersistDriver`.
    case hummingbirdStore = "hb-store"
    /// The same driver over the core's `InMemoryBackend`: what the driver itself costs (the
    /// key's SHA-256, JSON, the row's copy), without SQLite. A diagnostic, not a product.
    case hummingbirdStoreInMemory = "hb-store-inmemory"
    /// Hummingbird with this store's own middleware and sessions.
    case hummingbirdNative = "hb-native"
    /// Hummingbird with HummingbirdAuth's sessions on `MemoryPersistDriver`: the ceiling.
    case hummingbirdMemory = "hb-memory"
}

/// A failure reported by a storage engine, with the context to diagnose it.
///
/// Never carries a session id, bound values or a password: only the operation, the SQL
/// text, and the engine's code and message.
public struct StorageError: Error, Sendable, CustomStringConvertible {
    /// What kind of failure this is, so callers can react without parsing messages.
    public struct Kind: Hashable, Sendable, CustomStringConvertible {
        let name: String
        /// The database is locked or busy beyond the configured timeout.
        public static let busy = Kind(name: "busy")
        /// The database or its file cannot be written.
        public static let readOnly = Kind(name: "readOnly")
        /// The disk or database is full.
        public static let full = Kind(name: "full")
        /// The file is not a database, or the database is damaged.
        public static let corrupt = Kind(name: "corrupt")
        /// The database cannot be opened (missing directory, permissions).
        public static let cannotOpen = Kind(name: "cannotOpen")
        /// The database file was deleted, renamed or replaced while open; writes would be lost.
        public static let fileMoved = Kind(name: "fileMoved")
        /// The connection to a server failed or was lost.
        public static let connection = Kind(name: "connection")
        /// The server refused the credentials or the database does not exist.
        public static let access = Kind(name: "access")
        /// Every pooled connection stayed busy beyond the wait limit.
        public static let poolExhausted = Kind(name: "poolExhausted")
        /// The backend was closed.
        public static let closed = Kind(name: "closed")
        /// The table exists with a schema this version cannot use.
        public static let schema = Kind(name: "schema")
        /// Any other engine error.
        public static let other = Kind(name: "other")
        public var description: String { name }
    }

    /// The kind of failure.
    public var kind: Kind
    /// The engine, e.g. `"sqlite"` or `"mysql"`.
    public var engine: String
    /// The operation that failed, e.g. `"load"` or `"open"`.
    public var operation: String
    /// The engine's numeric error code, when it has one.
    public var code: Int32?
    /// The engine's message.
    public var message: String
    /// The SQL statement, without bound values.
    public var statement: String?

    public init(
        kind: Kind, engine: String, operation: String, code: Int32? = nil,
        message: String, statement: String? = nil
    ) {
        self.kind = kind
        self.engine = engine
        self.operation = operation
        self.code = code
        self.message = message
        self.statement = statement
    }

    public var description: String {
        var text = "\(engine) \(operation) failed (\(kind)"
        if let code { text += ", code \(code)" }
        text += "): \(message)"
        if let statement { text += " [\(statement)]" }
        return text
    }
}

#if Postgres
import PostgresNIO
import SessionStoreCore

/// A failure of postgres-nio or the server, classified: the `StorageError` to report and
/// what the backend may do about it. The only place SQLSTATEs and driver codes appear.
struct PostgresFailure: Sendable {
    /// What a call may do after the failure.
    enum Recovery: Sendable {
        /// Nothing: report it.
        case none
        /// The connection broke; a write sent on it may or may not have committed. The call
        /// may run again on another connection, after telling what happened (exact retries).
        case lostConnection
        /// The server rolled the statement back (serialization failure, deadlock); running
        /// it again is safe.
        case rolledBack
        /// The server did not answer within `query_timeout`; the connection was closed. A
        /// write sent may or may not have committed, and the call is not run again: it
        /// would wait as long again on a server that stopped answering.
        case timedOut
    }

    let error: StorageError
    let recovery: Recovery

    init(error: StorageError, recovery: Recovery) {
        self.error = error
        self.recovery = recovery
    }

    /// SQLSTATE classes and codes from PostgreSQL's Appendix A, "PostgreSQL Error Codes".
    private enum SQLState {
        static let serializationFailure = "40001"
        static let deadlockDetected = "40P01"
        static let lockNotAvailable = "55P03"
        static let queryCanceled = "57014" // also statement_timeout
        static let adminShutdown = "57P01"
        static let crashShutdown = "57P02"
        static let cannotConnectNow = "57P03"
        static let tooManyConnections = "53300"
        static let diskFull = "53100"
        static let invalidCatalogName = "3D000"
        static let insufficientPrivilege = "42501"
        static let readOnlyTransaction = "25006"
        static let dataCorrupted = "XX001"
        static let indexCorrupted = "XX002"
        static let undefinedTable = "42P01"
        static let undefinedColumn = "42703"
    }

    /// Classifies `error` if it comes from postgres-nio, its pool, NIO or TLS; `nil` for
    /// any other error (a `StorageError` the backend made, or what a merge's `decide`
    /// threw), which the caller passes on unchanged.
    init?(_ error: any Error, operation: String, statement: String?) {
        func make(_ kind: StorageError.Kind, _ recovery: Recovery, code: Int32? = nil, _ message: String) -> PostgresFailure {
            PostgresFailure(
                error: StorageError(kind: kind, engine: "postgres", operation: operation, code: code, message: message, statement: statement),
                recovery: recovery)
        }
        switch error {
        case let error as PSQLError:
            self = Self.classify(error, make)
        case let error as PostgresDecodingError:
            self = make(.corrupt, .none, "column \(error.columnName) could not be decoded (\(error.code))")
        case is PostgresConnectionClosed:
            self = make(.connection, .lostConnection, "the connection had closed before the statement was sent")
        case let error as PostgresQueryTimeout:
            self = make(.connection, .timedOut, "the server did not answer within query_timeout (\(error.timeout)); "
                + "the connection was closed")
        case is NIOSSLError, is BoringSSLError, is NIOSSLExtraError:
            self = make(.connection, .none, "TLS failed: \(error)")
        case is IOError, is ChannelError, is NIOConnectionError:
            self = make(.connection, .lostConnection, "network: \(error)")
        default:
            return nil
        }
    }

    private static func classify(
        _ error: PSQLError, _ make: (StorageError.Kind, Recovery, Int32?, String) -> PostgresFailure
    ) -> PostgresFailure {
        switch error.code {
        case .server:
            let state = error.serverInfo?[.sqlState] ?? "?????"
            let message = "SQLSTATE \(state): " + (error.serverInfo?[.message] ?? "no message")
            let (kind, recovery) = classify(sqlState: state)
            return make(kind, recovery, nil, message)
        case .serverClosedConnection, .uncleanShutdown, .clientClosedConnection, .messageDecodingFailure,
             .unexpectedBackendMessage:
            return make(.connection, .lostConnection, nil, "the connection to the server was lost (\(error.code))")
        case .connectionError:
            // A connection that could not be made (refused, unreachable, TLS handshake); the
            // underlying error says which.
            let detail = error.underlying.map { "\($0)" } ?? "no detail"
            let isTLS = error.underlying.map { $0 is NIOSSLError || $0 is BoringSSLError || $0 is NIOSSLExtraError } ?? false
            return make(.connection, isTLS ? .none : .lostConnection, nil, "cannot connect: \(detail)")
        case .sslUnsupported:
            return make(.connection, .none, nil, "the server does not offer TLS, and the configuration requires it")
        case .failedToAddSSLHandler, .receivedUnencryptedDataAfterSSLRequest:
            return make(.connection, .none, nil, "TLS could not be set up (\(error.code))")
        case .unsupportedAuthMechanism, .authMechanismRequiresPassword, .saslError:
            return make(.access, .none, nil, "authentication failed (\(error.code))")
        case .poolClosed:
            return make(.closed, .none, nil, "the PostgreSQL connection pool was closed")
        default:
            return make(.other, .none, nil, "postgres-nio: \(error.code)")
        }
    }

    /// The kind and recovery of a server error by its SQLSTATE.
    static func classify(sqlState state: String) -> (StorageError.Kind, Recovery) {
        switch state {
        case SQLState.serializationFailure, SQLState.deadlockDetected:
            return (.busy, .rolledBack)
        case SQLState.lockNotAvailable, SQLState.queryCanceled:
            return (.busy, .none)
        case SQLState.adminShutdown, SQLState.crashShutdown, SQLState.cannotConnectNow:
            return (.connection, .lostConnection)
        case SQLState.tooManyConnections:
            return (.connection, .none)
        case SQLState.diskFull:
            return (.full, .none)
        case SQLState.invalidCatalogName, SQLState.insufficientPrivilege:
            return (.access, .none)
        case SQLState.readOnlyTransaction:
            return (.readOnly, .none)
        case SQLState.dataCorrupted, SQLState.indexCorrupted:
            return (.corrupt, .none)
        case SQLState.undefinedTable, SQLState.undefinedColumn:
            return (.schema, .none)
        default:
            if state.hasPrefix("08") { return (.connection, .lostConnection) } // connection exception
            if state.hasPrefix("28") { return (.access, .none) } // invalid authorization
            return (.other, .none)
        }
    }
}
#endif

#if Postgres
extension PostgresStatementError {
    /// Whether the server rolled the transaction back (SQLSTATE class 40: a serialization
    /// failure or a deadlock): a failure of the statement's execution, not of its preparation.
    var isTransactionRollback: Bool {
        guard let error = underlying as? PSQLError, error.code == .server else { return false }
        return error.serverInfo?[.sqlState]?.hasPrefix("40") ?? false
    }
}
#endif

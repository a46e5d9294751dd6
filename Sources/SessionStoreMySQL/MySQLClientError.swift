import CSessionStoreMariaDB
import SessionStoreCore

/// The MySQL and Connector/C error numbers the backend reacts to, by the names of
/// `mysqld_error.h` (server, `ER_`) and `errmsg.h` (client, `CR_`); the only place they appear.
enum MySQLErrorCode {
    // Client: the connection is unusable.
    static let serverGone = UInt32(CR_SERVER_GONE_ERROR)
    static let serverLost = UInt32(CR_SERVER_LOST)
    static let serverLostExtended = UInt32(CR_SERVER_LOST_EXTENDED)
    static let commandsOutOfSync = UInt32(CR_COMMANDS_OUT_OF_SYNC)
    static let malformedPacket = UInt32(CR_MALFORMED_PACKET)
    static let netRead = UInt32(CR_ERR_NET_READ)
    static let netWrite = UInt32(CR_ERR_NET_WRITE)
    // Client: no connection could be made.
    static let connectionError = UInt32(CR_CONNECTION_ERROR)
    static let hostError = UInt32(CR_CONN_HOST_ERROR)
    static let socketError = UInt32(CR_IPSOCK_ERROR)
    static let unknownHost = UInt32(CR_UNKNOWN_HOST)
    static let handshake = UInt32(CR_SERVER_HANDSHAKE_ERR)
    static let tls = UInt32(CR_SSL_CONNECTION_ERROR)
    static let outOfMemory = UInt32(CR_OUT_OF_MEMORY)
    /// A failure the client reported without a number.
    static let unknownError = UInt32(CR_UNKNOWN_ERROR)
    // Client: the statement handle was invalidated.
    static let statementClosed = UInt32(CR_STMT_CLOSED)
    // Server: the connection ends.
    static let serverShutdown = UInt32(ER_SERVER_SHUTDOWN)
    static let connectionKilled = UInt32(ER_CONNECTION_KILLED)
    /// MySQL 8's `ER_CLIENT_INTERACTION_TIMEOUT` (idle connection closed); MariaDB's header
    /// has another error under this number, which never reaches a client mid-call.
    static let clientInteractionTimeout: UInt32 = 4031
    // Server: the statement was rolled back and may run again.
    static let lockWaitTimeout = UInt32(ER_LOCK_WAIT_TIMEOUT)
    static let deadlock = UInt32(ER_LOCK_DEADLOCK)
    // Server: a prepared statement must be prepared again.
    static let unknownStatement = UInt32(ER_UNKNOWN_STMT_HANDLER)
    static let needReprepare = UInt32(ER_NEED_REPREPARE)
    // Server: outcomes mapped to a kind.
    static let duplicateEntry = UInt32(ER_DUP_ENTRY)
    static let databaseAccessDenied = UInt32(ER_DBACCESS_DENIED_ERROR)
    static let accessDenied = UInt32(ER_ACCESS_DENIED_ERROR)
    static let accessDeniedNoPassword = UInt32(ER_ACCESS_DENIED_NO_PASSWORD_ERROR)
    static let badDatabase = UInt32(ER_BAD_DB_ERROR)
    static let specificAccessDenied = UInt32(ER_SPECIFIC_ACCESS_DENIED_ERROR)
    static let tableAccessDenied = UInt32(ER_TABLEACCESS_DENIED_ERROR)
    static let noSuchTable = UInt32(ER_NO_SUCH_TABLE)
    static let badField = UInt32(ER_BAD_FIELD_ERROR)
    static let recordFileFull = UInt32(ER_RECORD_FILE_FULL)
    static let diskFull = UInt32(ER_DISK_FULL)
    static let optionPreventsStatement = UInt32(ER_OPTION_PREVENTS_STATEMENT)
    static let readOnlyTransaction = UInt32(ER_CANT_EXECUTE_IN_READ_ONLY_TRANSACTION)
    static let readOnlyMode = UInt32(ER_READ_ONLY_MODE)
    /// Galera: the node is not part of a primary component (no quorum).
    static let unknownCommand = UInt32(ER_UNKNOWN_COM_ERROR)
    /// Galera: a write could not be replicated (e.g. the node left the primary component).
    static let errorDuringCommit = UInt32(ER_ERROR_DURING_COMMIT)
    /// A session variable the server does not have (e.g. `wsrep_sync_wait` outside Galera).
    static let unknownSystemVariable = UInt32(ER_UNKNOWN_SYSTEM_VARIABLE)

    static let connectionLost: Set<UInt32> = [
        serverGone, serverLost, serverLostExtended, commandsOutOfSync, malformedPacket, netRead, netWrite,
        serverShutdown, connectionKilled, clientInteractionTimeout,
    ]
    static let connectFailure: Set<UInt32> = [connectionError, hostError, socketError, unknownHost, handshake, tls]
    static let access: Set<UInt32> = [
        databaseAccessDenied, accessDenied, accessDeniedNoPassword, badDatabase, specificAccessDenied, tableAccessDenied,
    ]
}

/// A failure reported by Connector/C, before it is given an operation name.
struct MySQLClientError: Error, Sendable {
    /// `mysql_errno` / `mysql_stmt_errno`.
    var code: UInt32
    /// `mysql_error` / `mysql_stmt_error`: never holds bound values.
    var message: String
    /// The SQL text, without values.
    var statement: String?
    /// The kind to report, when the code alone does not tell (e.g. a TLS option refused).
    var kind: StorageError.Kind?

    /// The connection is unusable: the server went away, the socket broke, or the client
    /// got out of sync. The connection must be discarded.
    var isConnectionLost: Bool { MySQLErrorCode.connectionLost.contains(code) }

    /// A connection could not be made at all.
    var isConnectFailure: Bool { MySQLErrorCode.connectFailure.contains(code) }

    /// A lock wait timeout or deadlock: the statement (a deadlock: the transaction) was rolled
    /// back and may be retried.
    var isLockConflict: Bool { code == MySQLErrorCode.lockWaitTimeout || code == MySQLErrorCode.deadlock }

    /// The server forgot or invalidated a prepared statement; prepare it again.
    var needsReprepare: Bool {
        [MySQLErrorCode.unknownStatement, MySQLErrorCode.needReprepare, MySQLErrorCode.statementClosed].contains(code)
    }

    /// The typed error callers see.
    func storageError(operation: String) -> StorageError {
        let kind: StorageError.Kind
        if let explicit = self.kind {
            kind = explicit
        } else if isConnectionLost || isConnectFailure || code == MySQLErrorCode.unknownCommand {
            kind = .connection
        } else if MySQLErrorCode.access.contains(code) {
            kind = .access
        } else if isLockConflict {
            kind = .busy
        } else if code == MySQLErrorCode.noSuchTable || code == MySQLErrorCode.badField {
            kind = .schema
        } else if code == MySQLErrorCode.recordFileFull || code == MySQLErrorCode.diskFull {
            kind = .full
        } else if [MySQLErrorCode.optionPreventsStatement, MySQLErrorCode.readOnlyTransaction, MySQLErrorCode.readOnlyMode]
            .contains(code)
        {
            kind = .readOnly
        } else {
            kind = .other
        }
        return StorageError(
            kind: kind, engine: "mysql", operation: operation, code: Int32(clamping: code),
            message: message, statement: statement
        )
    }

    /// The last error of a connection handle.
    static func from(_ handle: UnsafeMutablePointer<MYSQL>, statement: String?) -> MySQLClientError {
        MySQLClientError(
            code: mysql_errno(handle), message: String(cString: mysql_error(handle)), statement: statement
        )
    }

    /// The last error of a statement handle, or of its connection when the statement has
    /// none: Connector/C leaves a server error met while reading rows (a deadlock, a
    /// Galera certification conflict, a lost connection) on the connection only, and a
    /// code 0 would hide what the backend must retry.
    static func from(statement handle: UnsafeMutablePointer<MYSQL_STMT>, sql: String) -> MySQLClientError {
        let code = mysql_stmt_errno(handle)
        if code == 0, let connection = handle.pointee.mysql, mysql_errno(connection) != 0 {
            return from(connection, statement: sql)
        }
        guard code != 0 else {
            return MySQLClientError(
                code: MySQLErrorCode.unknownError,
                message: "Connector/C reported a failure without an error number", statement: sql)
        }
        return MySQLClientError(code: code, message: String(cString: mysql_stmt_error(handle)), statement: sql)
    }
}

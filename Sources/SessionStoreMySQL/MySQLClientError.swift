import CSessionStoreMariaDB
import SessionStore

/// A failure reported by Connector/C, before it is given an operation name.
struct MySQLClientError: Error, Sendable {
    /// `mysql_errno` / `mysql_stmt_errno`.
    var code: UInt32
    /// `mysql_error` / `mysql_stmt_error`: never holds bound values.
    var message: String
    /// The SQL text, without values.
    var statement: String?

    /// The connection is unusable: the server went away, the socket broke, or the client
    /// got out of sync. The connection must be discarded.
    var isConnectionLost: Bool {
        switch code {
        case 2006, 2013, 2055, // server gone, lost, lost (extended)
             2014, 2027, // commands out of sync, malformed packet
             1053, 1927, 4031, // server shutdown, connection killed, MySQL 8 idle timeout
             5013, 5014: // Connector/C network read/write errors
            return true
        default:
            return false
        }
    }

    /// A connection could not be made at all.
    var isConnectFailure: Bool {
        [2002, 2003, 2004, 2005, 2012, 2026].contains(code)
    }

    /// A lock wait timeout or deadlock: the statement was rolled back and may be retried.
    var isLockConflict: Bool { code == 1205 || code == 1213 }

    /// The server forgot or invalidated a prepared statement; prepare it again.
    var needsReprepare: Bool { code == 1243 || code == 1615 || code == 2056 }

    /// The typed error callers see.
    func storageError(operation: String) -> StorageError {
        let kind: StorageError.Kind
        if isConnectionLost || isConnectFailure {
            kind = .connection
        } else if [1044, 1045, 1049, 1698, 1227, 1142].contains(code) {
            kind = .access
        } else if isLockConflict {
            kind = .busy
        } else if code == 1146 || code == 1054 {
            kind = .schema
        } else if code == 1114 || code == 1021 {
            kind = .full
        } else if code == 1290 || code == 1792 || code == 1836 {
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

    /// The last error of a statement handle.
    static func from(statement handle: UnsafeMutablePointer<MYSQL_STMT>, sql: String) -> MySQLClientError {
        MySQLClientError(
            code: mysql_stmt_errno(handle), message: String(cString: mysql_stmt_error(handle)), statement: sql
        )
    }
}

import CSessionStoreMariaDB

/// One execution of a prepared query through Connector/C's non-blocking API: started on the
/// caller's thread, finished on its slot's (``MySQLWorker``).
///
/// `mysql_stmt_execute_start` writes the request and returns as soon as the reply is not
/// there yet (the socket is non-blocking; the client runs the call on a stack of its own and
/// suspends it where it would wait), so starting it on a thread of Swift's cooperative pool
/// never blocks that thread. The slot's thread continues it with `mysql_stmt_execute_cont` when the
/// socket is readable, stores the rows with `mysql_stmt_store_result_start`/`_cont`, then
/// reads them from memory.
final class MySQLPendingQuery: @unchecked Sendable { // one thread at a time: the caller until `MySQLWorker.wait`, then the slot's thread
    enum Phase {
        case execute
        case store
    }

    typealias Rows = [[MySQLResultValue]]

    let connection: MySQLConnection
    let statement: MySQLStatement
    /// The connection's socket, watched by the slot's thread.
    let socket: Int32
    private let columns: [MySQLColumnKind]
    private let binds: MySQLParameterBinds
    private var phase = Phase.execute
    private var continuation: CheckedContinuation<Result<Rows, MySQLClientError>, Never>?
    /// When the slot's thread gives up waiting (Connector/C's read or write timeout), if it asked for one.
    var deadline: ContinuousClock.Instant?
    private var outcome: Result<Rows, MySQLClientError>?

    init(
        _ connection: MySQLConnection, _ statement: MySQLStatement, _ parameters: [MySQLValue],
        columns: [MySQLColumnKind], socket: Int32,
        continuation: CheckedContinuation<Result<Rows, MySQLClientError>, Never>
    ) {
        self.connection = connection
        self.statement = statement
        self.socket = socket
        self.columns = columns
        self.binds = MySQLParameterBinds(parameters)
        self.continuation = continuation
    }

    /// Binds the parameters and sends the request without waiting for the reply; returns
    /// the `MYSQL_WAIT_*` events to wait for, or 0 once finished.
    func start() -> Int32 {
        do {
            try statement.bind(binds)
        } catch {
            outcome = .failure(error)
            return 0
        }
        var status: Int32 = 0
        let wait = mysql_stmt_execute_start(&status, statement.handle)
        return wait == 0 ? executed(status) : wait
    }

    /// Continues after `events` (`MYSQL_WAIT_*`, `MYSQL_WAIT_TIMEOUT` once the deadline
    /// passed); returns the events to wait for next, or 0 once finished.
    func resume(_ events: Int32) -> Int32 {
        var status: Int32 = 0
        switch phase {
        case .execute:
            let wait = mysql_stmt_execute_cont(&status, statement.handle, events)
            return wait == 0 ? executed(status) : wait
        case .store:
            let wait = mysql_stmt_store_result_cont(&status, statement.handle, events)
            return wait == 0 ? stored(status) : wait
        }
    }

    /// Fails the query without another client call: the connection is left mid-reply, so it
    /// is marked broken and its pool discards it.
    func abandon(_ error: MySQLClientError) {
        connection.broken = true
        outcome = .failure(error)
    }

    /// Resumes the caller with the outcome; called once, after `start` or `resume` returned 0
    /// or after `abandon`.
    func finish() {
        let outcome = outcome ?? .failure(MySQLClientError(
            code: MySQLErrorCode.commandsOutOfSync, message: "the query ended without a result", statement: statement.sql))
        let continuation = continuation
        self.continuation = nil
        continuation?.resume(returning: outcome)
    }

    private func executed(_ status: Int32) -> Int32 {
        guard status == 0 else {
            outcome = .failure(.from(statement: statement.handle, sql: statement.sql))
            return 0
        }
        phase = .store
        var stored: Int32 = 0
        let wait = mysql_stmt_store_result_start(&stored, statement.handle)
        return wait == 0 ? self.stored(stored) : wait
    }

    private func stored(_ status: Int32) -> Int32 {
        guard status == 0 else {
            // Rows may be left unread on the socket: the connection cannot serve again.
            connection.broken = true
            outcome = .failure(.from(statement: statement.handle, sql: statement.sql))
            return 0
        }
        do {
            // The rows are in memory: fetching them does not touch the socket.
            outcome = .success(try statement.readRows(columns))
        } catch {
            outcome = .failure(error)
        }
        return 0
    }
}

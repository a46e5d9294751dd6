#if Vapor
import SessionStore
public import Vapor

/// A session failure as Vapor's error middleware answers it: the HTTP status a client
/// should see, a reason that reveals nothing internal, and the store's error for the log.
///
/// - 503 Service Unavailable: the database failed or the store is shut down.
/// - 413 Content Too Large: the session grew over the store's size limit.
/// - 400 Bad Request: an attribute name from the request is empty or too long.
/// - 409 Conflict: the session was destroyed or renewed by another request while this one
///   changed it; nothing was written (instead of a silent success).
/// - 500 Internal Server Error: anything else (for example a corrupt stored session).
///
/// Vapor's error middleware logs it once, with the store's error as its cause: at `error`
/// level for a 5xx answer, so an operator sees why storage failed at the default log level,
/// and at Vapor's usual `warning` for a 4xx. The store's errors leave ids and payloads out
/// of their descriptions.
public struct SessionStoreAbort: AbortError, DebuggableError, CustomStringConvertible {
    /// The status sent to the client.
    public let status: HTTPResponseStatus
    /// A short reason for the client; never the session id or data.
    public let reason: String
    /// The store's error, for logs; `nil` for ``sessionEnded``.
    public let underlying: (any Error)?

    /// Maps a store or storage error to its status.
    init(_ error: any Error) {
        switch error {
        case let error as SessionStoreAbort:
            self = error
            return
        case let error as SessionStoreError:
            switch error.code {
            case .closed: (status, reason) = (.serviceUnavailable, "Session storage is shut down.")
            case .dataTooLarge: (status, reason) = (.payloadTooLarge, "The session is too large.")
            case .invalidAttributeName: (status, reason) = (.badRequest, "Invalid session attribute name.")
            default: (status, reason) = (.internalServerError, "Session storage failed.")
            }
            underlying = error
        case let error as StorageError:
            (status, reason) = (.serviceUnavailable, "Session storage is unavailable.")
            underlying = error
        default:
            (status, reason) = (.internalServerError, "Session storage failed.")
            underlying = error
        }
    }

    private init(status: HTTPResponseStatus, reason: String) {
        self.status = status
        self.reason = reason
        self.underlying = nil
    }

    /// The session ended (logout or id renewal in another request) while this request
    /// changed it; its changes were not written.
    public static let sessionEnded = SessionStoreAbort(
        status: .conflict, reason: "The session ended while this request changed it; the change was not saved.")

    public var description: String {
        "session store: \(status.code) \(reason)" + (underlying.map { " caused by: \($0)" } ?? "")
    }

    /// The status code, as `SessionStoreAbort.503` in Vapor's log line.
    public var identifier: String { "\(status.code)" }

    /// The store's error, which Vapor's log line shows after the reason (never sent to the
    /// client).
    public var possibleCauses: [String] { underlying.map { ["\($0)"] } ?? [] }

    /// `error` for a 5xx answer (a failure on the server's side), `warning` otherwise.
    public var logLevel: Logger.Level { status.code >= 500 ? .error : .warning }
}

#endif

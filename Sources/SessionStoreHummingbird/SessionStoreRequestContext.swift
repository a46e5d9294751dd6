#if Hummingbird
public import Hummingbird

/// A request context that carries this store's session, for ``SessionStoreMiddleware``.
///
/// Add `let session = RequestSession()` to your own context, or use
/// ``BasicSessionStoreRequestContext``.
public protocol SessionStoreRequestContext: RequestContext {
    /// The request's session; the middleware loads it before the handler runs.
    var session: RequestSession { get }
}

/// The smallest context with a session: Hummingbird's basic context plus ``RequestSession``.
public struct BasicSessionStoreRequestContext: SessionStoreRequestContext {
    /// Hummingbird's per-request storage.
    public var coreContext: CoreRequestContextStorage
    /// The request's session.
    public let session: RequestSession

    /// A context for a new request.
    public init(source: ApplicationRequestContextSource) {
        self.coreContext = .init(source: source)
        self.session = RequestSession()
    }
}
#endif

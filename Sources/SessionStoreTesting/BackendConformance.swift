public import SessionStore

/// An isolated database for one conformance check: each call of ``open`` opens another
/// backend instance (another connection pool) on the same data, so checks can model
/// several app processes sharing one database.
public struct TestDatabase: Sendable {
    /// Opens a backend on this database.
    public let open: @Sendable () async throws -> any StorageBackend

    /// A database whose backends `open` creates.
    public init(open: @escaping @Sendable () async throws -> any StorageBackend) {
        self.open = open
    }
}

/// A failed expectation inside a conformance check.
public struct ConformanceFailure: Error, CustomStringConvertible {
    /// What was expected.
    public let message: String
    /// Where, in the suite.
    public let location: String
    public var description: String { "\(message) (\(location))" }
}

/// One behaviour every backend must show, run through a real `SessionStore`.
public struct ConformanceCheck: Sendable, CustomStringConvertible {
    /// The behaviour, as a sentence.
    public let name: String
    let body: @Sendable (TestDatabase) async throws -> Void

    public var description: String { name }

    /// Runs the check on a new, empty database.
    public func run(on database: TestDatabase) async throws {
        try await body(database)
    }
}

/// The backend conformance suite: the same specification for the in-memory, SQLite and
/// MySQL backends, and for third-party ones.
///
/// ```swift
/// @Test(arguments: BackendConformance.checks)
/// func conformance(_ check: ConformanceCheck) async throws {
///     try await check.run(on: TestDatabase { try MyBackend(...) })
/// }
/// ```
public enum BackendConformance {
    /// Every check, in the order of the specification.
    public static var checks: [ConformanceCheck] {
        IdentityChecks.all + DirtyTrackingChecks.all + ExpiryChecks.all + CleanupChecks.all
            + ConcurrencyChecks.all + LifecycleChecks.all + DataChecks.all + ContractChecks.all + RaceChecks.all
            + OwnerChecks.all
            + EncryptionChecks.all
    }
}

func check(_ name: String, _ body: @escaping @Sendable (TestDatabase) async throws -> Void) -> ConformanceCheck {
    ConformanceCheck(name: name, body: body)
}

func expect(
    _ condition: @autoclosure () async throws -> Bool, _ message: @autoclosure () -> String,
    file: StaticString = #fileID, line: UInt = #line
) async throws {
    guard try await condition() else {
        throw ConformanceFailure(message: message(), location: "\(file):\(line)")
    }
}

func expectThrows<T>(
    _ message: String, file: StaticString = #fileID, line: UInt = #line,
    _ body: () async throws -> T, where matches: (any Error) -> Bool
) async throws {
    do {
        _ = try await body()
    } catch {
        try await expect(matches(error), "\(message): unexpected error \(error)", file: file, line: line)
        return
    }
    throw ConformanceFailure(message: "\(message): no error was thrown", location: "\(file):\(line)")
}

/// A store on a counting backend with a manual clock: what most checks start from.
struct Fixture: Sendable {
    let store: SessionStore
    let backend: CountingBackend
    let clock: ManualClock

    init(_ database: TestDatabase, clock: ManualClock = ManualClock(), configure: (inout SessionStoreConfiguration) -> Void = { _ in }) async throws {
        var configuration = SessionStoreConfiguration()
        configuration.idleTimeout = .seconds(1800)
        configuration.touchInterval = .seconds(60)
        configuration.regenerationGracePeriod = .zero
        // One manual clock for every store here: no skew between hosts to allow for.
        configuration.clockSkewAllowance = .zero
        configure(&configuration)
        self.clock = clock
        backend = CountingBackend(try await database.open())
        store = try SessionStore(backend: backend, configuration: configuration, clock: clock)
    }

    /// Creates and saves a session with the given attributes.
    func stored(_ attributes: [String: String] = ["user": "alice"]) async throws -> Session {
        var session = store.newSession()
        for (key, value) in attributes { try session.set(key, value) }
        let outcome = try await store.save(&session)
        try await expect(outcome == .created, "a new session with data is created, got \(outcome)")
        return session
    }

    func close() async throws {
        try await store.shutdown()
    }
}

/// Runs `body` with a fixture and always shuts the store down.
func withFixture(
    _ database: TestDatabase, clock: ManualClock = ManualClock(),
    configure: (inout SessionStoreConfiguration) -> Void = { _ in },
    _ body: (Fixture) async throws -> Void
) async throws {
    let fixture = try await Fixture(database, clock: clock, configure: configure)
    do {
        try await body(fixture)
    } catch {
        try await fixture.close()
        throw error
    }
    try await fixture.close()
}

import Logging
import SessionStore
import SessionStoreTestSupport
import SessionStoreTesting
import Synchronization
import Testing

/// Hostile configuration: typos, bad values, injected table names, and passwords that
/// must never reach an error or a log line.
@Suite("Hostile configuration")
struct HostileConfigurationTests {
    static let memory = StorageBackendFactory(schemes: ["mem"]) { url in
        if let table = url.take("table") { _ = try SQLIdentifier.validated(table) }
        _ = try url.takeInt("pool", in: 1...64)
    } open: { _, _ in
        InMemoryBackend()
    }

    /// The error `open` throws for `url`, logging to `log`.
    static func openError(_ url: String, log: CapturedLog = CapturedLog()) async -> SessionStoreError? {
        do {
            let store = try await SessionStore.open(url, backends: [memory], logger: log.logger)
            try await store.shutdown()
        } catch let error as SessionStoreError {
            return error
        } catch {
            Issue.record("unexpected error type: \(error)")
        }
        return nil
    }

    @Test("an invalid configuration given in code is a thrown invalidConfiguration, not a trap", arguments: [
        { (configuration: inout SessionStoreConfiguration) in configuration.idleTimeout = .zero },
        { configuration in configuration.absoluteLifetime = .seconds(-1) },
        { configuration in configuration.touchInterval = .seconds(-1) },
        { configuration in configuration.touchInterval = .seconds(3600); configuration.idleTimeout = .seconds(60) },
    ] as [@Sendable (inout SessionStoreConfiguration) -> Void])
    func invalidConfigurationInCodeThrows(_ change: @Sendable (inout SessionStoreConfiguration) -> Void) throws {
        var configuration = SessionStoreConfiguration()
        change(&configuration)
        let error = #expect(throws: SessionStoreError.self) {
            _ = try SessionStore(backend: InMemoryBackend(), configuration: configuration)
        }
        #expect(error?.code == .invalidConfiguration)
    }

    @Test("unknown options, bad numbers and non-identifier tables are configuration errors naming no password", arguments: [
        "mem://app:hunter2secret@db/app?no_such_option=1",
        "mem://app:hunter2secret@db/app?idle_timeout=soon",
        "mem://app:hunter2secret@db/app?idle_timeout=-5s",
        "mem://app:hunter2secret@db/app?max_size=99999999999999999999",
        "mem://app:hunter2secret@db/app?conflict_retries=1e3",
        "mem://app:hunter2secret@db/app?pool=0",
        "mem://app:hunter2secret@db/app?touch_interval=40m",
        "mem://app:hunter2secret@db/app?table=sessions;DROP%20TABLE%20users",
        "mem://app:hunter2secret@db/app?table=s%00",
        "mem://app:hunter2secret@db:99999/app",
        "mem://app:hunter2secret@db/app?idle_timeout=1&idle_timeout=2",
        "mem://app:hunter2%ZZsecret@db/app",
        "mem://app:hunter2secret@db/app?fallback=nope%3A%2F%2Fu%3Ahunter2secret%40h%2Fdb",
    ])
    func badConfigurationIsATypedErrorWithoutThePassword(_ url: String) async {
        let log = CapturedLog()
        let error = await Self.openError(url, log: log)
        #expect(error?.code == .invalidConfiguration)
        #expect(error.map { !"\($0)".contains("hunter2") } == true, "error shows the password: \(String(describing: error))")
        #expect(!log.text.contains("hunter2"), "a log line shows the password")
    }

    @Test("a store opened with passwords in its URL and its fallback URL never logs them")
    func openingLogsNoPassword() async throws {
        let log = CapturedLog()
        let store = try await SessionStore.open(
            "mem://app:hunter2secret@db/app?pool=4&fallback=mem%3A%2F%2Flegacy%3Ahunter3secret%40old%2Fapp",
            backends: [Self.memory], logger: log.logger)
        var session = store.newSession()
        try session.set("user", "alice")
        try await store.save(&session)
        try await store.shutdown()
        #expect(!log.text.isEmpty, "the store logged its opening")
        #expect(!log.text.contains("hunter2"), "the main URL's password was logged:\n\(log.text)")
        #expect(!log.text.contains("hunter3"), "the fallback URL's password was logged:\n\(log.text)")
    }

    @Test("a nested URL's password in an option value is redacted in the description")
    func nestedPasswordIsRedacted() throws {
        let url = try StoreURL("sqlite:///tmp/s.db?fallback=mysql%3A%2F%2Fu%3Ahunter2%40h%2Fdb")
        #expect(!url.description.contains("hunter2"))
        #expect(url.description.contains("mysql://u:***@h/db"))
    }
}

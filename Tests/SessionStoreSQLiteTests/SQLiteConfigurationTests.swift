import Logging
import SessionStoreCore
import SessionStoreSQLite
import Testing

@Suite("SQLiteConfiguration from URLs")
struct SQLiteConfigurationTests {
    private func configuration(_ text: String) throws -> (SQLiteConfiguration, StoreURL) {
        var url = try StoreURL(text)
        let configuration = try SQLiteConfiguration(url: &url)
        return (configuration, url)
    }

    @Test func absolutePath() throws {
        let (configuration, url) = try configuration("sqlite:///var/lib/app/sessions.db")
        #expect(configuration.path == "/var/lib/app/sessions.db")
        try url.checkAllTaken()
    }

    @Test func relativePath() throws {
        let (configuration, _) = try configuration("sqlite://data/sessions.db")
        #expect(configuration.path == "data/sessions.db")
    }

    @Test func memory() throws {
        let (configuration, _) = try configuration("sqlite::memory:")
        #expect(configuration.path == ":memory:")
    }

    @Test func defaults() throws {
        let (configuration, _) = try configuration("sqlite:///x.db")
        #expect(configuration.table == "sessions")
        #expect(configuration.keyLayout == .idOnly)
        #expect(configuration.synchronous == .normal)
        #expect(configuration.busyTimeout == .seconds(5))
        #expect(configuration.mmapSize == 0)
        #expect(configuration.readerCount == 4)
        #expect(configuration.groupCommit)
        #expect(configuration.maxBatchSize == 256)
    }

    @Test func allOptions() throws {
        let (configuration, url) = try configuration(
            "sqlite:///x.db?table=web_sessions&key=crc32&synchronous=full&busy_timeout=250ms"
                + "&mmap_size=1073741824&readers=8&group_commit=false&batch=32")
        #expect(configuration.table == "web_sessions")
        #expect(configuration.keyLayout == .checksumAndID)
        #expect(configuration.synchronous == .full)
        #expect(configuration.busyTimeout == .milliseconds(250))
        #expect(configuration.mmapSize == 1 << 30)
        #expect(configuration.readerCount == 8)
        #expect(!configuration.groupCommit)
        #expect(configuration.maxBatchSize == 32)
        try url.checkAllTaken()
    }

    @Test func unknownOptionIsLeftForTheCaller() throws {
        let (_, url) = try configuration("sqlite:///x.db?idle_timeout=20m&readers=2")
        #expect(throws: SessionStoreError.self) { try url.checkAllTaken() }
    }

    @Test(arguments: [
        "sqlite:///x.db?key=uuid",
        "sqlite:///x.db?synchronous=extra",
        "sqlite:///x.db?readers=0",
        "sqlite:///x.db?readers=65",
        "sqlite:///x.db?batch=0",
        "sqlite:///x.db?batch=10001",
        "sqlite:///x.db?mmap_size=-1",
        "sqlite:///x.db?group_commit=maybe",
        "sqlite:///x.db?busy_timeout=soon",
        "sqlite:///x.db?table=1sessions",
        "sqlite:///x.db?table=sessions;drop",
        "sqlite:",
        "mysql://host/db",
    ])
    func badValuesAreRejected(_ text: String) throws {
        var url = try StoreURL(text)
        let error = #expect(throws: SessionStoreError.self) { try SQLiteConfiguration(url: &url) }
        #expect(error?.code == .invalidConfiguration)
    }

    @Test func factoryOpensFromURL() async throws {
        var url = try StoreURL("sqlite::memory:?readers=1")
        let factory: StorageBackendFactory = .sqlite
        let backend = try await factory.makeBackend(&url, logger: Logger(label: "test"))
        try url.checkAllTaken()
        let loaded = try await backend.load(SessionKey(value: "missing"), now: 0)
        #expect(loaded == nil)
        try await backend.close()
        #expect(factory.schemes == ["sqlite"])
    }
}

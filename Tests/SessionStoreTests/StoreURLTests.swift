import SessionStoreCore
import Testing

@Suite("Configuration URLs")
struct StoreURLTests {
    @Test("an absolute SQLite path")
    func sqliteAbsolute() throws {
        let url = try StoreURL("sqlite:///var/lib/app/sessions.db?table=s")
        #expect(url.scheme == "sqlite")
        #expect(url.path == "/var/lib/app/sessions.db")
        #expect(url.host == nil)
    }

    @Test("a relative SQLite path")
    func sqliteRelative() throws {
        let url = try StoreURL("sqlite://data/sessions.db")
        #expect(url.path == "data/sessions.db")
    }

    @Test("an in-memory SQLite database")
    func sqliteMemory() throws {
        let url = try StoreURL("sqlite::memory:")
        #expect(url.path == ":memory:")
    }

    @Test("a MySQL URL with credentials, port and options")
    func mysql() throws {
        var url = try StoreURL("mysql://app:s%40cret@db.example:3307/prod?table=sessions&pool=8")
        #expect(url.user == "app")
        #expect(url.password == "s@cret")
        #expect(url.host == "db.example")
        #expect(url.port == 3307)
        #expect(url.path == "prod")
        #expect(url.take("table") == "sessions")
        #expect(try url.takeInt("pool", in: 1...100) == 8)
        try url.checkAllTaken()
    }

    @Test("the password never appears in the description or in errors")
    func passwordHidden() throws {
        let url = try StoreURL("mysql://app:hunter2@db/prod?bogus=1")
        #expect(!url.description.contains("hunter2"))
        #expect(url.description.contains("***"))
        do {
            try url.checkAllTaken()
            Issue.record("an unknown option must be an error")
        } catch {
            #expect(!"\(error)".contains("hunter2"))
            #expect("\(error)".contains("bogus"))
        }
    }

    @Test("unknown options are an error, not ignored")
    func unknownOption() throws {
        var url = try StoreURL("sqlite:///tmp/x.db?idle_timeout=30m&tabel=s")
        _ = try SessionStoreConfiguration(url: &url)
        #expect(throws: SessionStoreError.self) { try url.checkAllTaken() }
    }

    @Test("durations take units", arguments: [
        ("500ms", Duration.milliseconds(500)), ("30", .seconds(30)), ("30s", .seconds(30)),
        ("20m", .seconds(1200)), ("12h", .seconds(43200)), ("7d", .seconds(604_800)),
    ])
    func durations(text: String, expected: Duration) throws {
        var url = try StoreURL("sqlite::memory:?t=\(text)")
        #expect(try url.takeDuration("t") == expected)
    }

    @Test("bad values are typed configuration errors", arguments: [
        "sqlite::memory:?idle_timeout=soon", "sqlite::memory:?max_size=-1", "sqlite::memory:?on_corrupt=maybe",
        "sqlite::memory:?idle_timeout=1m&touch_interval=5m", "sqlite::memory:?cleanup_batch=0",
        "mysql://h:99999/db", "no-scheme", "sqlite::memory:?a=1&a=2", "mysql://u:%zz@h/db",
    ])
    func badValues(text: String) {
        #expect {
            var url = try StoreURL(text)
            _ = try SessionStoreConfiguration(url: &url)
        } throws: { error in
            (error as? SessionStoreError)?.code == .invalidConfiguration
        }
    }

    @Test("core options configure the policy")
    func coreOptions() throws {
        var url = try StoreURL("sqlite::memory:?idle_timeout=10m&absolute_lifetime=12h&touch_interval=30s&max_size=4096&on_corrupt=new&regenerate_grace=0")
        let configuration = try SessionStoreConfiguration(url: &url)
        #expect(configuration.idleTimeout == .seconds(600))
        #expect(configuration.absoluteLifetime == .seconds(43200))
        #expect(configuration.touchInterval == .seconds(30))
        #expect(configuration.maxDataSize == 4096)
        #expect(configuration.corruptDataPolicy == .startNewSession)
        #expect(configuration.regenerationGracePeriod == .zero)
        try url.checkAllTaken()
    }

    @Test("table names must be identifiers", arguments: ["sessions", "_s1", "S_2"])
    func validTable(name: String) throws {
        #expect(try SQLIdentifier.validated(name) == name)
    }

    @Test("non-identifier table names are refused", arguments: ["", "1s", "s-1", "s;drop", "s s", "sé", String(repeating: "a", count: 65)])
    func invalidTable(name: String) {
        #expect(throws: SessionStoreError.self) { try SQLIdentifier.validated(name) }
    }

    @Test("opening a URL whose scheme no linked backend handles is a clear error")
    func unknownScheme() async {
        await #expect {
            _ = try await SessionStore.open("postgres://h/db", backends: [])
        } throws: { error in
            (error as? SessionStoreError)?.code == .invalidConfiguration && "\(error)".contains("postgres")
        }
    }
}

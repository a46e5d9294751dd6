#if Hummingbird
import Foundation
import Hummingbird
import HummingbirdTesting
import ServiceLifecycle
import ServiceLifecycleTestKit
import SessionStoreCore
import SessionStoreDriverTestSupport
@testable import SessionStoreHummingbird
import SessionStoreSQLite
import SessionStoreTesting
import Synchronization
import Testing

/// Hummingbird's `PersistDriver` behaviours, through HTTP routes like Hummingbird's own
/// persist tests, on this package's backends (time from a manual clock, never slept on).
@Suite("SessionStorePersistDriver")
struct PersistDriverTests {
    struct TestCodable: Codable, Equatable {
        let buffer: String
    }

    /// Routes that store, read and remove request bodies under `/persist/{tag}`.
    static func application(_ persist: SessionStorePersistDriver) -> some ApplicationProtocol {
        let router = Router()
        router.put("/persist/:tag") { request, context -> HTTPResponse.Status in
            let buffer = try await request.body.collect(upTo: .max)
            try await persist.set(key: context.parameters.require("tag"), value: String(buffer: buffer))
            return .ok
        }
        router.put("/persist/:tag/:time") { request, context -> HTTPResponse.Status in
            let time = try context.parameters.require("time", as: Int.self)
            let buffer = try await request.body.collect(upTo: .max)
            try await persist.set(key: context.parameters.require("tag"), value: String(buffer: buffer), expires: .seconds(time))
            return .ok
        }
        router.put("/create/:tag") { request, context -> HTTPResponse.Status in
            let buffer = try await request.body.collect(upTo: .max)
            do {
                try await persist.create(key: context.parameters.require("tag"), value: String(buffer: buffer))
            } catch let error as PersistError where error == .duplicate {
                throw HTTPError(.conflict)
            }
            return .ok
        }
        router.get("/persist/:tag") { _, context -> String? in
            try await persist.get(key: context.parameters.require("tag"), as: String.self)
        }
        router.get("/persist/:tag/ttl") { _, context -> String? in
            let ttl = try await persist.getWithTTL(key: context.parameters.require("tag"), as: String.self)?.ttl
            return ttl.map { "\($0)" } ?? "none"
        }
        router.delete("/persist/:tag") { _, context -> HTTPResponse.Status in
            try await persist.remove(key: context.parameters.require("tag"))
            return .noContent
        }
        router.put("/codable/:tag") { request, context -> HTTPResponse.Status in
            let buffer = try await request.body.collect(upTo: .max)
            try await persist.set(key: context.parameters.require("tag"), value: TestCodable(buffer: String(buffer: buffer)))
            return .ok
        }
        router.get("/codable/:tag") { _, context -> String? in
            try await persist.get(key: context.parameters.require("tag"), as: TestCodable.self)?.buffer
        }
        router.get("/invalid/:tag") { _, context -> String? in
            do {
                return try await persist.get(key: context.parameters.require("tag"), as: Int.self).map(String.init)
            } catch let error as PersistError where error == .invalidConversion {
                throw HTTPError(.badRequest)
            }
        }
        return Application(responder: router.buildResponder())
    }

    /// Runs `body` with a driver on a fresh database and a manual clock.
    func withDriver(
        _ engine: Engine, configure: (inout SessionStorePersistDriver.Configuration) -> Void = { _ in },
        _ body: (SessionStorePersistDriver, ManualClock, DriverTestDatabase) async throws -> Void
    ) async throws {
        try await withDatabase(engine) { database in
            let clock = ManualClock()
            var configuration = SessionStorePersistDriver.Configuration()
            configure(&configuration)
            let driver = SessionStorePersistDriver(backend: database.backend, configuration: configuration, clock: clock)
            try await body(driver, clock, database)
        }
    }

    @Test("a value set is read back", arguments: Engine.available)
    func setThenGet(engine: Engine) async throws {
        try await withDriver(engine) { driver, _, _ in
            try await Self.application(driver).test(.router) { client in
                try await client.execute(uri: "/persist/a", method: .put, body: ByteBuffer(string: "Persist")) { _ in }
                try await client.execute(uri: "/persist/a", method: .get) { response in
                    #expect(response.status == .ok)
                    #expect(String(buffer: response.body) == "Persist")
                }
            }
        }
    }

    @Test("a value created is read back", arguments: Engine.available)
    func createThenGet(engine: Engine) async throws {
        try await withDriver(engine) { driver, _, _ in
            try await Self.application(driver).test(.router) { client in
                try await client.execute(uri: "/create/a", method: .put, body: ByteBuffer(string: "Persist")) { response in
                    #expect(response.status == .ok)
                }
                try await client.execute(uri: "/persist/a", method: .get) { response in
                    #expect(String(buffer: response.body) == "Persist")
                }
            }
        }
    }

    @Test("create on a live key throws duplicate and keeps the first value", arguments: Engine.available)
    func createTwiceFails(engine: Engine) async throws {
        try await withDriver(engine) { driver, _, _ in
            try await Self.application(driver).test(.router) { client in
                try await client.execute(uri: "/create/a", method: .put, body: ByteBuffer(string: "first")) { response in
                    #expect(response.status == .ok)
                }
                try await client.execute(uri: "/create/a", method: .put, body: ByteBuffer(string: "second")) { response in
                    #expect(response.status == .conflict)
                }
                try await client.execute(uri: "/persist/a", method: .get) { response in
                    #expect(String(buffer: response.body) == "first")
                }
            }
        }
    }

    @Test("set twice keeps the second value", arguments: Engine.available)
    func setTwice(engine: Engine) async throws {
        try await withDriver(engine) { driver, _, _ in
            try await Self.application(driver).test(.router) { client in
                try await client.execute(uri: "/persist/a", method: .put, body: ByteBuffer(string: "test1")) { _ in }
                try await client.execute(uri: "/persist/a", method: .put, body: ByteBuffer(string: "test2")) { response in
                    #expect(response.status == .ok)
                }
                try await client.execute(uri: "/persist/a", method: .get) { response in
                    #expect(String(buffer: response.body) == "test2")
                }
            }
        }
    }

    @Test("a value is absent once it expired; one with time left is not", arguments: Engine.available)
    func expires(engine: Engine) async throws {
        try await withDriver(engine) { driver, clock, _ in
            try await Self.application(driver).test(.router) { client in
                try await client.execute(uri: "/persist/a/0", method: .put, body: ByteBuffer(string: "ThisIsTest1")) { _ in }
                try await client.execute(uri: "/persist/b/10", method: .put, body: ByteBuffer(string: "ThisIsTest2")) { _ in }
                clock.advance(by: .seconds(1))
                try await client.execute(uri: "/persist/a", method: .get) { response in
                    #expect(response.status == .noContent)
                }
                try await client.execute(uri: "/persist/b", method: .get) { response in
                    #expect(String(buffer: response.body) == "ThisIsTest2")
                }
            }
        }
    }

    @Test("getWithTTL gives the exact remaining time, not rounded up", arguments: Engine.available)
    func ttl(engine: Engine) async throws {
        try await withDriver(engine) { driver, clock, _ in
            try await driver.set(key: "a", value: "v", expires: .seconds(10))
            clock.advance(by: .milliseconds(2_500))
            let ttl = try #require(try await driver.getWithTTL(key: "a", as: String.self)?.ttl)
            #expect(ttl == .milliseconds(7_500))
            try await Self.application(driver).test(.router) { client in
                try await client.execute(uri: "/persist/a/ttl", method: .get) { response in
                    #expect(String(buffer: response.body) == "\(Duration.milliseconds(7_500))")
                }
            }
            try await driver.set(key: "forever", value: "v", expires: nil)
            let forever = try #require(try await driver.getWithTTL(key: "forever", as: String.self))
            #expect(forever.ttl == nil)
        }
    }

    @Test("Codable values round-trip", arguments: Engine.available)
    func codable(engine: Engine) async throws {
        try await withDriver(engine) { driver, _, _ in
            try await Self.application(driver).test(.router) { client in
                try await client.execute(uri: "/codable/a", method: .put, body: ByteBuffer(string: "Persist")) { _ in }
                try await client.execute(uri: "/codable/a", method: .get) { response in
                    #expect(String(buffer: response.body) == "Persist")
                }
            }
        }
    }

    @Test("reading a value as another type throws invalidConversion", arguments: Engine.available)
    func invalidConversion(engine: Engine) async throws {
        try await withDriver(engine) { driver, _, _ in
            try await Self.application(driver).test(.router) { client in
                try await client.execute(uri: "/codable/a", method: .put, body: ByteBuffer(string: "hello")) { _ in }
                try await client.execute(uri: "/invalid/a", method: .get) { response in
                    #expect(response.status == .badRequest)
                }
            }
        }
    }

    /// The same fields as `TestCodable` under another type.
    struct OtherCodable: Codable, Equatable {
        let buffer: String
    }

    @Test("a value another driver changed in the database is read as changed, not as last decoded", arguments: Engine.available)
    func aValueChangedElsewhereIsReadAsChanged(engine: Engine) async throws {
        try await withDriver(engine) { driver, clock, database in
            let other = SessionStorePersistDriver(backend: database.backend, clock: clock)
            try await driver.set(key: "a", value: TestCodable(buffer: "first"), expires: nil)
            #expect(try await driver.get(key: "a", as: TestCodable.self) == TestCodable(buffer: "first"))
            try await other.set(key: "a", value: TestCodable(buffer: "second"), expires: nil)
            #expect(try await driver.get(key: "a", as: TestCodable.self) == TestCodable(buffer: "second"))
            try await other.remove(key: "a")
            #expect(try await driver.get(key: "a", as: TestCodable.self) == nil)
        }
    }

    @Test("a value read as another type is decoded as that type, not handed back as the type last read", arguments: Engine.available)
    func aValueReadAsAnotherTypeIsDecodedAgain(engine: Engine) async throws {
        try await withDriver(engine) { driver, _, _ in
            try await driver.set(key: "a", value: TestCodable(buffer: "x"), expires: nil)
            #expect(try await driver.get(key: "a", as: TestCodable.self) == TestCodable(buffer: "x"))
            #expect(try await driver.get(key: "a", as: OtherCodable.self) == OtherCodable(buffer: "x"))
            await #expect(throws: PersistError.invalidConversion) { try await driver.get(key: "a", as: Int.self) }
        }
    }

    @Test("the values kept to skip decoding stay bounded however many keys are read, and removed ones go")
    func decodedValuesStayBounded() async throws {
        let driver = SessionStorePersistDriver(backend: InMemoryBackend())
        let large = String(repeating: "x", count: DecodedValueCache.largestCachedValue)
        for index in 0..<5_000 {
            try await driver.set(key: "k\(index)", value: "v\(index)", expires: nil)
            #expect(try await driver.get(key: "k\(index)", as: String.self) == "v\(index)")
        }
        let kept = driver.decoded.count
        #expect(kept > 0 && kept <= 1_024)
        // A value over the size kept is stored and read, never kept.
        try await driver.set(key: "large", value: large, expires: nil)
        #expect(try await driver.get(key: "large", as: String.self) == large)
        #expect(driver.decoded.count <= kept)
        for index in 0..<5_000 { try await driver.remove(key: "k\(index)") }
        #expect(driver.decoded.count == 0)
        try await driver.shutdown()
    }

    @Test("remove deletes the value", arguments: Engine.available)
    func remove(engine: Engine) async throws {
        try await withDriver(engine) { driver, _, database in
            try await Self.application(driver).test(.router) { client in
                try await client.execute(uri: "/persist/a", method: .put, body: ByteBuffer(string: "ThisIsTest1")) { _ in }
                try await client.execute(uri: "/persist/a", method: .delete) { _ in }
                try await client.execute(uri: "/persist/a", method: .get) { response in
                    #expect(response.status == .noContent)
                }
            }
            #expect(try await database.rows() == 0)
        }
    }

    @Test("a key that expired can be created again", arguments: Engine.available)
    func expireThenAdd(engine: Engine) async throws {
        try await withDriver(engine) { driver, clock, _ in
            try await Self.application(driver).test(.router) { client in
                try await client.execute(uri: "/persist/a/0", method: .put, body: ByteBuffer(string: "old")) { _ in }
                clock.advance(by: .seconds(1))
                try await client.execute(uri: "/persist/a", method: .get) { response in
                    #expect(response.status == .noContent)
                }
                try await client.execute(uri: "/create/a", method: .put, body: ByteBuffer(string: "new")) { response in
                    #expect(response.status == .ok)
                }
                try await client.execute(uri: "/persist/a", method: .get) { response in
                    #expect(String(buffer: response.body) == "new")
                }
            }
        }
    }

    @Test("set with no expiry keeps the stored expiry", arguments: Engine.available)
    func setWithoutExpiryKeepsExpiry(engine: Engine) async throws {
        try await withDriver(engine) { driver, clock, _ in
            try await driver.set(key: "a", value: "one", expires: .seconds(10))
            clock.advance(by: .seconds(4))
            try await driver.set(key: "a", value: "two", expires: nil)
            let (value, ttl) = try #require(try await driver.getWithTTL(key: "a", as: String.self))
            #expect(value == "two")
            #expect(ttl == .seconds(6))
            clock.advance(by: .seconds(6))
            #expect(try await driver.get(key: "a", as: String.self) == nil)
        }
    }

    @Test("set with an earlier expiry shortens it; expires 0 makes the value absent", arguments: Engine.available)
    func setShortensExpiry(engine: Engine) async throws {
        try await withDriver(engine) { driver, _, _ in
            try await driver.set(key: "a", value: "one", expires: .seconds(600))
            try await driver.set(key: "a", value: "two", expires: .seconds(5))
            #expect(try await driver.getWithTTL(key: "a", as: String.self)?.ttl == .seconds(5))
            try await driver.set(key: "a", value: "three", expires: .seconds(0))
            #expect(try await driver.get(key: "a", as: String.self) == nil)
        }
    }

    @Test("keys with /, +, = and shared prefixes are distinct values", arguments: Engine.available)
    func arbitraryKeys(engine: Engine) async throws {
        try await withDriver(engine) { driver, _, _ in
            let keys = ["hbs.ab/cd+ef==", "hbs.ab/cd+ef=", "hbs.", "", "ab/cd+ef==", "hbs.ab", "ключ/✓"]
            for (index, key) in keys.enumerated() {
                try await driver.create(key: key, value: index, expires: nil)
            }
            for (index, key) in keys.enumerated() {
                #expect(try await driver.get(key: key, as: Int.self) == index)
            }
        }
    }

    @Test("rows are keyed by the SHA-256 of the key, not the key itself")
    func keysAreHashed() async throws {
        try await withDriver(.sqlite) { driver, clock, database in
            try await driver.set(key: "hbs.secret-cookie", value: "v", expires: nil)
            #expect(try await database.backend.load(SessionKey(value: "hbs.secret-cookie"), now: clock.now()) == nil)
            let hashed = driver.storageKey("hbs.secret-cookie")
            // base64url(SHA-256("hbs.secret-cookie")) without padding, as every release stored it.
            #expect(hashed.value == "VEid0RpveDTaiLnXPU1MMeKsQvywfTmaDFikpVGjDfE")
            #expect(try await database.backend.load(hashed, now: clock.now()) != nil)
        }
    }

    @Test("sliding expiry pushes expiry on read at most once per touch interval", arguments: Engine.available)
    func slidingExpiry(engine: Engine) async throws {
        try await withDriver(engine, configure: { $0.slidingExpiry = (idleTimeout: .seconds(600), touchInterval: .seconds(60)) }) {
            driver, clock, database in
            try await driver.set(key: "a", value: "v", expires: .seconds(600))
            let afterSet = try await database.writes()
            for _ in 0..<10 {
                clock.advance(by: .seconds(5))
                #expect(try await driver.get(key: "a", as: String.self) == "v")
            }
            #expect(try await database.writes() == afterSet, "50 s of reads inside the touch interval write nothing")
            clock.advance(by: .seconds(20))
            #expect(try await driver.getWithTTL(key: "a", as: String.self)?.ttl == .seconds(600))
            #expect(try await database.writes() == afterSet + 1)
            clock.advance(by: .seconds(599))
            #expect(try await driver.get(key: "a", as: String.self) == "v", "the touch kept it alive")
        }
    }

    @Test("cleanup deletes expired values and keeps live ones", arguments: Engine.available)
    func cleanup(engine: Engine) async throws {
        try await withDriver(engine) { driver, clock, database in
            try await driver.set(key: "short", value: "v", expires: .seconds(1))
            try await driver.set(key: "long", value: "v", expires: .seconds(3600))
            try await driver.set(key: "forever", value: "v", expires: nil)
            clock.advance(by: .seconds(600))
            #expect(try await driver.cleanup() == 1)
            #expect(try await database.rows() == 2)
        }
    }

    @Test("open(url) picks the backend by URL and rejects unknown options and schemes")
    func openByURL() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("persist-open-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let path = directory.appendingPathComponent("kv.db").path
        do {
            try await Self.openByURL(path: path)
        } catch {
            try FileManager.default.removeItem(at: directory)
            throw error
        }
        try FileManager.default.removeItem(at: directory)
    }

    static func openByURL(path: String) async throws {
        let driver = try await SessionStorePersistDriver.open("sqlite://\(path)?table=kv", backends: [.sqlite])
        try await driver.set(key: "a", value: 42, expires: .seconds(60))
        #expect(try await driver.get(key: "a", as: Int.self) == 42)
        try await driver.shutdown()
        let reopened = try await SessionStorePersistDriver.open("sqlite://\(path)?table=kv", backends: [.sqlite])
        #expect(try await reopened.get(key: "a", as: Int.self) == 42, "the value is in the file")
        try await reopened.shutdown()
        await #expect(throws: SessionStoreError.self) {
            try await SessionStorePersistDriver.open("sqlite://\(path)?no_such_option=1", backends: [.sqlite])
        }
        await #expect(throws: SessionStoreError.self) {
            try await SessionStorePersistDriver.open("redis://localhost/", backends: [.sqlite])
        }
    }

    @Test("getWithTTL on the system clock reports less than the TTL set, even in the write's millisecond")
    func ttlIsNeverRoundedUp() async throws {
        try await withDatabase(.sqlite) { database in
            let driver = SessionStorePersistDriver(backend: database.backend)
            // A write and a read take microseconds here: many of these pairs share a
            // millisecond, where a millisecond clock reported the whole TTL.
            // The remaining time is checked against the time that passed, however long that was
            // (no bound on how long the write and the read take).
            for round in 0..<200 {
                let started = ContinuousClock.now
                try await driver.set(key: "k\(round)", value: "v", expires: .seconds(600))
                let ttl = try #require(try await driver.getWithTTL(key: "k\(round)", as: String.self)?.ttl)
                let elapsed = ContinuousClock.now - started
                // The behaviour under test, not a bound on time: a slower machine only leaves less.
                #expect(ttl < .seconds(600), "round \(round): \(ttl)")
                #expect(ttl >= .seconds(600) - elapsed - .milliseconds(1), "round \(round): \(ttl) after \(elapsed)")
            }
            try await driver.shutdown()
        }
    }

    /// A driver on memory with one value that expired, cleaning every millisecond once run.
    private func driverWithAnExpiredValue() async throws -> (SessionStorePersistDriver, InMemoryBackend, CountingBackend) {
        let memory = InMemoryBackend()
        let counting = CountingBackend(memory)
        let clock = ManualClock()
        var configuration = SessionStorePersistDriver.Configuration()
        configuration.cleanupInterval = .milliseconds(1)
        let driver = SessionStorePersistDriver(backend: counting, configuration: configuration, clock: clock)
        try await driver.set(key: "a", value: "v", expires: .seconds(1))
        clock.advance(by: .seconds(3600))
        return (driver, memory, counting)
    }

    @Test("a driver that is not run starts no background cleanup")
    func noCleanupBeforeRun() async throws {
        let (driver, memory, counting) = try await driverWithAnExpiredValue()
        // Fifty cleanup intervals: a schedule started at creation would have run by now.
        try await Task.sleep(for: .milliseconds(50))
        #expect(counting.calls["deleteExpired"] == nil)
        #expect(memory.rowCount == 1)
        try await driver.shutdown()
    }

    @Test("run cleans in the background until graceful shutdown, then closes the backend")
    func runIsTheService() async throws {
        let (driver, memory, counting) = try await driverWithAnExpiredValue()
        try await testGracefulShutdown { trigger in
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await driver.run() }
                // No bound on time: the background round comes when the machine lets it.
                while memory.rowCount > 0 { try await Task.sleep(for: .milliseconds(1)) }
                trigger.triggerGracefulShutdown()
                try await group.waitForAll()
            }
        }
        #expect((counting.calls["deleteExpired"] ?? 0) >= 1)
        await #expect(throws: StorageError.self) { try await driver.get(key: "a", as: String.self) }
    }

    @Test("cancelling run closes the backend as graceful shutdown does")
    func cancellingRunShutsDown() async throws {
        let (driver, _, _) = try await driverWithAnExpiredValue()
        let running = Task { try await driver.run() }
        running.cancel()
        try await running.value
        await #expect(throws: StorageError.self) { try await driver.get(key: "a", as: String.self) }
    }

    @Test("a value over the store's size limit throws dataTooLarge and writes nothing", arguments: Engine.available)
    func sizeLimit(engine: Engine) async throws {
        try await withDriver(engine) { driver, _, database in
            let limit = SessionStoreConfiguration().maxDataSize
            let error = await #expect(throws: SessionStoreError.self) {
                try await driver.set(key: "big", value: String(repeating: "x", count: limit), expires: nil)
            }
            #expect(error?.code == .dataTooLarge)
            await #expect(throws: SessionStoreError.self) {
                try await driver.create(key: "big", value: String(repeating: "x", count: limit), expires: nil)
            }
            #expect(try await database.rows() == 0)
            try await driver.set(key: "small", value: String(repeating: "x", count: limit - 100), expires: nil)
            #expect(try await database.rows() == 1)
        }
    }

    @Test("a key is stored under the key the store gives the same text")
    func keysFollowTheStoresRule() throws {
        let id = SessionID.generate()
        let hashed = SessionStorePersistDriver(backend: InMemoryBackend())
        #expect(hashed.storageKey(id.text) == (try SessionStore(backend: InMemoryBackend())).storageKey(for: id))
        var plain = SessionStorePersistDriver.Configuration()
        plain.keyHashing = .none
        var storePlain = SessionStoreConfiguration()
        storePlain.idHashing = .none
        #expect(
            SessionStorePersistDriver(backend: InMemoryBackend(), configuration: plain).storageKey(id.text)
                == (try SessionStore(backend: InMemoryBackend(), configuration: storePlain)).storageKey(for: id))
    }

    @Test("set gives up with conflictRetriesExhausted after the store's conflict retries")
    func setRetriesAsTheStoreDoes() async throws {
        let raced = AlwaysRacedBackend()
        let driver = SessionStorePersistDriver(backend: raced)
        let error = await #expect(throws: SessionStoreError.self) {
            try await driver.set(key: "a", value: "v", expires: .seconds(60))
        }
        #expect(error?.code == .conflictRetriesExhausted)
        // One insert first (a key the driver has not seen), then one per round.
        #expect(raced.inserts.load(ordering: .relaxed) == 1 + SessionStoreConfiguration().maxConflictRetries + 1)
    }

    @Test("set on a new key is one insert; on a key it read, one update; on a live key it never saw, the merge replaces it")
    func setOnANewKeyIsOneInsert() async throws {
        let counting = CountingBackend(InMemoryBackend())
        let driver = SessionStorePersistDriver(backend: counting)
        try await driver.set(key: "new", value: "v1", expires: .seconds(60))
        #expect((counting.calls["insert"] ?? 0) == 1 && (counting.calls["merge"] ?? 0) == 0)
        #expect(try await driver.get(key: "new", as: String.self) == "v1")
        try await driver.set(key: "new", value: "v2", expires: nil)
        #expect((counting.calls["insert"] ?? 0) == 1 && (counting.calls["update"] ?? 0) == 1)
        #expect((counting.calls["merge"] ?? 0) == 0)
        // Another driver on the same rows has not seen the key: its insert finds the live row
        // and writes nothing, then its merge replaces the value.
        let other = SessionStorePersistDriver(backend: counting)
        try await other.set(key: "new", value: "v3", expires: nil)
        #expect(try await driver.get(key: "new", as: String.self) == "v3")
        #expect(try await other.get(key: "new", as: String.self) == "v3")
    }

    @Test("a set expecting a version another driver has since changed takes the merge and stores its value", arguments: Engine.available)
    func aSetAtAStaleVersionTakesTheMerge(engine: Engine) async throws {
        try await withDriver(engine) { driver, clock, database in
            let counting = CountingBackend(database.backend)
            let mine = SessionStorePersistDriver(backend: counting, clock: clock)
            let other = SessionStorePersistDriver(backend: database.backend, clock: clock)
            try await mine.set(key: "a", value: TestCodable(buffer: "first"), expires: .seconds(60))
            #expect(try await mine.get(key: "a", as: TestCodable.self) == TestCodable(buffer: "first"))
            try await other.set(key: "a", value: TestCodable(buffer: "second"), expires: nil)
            counting.reset()
            try await mine.set(key: "a", value: TestCodable(buffer: "third"), expires: nil)
            #expect(counting.calls["update"] == 1 && counting.calls["merge"] == 1, "\(counting.calls)")
            #expect(try await other.get(key: "a", as: TestCodable.self) == TestCodable(buffer: "third"))
            // The merge noted the version it wrote: the next set is one update again.
            counting.reset()
            try await mine.set(key: "a", value: TestCodable(buffer: "fourth"), expires: nil)
            #expect(counting.calls["update"] == 1 && counting.calls["merge"] == nil, "\(counting.calls)")
            #expect(try await driver.get(key: "a", as: TestCodable.self) == TestCodable(buffer: "fourth"))
        }
    }

    @Test("set with an expiry takes the merge, which may shorten it, even on a key it read")
    func setWithAnExpiryTakesTheMerge() async throws {
        let counting = CountingBackend(InMemoryBackend())
        // A clock that stands still: the remaining time is exactly the expiry set.
        let driver = SessionStorePersistDriver(backend: counting, clock: ManualClock())
        try await driver.set(key: "a", value: "v1", expires: .seconds(600))
        #expect(try await driver.get(key: "a", as: String.self) == "v1")
        counting.reset()
        try await driver.set(key: "a", value: "v2", expires: .seconds(60))
        #expect(counting.calls["update"] == nil && counting.calls["merge"] == 1, "\(counting.calls)")
        let ttl = try #require(try await driver.getWithTTL(key: "a", as: String.self)?.ttl)
        #expect(ttl == .seconds(60), "the expiry was shortened to the one set")
    }

    @Test("shutdown closes the backend; later calls throw", arguments: Engine.available)
    func shutdown(engine: Engine) async throws {
        try await withDriver(engine) { driver, _, _ in
            try await driver.shutdown()
            await #expect(throws: StorageError.self) { try await driver.get(key: "a", as: String.self) }
        }
    }
}

/// A backend on which every write of a new row loses to another writer: each merge finds no
/// row, each insert finds one.
final class AlwaysRacedBackend: StorageBackend {
    /// The inserts tried.
    let inserts = Atomic<Int>(0)

    func load(_ key: SessionKey, now: Int64) async throws -> SessionRecord? { nil }
    func insert(_ key: SessionKey, _ record: SessionRecord) async throws -> Bool {
        inserts.add(1, ordering: .relaxed)
        return false
    }
    func update(_ key: SessionKey, data: [UInt8], expectedVersion: Int64, expiresAt: Int64, now: Int64) async throws -> Bool {
        false
    }
    func merge<Result: Sendable>(
        _ key: SessionKey, now: Int64, _ decide: @escaping @Sendable (SessionRecord?) throws -> (MergeWrite, Result)
    ) async throws -> Result {
        try decide(nil).1
    }
    func touch(_ key: SessionKey, expiresAt: Int64, now: Int64) async throws -> Bool { false }
    func retire(_ key: SessionKey, expiresAt: Int64) async throws -> Bool { false }
    func delete(_ key: SessionKey, expectedVersion: Int64?) async throws -> Bool { false }
    func deleteExpired(before: Int64, limit: Int) async throws -> Int { 0 }
    func rebind(
        _ key: SessionKey, data: [UInt8], owner: String?, details: [UInt8]?, expiresAt: Int64, expectedVersion: Int64,
        now: Int64
    ) async throws -> Bool {
        false
    }
    func ownedSessions(owner: String, now: Int64, after position: OwnedRecordPosition?, limit: Int) async throws -> [OwnedRecord] {
        []
    }
    func deleteOwned(owner: String, only: SessionKey?, except: SessionKey?, limit: Int) async throws -> Int { 0 }
    func trimOwned(owner: String, keep: Int, now: Int64) async throws -> Int { 0 }
    func close() async throws {}
}
#endif

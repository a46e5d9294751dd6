import MetricsTestKit
import SessionStore
import SessionStoreTesting
import Testing

@Suite("Metrics")
struct MetricsTests {
    @Test("loads, writes, skipped writes and malformed ids are counted")
    func counters() async throws {
        let metrics = TestMetrics()
        let label = "m\(UInt32.random(in: 0...UInt32.max))"
        let store = try SessionStore(backend: InMemoryBackend(), metricsLabel: label, metricsFactory: metrics)
        var session = store.newSession()
        try session.set("user", "alice")
        try await store.save(&session)
        var loaded = try await store.load(id: session.id.text)
        try await store.save(&loaded)
        _ = try await store.load(id: "not an id")
        _ = try await store.load(id: SessionID.generate().text)

        func value(_ name: String, _ dimensions: [(String, String)]) throws -> Int64 {
            try metrics.expectCounter("\(label)_\(name)", dimensions).totalValue
        }
        #expect(try value("writes_total", [("kind", "created")]) == 1)
        #expect(try value("loads_total", [("result", "hit")]) == 1)
        #expect(try value("loads_total", [("result", "miss")]) == 1)
        #expect(try value("loads_total", [("result", "malformed_id")]) == 1)
        #expect(try value("skipped_writes_total", [("reason", "unchanged")]) == 1)
        try await store.shutdown()
    }
}

import Foundation
import SessionStoreCore

/// `--profile OPERATION`: runs one store operation in a loop on a small table and prints
/// the time per operation, for comparing changes to one path in isolation and for
/// attaching a profiler to `profiledLoop`. `driver-hit` runs the driver floor's hit instead
/// (PostgreSQL: postgres-nio's own prepared query), the store's `hit` without the store.
/// `Benchmarks/postgres-callgrind.sh` counts instructions per operation of two such runs
/// under callgrind (on a copy without DWARF, which valgrind 3.19 cannot read).
enum ProfiledOperation: String, CaseIterable, Sendable {
    case hit, miss, read, save
    case driverHit = "driver-hit"
}

extension BenchRun {
    func profile<E: Engine>(_ operation: ProfiledOperation, iterations: Int, on engine: E) async throws {
        let rows = 10_000
        let table = try await engine.fillStoreTable("profile", rows: rows, key: engine.defaultKey, plan: .fresh)
        let elapsed: Double
        if operation == .driverHit {
            guard let floor = try await engine.driverFloor(table, connections: 1) else {
                throw BenchError("--profile driver-hit needs an engine with a driver floor (--backend postgres)")
            }
            try await Self.profiledDriverLoop(floor, table.keys, iterations: 100)
            let started = nanos()
            try await Self.profiledDriverLoop(floor, table.keys, iterations: iterations)
            elapsed = Double(nanos() - started) / 1e3 / Double(iterations)
            try await floor.close()
        } else {
            let store = try await openStore(engine, table)
            // Warm up the statements and the page cache outside the counted loop.
            try await Self.profiledLoop(store, operation, rows: rows, iterations: 100)
            let started = nanos()
            try await Self.profiledLoop(store, operation, rows: rows, iterations: iterations)
            elapsed = Double(nanos() - started) / 1e3 / Double(iterations)
            try await store.shutdown()
        }
        try await engine.drop(table.location)
        print("profile \(operation.rawValue): \(iterations) iterations, \(Fmt.fixed(elapsed, 2)) µs each")
    }

    @inline(never)
    static func profiledLoop(_ store: SessionStore, _ operation: ProfiledOperation, rows: Int, iterations: Int) async throws {
        var random = FastRandom(seed: 7)
        for iteration in 0..<iterations {
            switch operation {
            case .hit:
                _ = try await store.load(id: IDs.id(random.below(rows)))
            case .miss:
                _ = try await store.load(id: IDs.missID(random.below(StoredKeys.missCount)))
            case .read:
                let session = try await store.load(id: IDs.id(random.below(rows)))
                _ = try session.get("user_id", as: Int.self)
                _ = try session.get("csrf", as: String.self)
                _ = try session.get("locale", as: String.self)
                _ = try session.get("flash", as: String.self)
                _ = try session.get("last_page", as: String.self)
            case .driverHit:
                throw BenchError("driver-hit runs in profiledDriverLoop")
            case .save:
                var session = try await store.load(id: IDs.id(random.below(rows)))
                try session.set("locale", iteration % 2 == 0 ? "en-GB" : "fr-FR")
                try await store.save(&session)
            }
        }
    }

    /// The driver floor's hits, with the keys and random sequence of the store's `hit`.
    @inline(never)
    static func profiledDriverLoop(_ floor: any DriverFloor, _ keys: StoredKeys, iterations: Int) async throws {
        var random = FastRandom(seed: 7)
        for _ in 0..<iterations {
            guard try await floor.load(worker: 0, keys.values[random.below(keys.values.count)], now: wallMillis()) else {
                throw BenchError("the driver floor missed a stored row")
            }
        }
    }
}

import Foundation
import SessionStoreCore

/// `--profile OPERATION`: runs one store operation in a loop on a small table and prints
/// the time per operation, for comparing changes to one path in isolation and for
/// attaching a profiler to `profiledLoop`. (Valgrind 3.19, Debian's, cannot read the
/// DWARF 5 of Swift 6.3 binaries, and crashes at the first thread of a stripped one.)
enum ProfiledOperation: String, CaseIterable, Sendable {
    case hit, miss, read, save
}

extension BenchRun {
    func profile<E: Engine>(_ operation: ProfiledOperation, iterations: Int, on engine: E) async throws {
        let rows = 10_000
        let table = try await engine.fillStoreTable("profile", rows: rows, key: engine.defaultKey, plan: .fresh)
        let store = try await openStore(engine, table)
        // Warm up the statements and the page cache outside the counted loop.
        try await Self.profiledLoop(store, operation, rows: rows, iterations: 100)
        let started = nanos()
        try await Self.profiledLoop(store, operation, rows: rows, iterations: iterations)
        let elapsed = Double(nanos() - started) / 1e3 / Double(iterations)
        try await store.shutdown()
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
            case .save:
                var session = try await store.load(id: IDs.id(random.below(rows)))
                try session.set("locale", iteration % 2 == 0 ? "en-GB" : "fr-FR")
                try await store.save(&session)
            }
        }
    }
}

import Foundation
import Synchronization
import SessionStoreCore
@testable import SessionStoreSQLite
import Testing

/// The reader pool: loads take readers without a shared lock, wait when all are lent, and
/// end cleanly when the backend closes under them.
@Suite("SQLite reader pool")
struct SQLiteReaderPoolTests {
    /// Stores `count` sessions, each with its index, and returns their keys.
    func fill(_ backend: SQLiteBackend, count: Int) async throws -> [SessionKey] {
        var keys: [SessionKey] = []
        for index in 0..<count {
            let key = SessionKey(value: "reader-pool-\(index)")
            let record = SessionRecord(data: Array("\(index)".utf8), version: 1, createdAt: 1, expiresAt: Int64.max / 2)
            #expect(try await backend.insert(key, record))
            keys.append(key)
        }
        return keys
    }

    /// One reader for tasks on every thread of the pool: loads on the other threads find it
    /// lent and queue for it.
    @Test func manyMoreTasksThanReadersEachLoadTheirOwnRow() async throws {
        try await withTemporaryDatabase { database in
            let backend = try database.open { $0.readerCount = 1 }
            let keys = try await fill(backend, count: 64)
            let wrong = try await withThrowingTaskGroup(of: Int.self) { group in
                for task in 0..<64 {
                    group.addTask {
                        var wrong = 0
                        for round in 0..<200 {
                            let index = (task + round) % keys.count
                            let record = try await backend.load(keys[index], now: 2)
                            if record?.data != Array("\(index)".utf8) { wrong += 1 }
                        }
                        return wrong
                    }
                }
                return try await group.reduce(0, +)
            }
            #expect(wrong == 0, "every load found its own row, whichever reader it was lent")
            try await backend.close()
        }
    }

    @Test func closingDuringLoadsEndsEachLoadWithItsRowOrClosedAndClosesEveryReader() async throws {
        try await withTemporaryDatabase { database in
            let backend = try database.open { $0.readerCount = 2 }
            let keys = try await fill(backend, count: 16)
            let started = StartedCounter()
            let outcomes = try await withThrowingTaskGroup(of: (loaded: Int, closedErrors: Int, other: [String]).self) { group in
                for task in 0..<32 {
                    group.addTask {
                        var loaded = 0
                        while true {
                            do {
                                let index = (task + loaded) % keys.count
                                guard try await backend.load(keys[index], now: 2)?.data == Array("\(index)".utf8) else {
                                    return (loaded, 0, ["load \(index) returned another row"])
                                }
                                loaded += 1
                                if loaded == 1 { started.increment() }
                                // A load that finds a reader free never suspends: without
                                // this, two tasks would keep both of the pool's threads.
                                await Task.yield()
                            } catch let error as StorageError where error.kind == .closed {
                                return (loaded, 1, [])
                            } catch {
                                return (loaded, 0, ["\(error)"])
                            }
                        }
                    }
                }
                while started.value < 32 { await Task.yield() }
                try await backend.close()
                var all: [(loaded: Int, closedErrors: Int, other: [String])] = []
                for try await outcome in group { all.append(outcome) }
                return all
            }
            #expect(outcomes.flatMap(\.other).isEmpty, "no load failed otherwise: \(outcomes.flatMap(\.other))")
            #expect(outcomes.allSatisfy { $0.closedErrors == 1 }, "every task's loop ended on the closed backend")
            #expect(outcomes.allSatisfy { $0.loaded > 0 })
            #expect(try SQLiteLifecycleTests.openDescriptors(under: database.directory.path) == 0, "close returned after every reader closed")
            try await backend.close()  // twice is harmless
        }
    }
}

/// A counter shared by test tasks.
final class StartedCounter: Sendable {
    private let count = Atomic<Int>(0)
    func increment() { count.add(1, ordering: .sequentiallyConsistent) }
    var value: Int { count.load(ordering: .sequentiallyConsistent) }
}

@testable import SessionStoreCore
import Testing

/// The block pool session ids are minted from: bytes handed out once, never across a fork.
@Suite("Secure random pool", .serialized)  // One test stands in for a fork, which every pool sees.
struct SecureRandomPoolTests {
    func take(_ pool: SecureRandomPool, _ count: Int = 16) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: count)
        bytes.withUnsafeMutableBytes { pool.fill($0) }
        return bytes
    }

    @Test func oneKernelReadServesTwoHundredFiftySixIds() {
        let pool = SecureRandomPool()
        let ids = (0..<256).map { _ in take(pool) }
        #expect(pool.refills == 1)
        #expect(Set(ids).count == 256, "no bytes handed out twice")
        _ = take(pool)
        #expect(pool.refills == 2, "the 257th id reads a new block")
    }

    @Test func aForkedChildReadsANewBlockBeforeItsFirstID() {
        let pool = SecureRandomPool()
        _ = take(pool)
        _ = take(pool)
        #expect(pool.refills == 1)
        // What the pthread_atfork child handler runs in a forked child.
        SecureRandomPool.childAfterFork()
        _ = take(pool)
        #expect(pool.refills == 2, "the parent's remaining bytes are not handed out in the child")
        _ = take(pool)
        #expect(pool.refills == 2)
    }
}

import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Bytes from the kernel's CSPRNG, fetched 4 KiB at a time: one read serves
/// 256 session ids instead of two calls per id, which a miss or a new visitor otherwise
/// pays on every request. Bytes are handed out once and wiped; a forked child never reuses
/// its parent's bytes (a fork handler makes the child drop the buffer).
final class SecureRandomPool: Sendable {
    private struct State {
        var buffer = [UInt8](repeating: 0, count: 4096)
        var offset = 4096
        /// The ``forks`` count the buffer was filled under.
        var generation = 0
        /// Reads from the kernel so far.
        var refills = 0
    }

    /// The pool session ids are minted from.
    static let shared = SecureRandomPool()

    private let state = Mutex(State())

    /// Counts forks of this process, from a `pthread_atfork` child handler: a buffer
    /// filled under another count was filled by a parent. (Asking `getpid()` instead, a
    /// system call on every id, cost as much as the rest of minting one.)
    private static let forks = Atomic<Int>(0)

    /// Installs the fork handler once, before the first bytes are handed out.
    private static let forkHandler: Void = {
        #if canImport(Glibc) || canImport(Darwin)
        let result = pthread_atfork(nil, nil) { SecureRandomPool.childAfterFork() }
        // Without the handler a forked child could hand out its parent's bytes; no id may be
        // minted then. (It fails only when the process is out of memory.)
        guard result == 0 else { fatalError("pthread_atfork failed (\(result)): cannot keep random bytes apart across fork") }
        #endif
    }()

    /// What the fork handler runs in the child: every pool's buffer is from the parent.
    static func childAfterFork() {
        forks.add(1, ordering: .relaxed)
    }

    /// Fills `bytes` from the shared pool.
    static func fill(_ bytes: UnsafeMutableRawBufferPointer) {
        shared.fill(bytes)
    }

    /// Fills `bytes` from the shared pool.
    static func fill(_ bytes: inout [UInt8]) {
        bytes.withUnsafeMutableBytes { shared.fill($0) }
    }

    /// Reads from the kernel so far; for tests.
    var refills: Int { state.withLock { $0.refills } }

    /// Fills `bytes` with fresh random bytes, none handed out before (at most 4096).
    func fill(_ bytes: UnsafeMutableRawBufferPointer) {
        // Callers are this module's id minting (16 bytes) and nonces (12 bytes).
        precondition(bytes.count <= 4096, "at most 4096 random bytes at a time")
        _ = Self.forkHandler
        state.withLock { state in
            let generation = Self.forks.load(ordering: .relaxed)
            if state.generation != generation || state.offset + bytes.count > state.buffer.count {
                Self.refill(&state.buffer)
                state.offset = 0
                state.generation = generation
                state.refills += 1
            }
            let offset = state.offset
            state.buffer.withUnsafeMutableBytes { buffer in
                let source = UnsafeMutableRawBufferPointer(rebasing: buffer[offset..<(offset + bytes.count)])
                bytes.copyMemory(from: UnsafeRawBufferPointer(source))
                source.initializeMemory(as: UInt8.self, repeating: 0)
            }
            state.offset += bytes.count
        }
    }

    private static func refill(_ buffer: inout [UInt8]) {
        buffer.withUnsafeMutableBytes { raw in
            guard let base = raw.baseAddress else { return }
            #if canImport(Darwin)
            arc4random_buf(base, raw.count)
            #else
            // The same kernel CSPRNG as getrandom(2), which Swift's Glibc module does not expose.
            let descriptor = open("/dev/urandom", O_RDONLY | O_CLOEXEC)
            guard descriptor >= 0 else { fatalError("cannot open /dev/urandom (errno \(errno)): no secure random source") }
            defer { close(descriptor) }
            var filled = 0
            while filled < raw.count {
                let result = read(descriptor, base + filled, raw.count - filled)
                if result <= 0 {
                    // Interrupted: try again. Anything else means no CSPRNG to give, and no id
                    // may be minted without one.
                    guard result < 0, errno == EINTR else { fatalError("reading /dev/urandom failed (errno \(errno)): no secure random source") }
                    continue
                }
                filled += result
            }
            #endif
        }
    }
}

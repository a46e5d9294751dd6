import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Bytes from the kernel's CSPRNG, fetched 4 KiB at a time: one read serves
/// 256 session ids instead of two calls per id, which a miss or a new visitor otherwise
/// pays on every request. Bytes are handed out once and wiped; a forked child never reuses
/// its parent's bytes (the buffer is dropped when the process id changes).
enum SecureRandomPool {
    private struct State {
        var buffer = [UInt8](repeating: 0, count: 4096)
        var offset = 4096
        var owner: pid_t = 0
    }

    private static let state = Mutex(State())

    /// Fills `bytes` with fresh random bytes.
    static func fill(_ bytes: inout [UInt8]) {
        state.withLock { state in
            let pid = getpid()
            if state.owner != pid || state.offset + bytes.count > state.buffer.count {
                refill(&state.buffer)
                state.offset = 0
                state.owner = pid
            }
            for index in bytes.indices {
                bytes[index] = state.buffer[state.offset]
                state.buffer[state.offset] = 0
                state.offset += 1
            }
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

import Foundation
import SessionStoreCore
import SessionStoreTestSupport
import Testing

/// The threads backends start for themselves (``startBackendThread(named:stackSize:logger:_:)``).
@Suite("Backend threads")
struct BackendThreadTests {
    /// The name the system gives the started thread once it runs (on Linux, as `top -H`
    /// and `perf` read it).
    func nameOfThread(named name: String, log: CapturedLog) async -> String? {
        await withCheckedContinuation { continuation in
            startBackendThread(named: name, logger: log.logger) {
                #if os(Linux)
                let comm = FileManager.default.contents(atPath: "/proc/thread-self/comm")
                continuation.resume(returning: comm.map { String(decoding: $0, as: UTF8.self).trimmingCharacters(in: .newlines) })
                #else
                continuation.resume(returning: Thread.current.name)
                #endif
            }
        }
    }

    @Test func aThreadRunsUnderTheNameItWasStartedWith() async {
        let log = CapturedLog()
        #expect(await nameOfThread(named: "ss.test-thread", log: log) == "ss.test-thread")
        #expect(log.lines(at: .debug).isEmpty)
    }

    @Test func aNameLongerThanLinuxKeepsIsCutToFifteenBytesWithALogLine() async {
        let log = CapturedLog()
        // "é" is two bytes: a cut never splits a character.
        #expect(await nameOfThread(named: "ss.abcdefghijkéxyz", log: log) == "ss.abcdefghijk")
        #expect(log.lines(at: .debug).count == 1, "\(log.text)")
    }
}

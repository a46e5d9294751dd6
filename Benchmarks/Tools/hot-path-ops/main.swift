import CCallgrind
import Dispatch
import Foundation
import HotPath

// `hot-path-ops OPERATION ITERATIONS`: fills the hot-path table, runs OPERATION 200 times to
// warm up, then ITERATIONS times, and exits. Under callgrind (`Benchmarks/callgrind.sh`) the
// counters are zeroed after the warm-up and dumped after the measured loop, so the dump
// holds the measured operations alone, every thread's work included.
//
// The main thread waits on a semaphore instead of being an `async` main (and the work runs
// detached, off the main actor that the main thread would hold): valgrind 3.19 crashes when
// libdispatch's main queue parks the main thread in sigsuspend.
// `OPERATION+sealed` runs it on rows sealed with AES-256-GCM (see `HotPath.make(sealed:)`).
let arguments = CommandLine.arguments
let sealed = arguments.count == 3 && arguments[1].hasSuffix("+sealed")
let operationName = sealed ? String(arguments[1].dropLast("+sealed".count)) : arguments.count == 3 ? arguments[1] : ""
guard arguments.count == 3, let operation = HotPath.Operation(rawValue: operationName), let iterations = Int(arguments[2]), iterations > 0 else {
    let names = HotPath.Operation.allCases.map(\.rawValue).joined(separator: "|")
    FileHandle.standardError.write(Data("usage: hot-path-ops (\(names))[+sealed] ITERATIONS (> 0)\n".utf8))
    exit(64)
}

let done = DispatchSemaphore(value: 0)
nonisolated(unsafe) var failure: (any Error)?
Task.detached {
    do {
        let hotPath = try await HotPath.make(sealed: sealed)
        for iteration in 0..<200 {
            try await hotPath.run(operation, iteration: iteration)
        }
        hot_path_callgrind_zero()
        for iteration in 200..<(200 + iterations) {
            try await hotPath.run(operation, iteration: iteration)
        }
        hot_path_callgrind_dump("measured")
        try await hotPath.close()
    } catch {
        failure = error
    }
    done.signal()
}
done.wait()
if let failure {
    FileHandle.standardError.write(Data("hot-path-ops \(operation.rawValue): \(failure)\n".utf8))
    exit(1)
}

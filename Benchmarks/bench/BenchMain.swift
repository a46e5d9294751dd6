import Dispatch

/// The entry point: runs ``Bench`` on a detached task while the main thread waits on a
/// semaphore. An `async` main would park the main thread in libdispatch's `dispatch_main`,
/// where valgrind 3.19 crashes, and `Benchmarks/postgres-callgrind.sh` runs bench under
/// callgrind.
@main
enum BenchMain {
    static func main() {
        let done = DispatchSemaphore(value: 0)
        Task.detached {
            await Bench.main()
            done.signal()
        }
        done.wait()
    }
}

// libFuzzer target for StoreURL. Built by `bash .ci/fuzz` with
// `-sanitize=fuzzer -DFUZZING`, libFuzzer supplies `main`. Built normally, it is a
// reproducer: pass input files as arguments to replay them.
import SessionStoreTestSupport

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzStoreURL(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    FuzzChecks.fuzz("fuzz-StoreURL", data, size, FuzzChecks.storeURL)
}

#if !FUZZING
@main
struct Reproducer {
    static func main() throws {
        try FuzzChecks.replay("fuzz-StoreURL", FuzzChecks.storeURL)
    }
}
#endif

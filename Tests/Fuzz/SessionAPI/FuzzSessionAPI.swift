// libFuzzer target for the public Session API. Built by `bash .ci/fuzz` with
// `-sanitize=fuzzer -DFUZZING`, libFuzzer supplies `main`. Built normally, it is a
// reproducer: pass input files as arguments to replay them.
import SessionStoreTestSupport

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzSessionAPI(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    FuzzChecks.fuzz("fuzz-SessionAPI", data, size, FuzzChecks.sessionAPI)
}

#if !FUZZING
@main
struct Reproducer {
    static func main() throws {
        try FuzzChecks.replay("fuzz-SessionAPI", FuzzChecks.sessionAPI)
    }
}
#endif

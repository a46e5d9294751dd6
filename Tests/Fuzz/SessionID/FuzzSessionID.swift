// libFuzzer target for SessionID. Built by `bash .ci/fuzz` with
// `-sanitize=fuzzer -DFUZZING`, libFuzzer supplies `main`. Built normally, it is a
// reproducer: pass input files as arguments to replay them.
import SessionStoreTestSupport

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzSessionID(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    FuzzChecks.fuzz("fuzz-SessionID", data, size, FuzzChecks.sessionID)
}

#if !FUZZING
@main
struct Reproducer {
    static func main() throws {
        try FuzzChecks.replay("fuzz-SessionID", FuzzChecks.sessionID)
    }
}
#endif

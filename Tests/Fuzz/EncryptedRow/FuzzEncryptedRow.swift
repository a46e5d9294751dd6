// libFuzzer target for the encrypted row header and envelope (EncryptedRow). Built by `bash .ci/fuzz` with
// `-sanitize=fuzzer -DFUZZING`, libFuzzer supplies `main`. Built normally, it is a
// reproducer: pass input files as arguments to replay them.
import SessionStoreTestSupport

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzEncryptedRow(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    FuzzChecks.fuzz("fuzz-encrypted-row", data, size, FuzzChecks.encryptedRow)
}

#if !FUZZING
@main
struct Reproducer {
    static func main() throws {
        try FuzzChecks.replay("fuzz-encrypted-row", FuzzChecks.encryptedRow)
    }
}
#endif

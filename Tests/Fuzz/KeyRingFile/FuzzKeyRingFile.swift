// libFuzzer target for EncryptionKeyRing(parsing:), the key file named by encryption_keys=. Built by `bash .ci/fuzz` with
// `-sanitize=fuzzer -DFUZZING`, libFuzzer supplies `main`. Built normally, it is a
// reproducer: pass input files as arguments to replay them.
import SessionStoreTestSupport

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzKeyRingFile(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    FuzzChecks.fuzz("fuzz-key-ring-file", data, size, FuzzChecks.keyRingFile)
}

#if !FUZZING
@main
struct Reproducer {
    static func main() throws {
        try FuzzChecks.replay("fuzz-key-ring-file", FuzzChecks.keyRingFile)
    }
}
#endif

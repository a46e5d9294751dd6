// libFuzzer target for AttributeCodec (issue 3). Built by `bash .ci/fuzz` with
// `-sanitize=fuzzer -DFUZZING`, libFuzzer supplies `main`. Built normally, it is a
// reproducer: pass input files as arguments to replay them.
import SessionStoreTesting

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzAttributeCodec(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = data.map { Array(UnsafeBufferPointer(start: $0, count: size)) } ?? []
    if let failure = FuzzChecks.attributeCodec(bytes) {
        fatalError("fuzz-AttributeCodec: \(failure)")
    }
    return 0
}

#if !FUZZING
import Foundation

@main
struct Reproducer {
    static func main() throws {
        for path in CommandLine.arguments.dropFirst() {
            let bytes = Array(try Data(contentsOf: URL(fileURLWithPath: path)))
            bytes.withUnsafeBufferPointer { _ = fuzzAttributeCodec($0.baseAddress, $0.count) }
            print("ok \(path)")
        }
    }
}
#endif

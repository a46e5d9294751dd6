import Foundation
import SessionStoreTestSupport
import Testing

/// Replays the seeds and every input the fuzzers (`bash .ci/fuzz`) ever failed on, so a
/// fixed crash stays fixed.
@Suite("Fuzz regressions")
struct FuzzRegressionTests {
    static let fuzzDirectory = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("Fuzz")

    static func inputs(_ target: String) throws -> [URL] {
        var files: [URL] = []
        for kind in ["Seeds", "Regressions"] {
            let directory = fuzzDirectory.appendingPathComponent(kind).appendingPathComponent(target)
            guard FileManager.default.fileExists(atPath: directory.path) else { continue }
            files += try FileManager.default.contentsOfDirectory(at: directory, includingPropertiesForKeys: nil)
                .filter { !$0.lastPathComponent.hasPrefix(".") }
        }
        return files
    }

    static func replay(_ target: String, _ check: ([UInt8]) -> String?) throws -> Int {
        let files = try inputs(target)
        for file in files {
            let failure = check(Array(try Data(contentsOf: file)))
            #expect(failure == nil, "\(target) input \(file.lastPathComponent): \(failure ?? "")")
        }
        return files.count
    }

    @Test func sessionIDInputsPass() throws {
        #expect(try Self.replay("fuzz-session-id", FuzzChecks.sessionID) >= 2)
    }

    @Test func keyRingFileInputsPass() throws {
        #expect(try Self.replay("fuzz-key-ring-file", FuzzChecks.keyRingFile) >= 2)
    }

    @Test func encryptedRowInputsPass() throws {
        #expect(try Self.replay("fuzz-encrypted-row", FuzzChecks.encryptedRow) >= 3)
    }

    @Test func attributeCodecInputsPass() throws {
        #expect(try Self.replay("fuzz-attribute-codec", FuzzChecks.attributeCodec) >= 2)
    }

    @Test func sessionAPIInputsPass() throws {
        #expect(try Self.replay("fuzz-session-api", FuzzChecks.sessionAPI) >= 1)
    }

    @Test func storeURLInputsPass() throws {
        #expect(try Self.replay("fuzz-store-url", FuzzChecks.storeURL) >= 3)
    }
}

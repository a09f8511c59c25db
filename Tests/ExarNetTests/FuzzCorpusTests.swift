import ExarFuzzTargets
import Foundation
import Testing

/// Every committed fuzz input (the seed corpus and each finding kept as a regression) runs through
/// the same code as the fuzzers, in the ordinary test build: a finding that comes back fails here.
@Suite struct FuzzCorpusTests {
    private static let fuzzFolder = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fuzz")

    private func inputs(_ target: String) throws -> [URL] {
        var files: [URL] = []
        for kind in ["corpus", "regressions"] {
            let folder = Self.fuzzFolder.appendingPathComponent(kind).appendingPathComponent(target)
            let names = (try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? []
            files += names.sorted().map { folder.appendingPathComponent($0) }
        }
        return files
    }

    @Test func protocolInputs() throws {
        let files = try inputs("protocol")
        #expect(files.count >= 5)
        for file in files {
            let bytes = try Data(contentsOf: file)
            bytes.withUnsafeBytes { FuzzTargets.protocolInput($0) }
        }
    }

    @Test func segmentInputs() throws {
        let files = try inputs("segment")
        #expect(files.count >= 4)
        for file in files {
            let folder = NSTemporaryDirectory() + "exar-fuzz-replay-" + UUID().uuidString
            defer { try? FileManager.default.removeItem(atPath: folder) }
            let bytes = try Data(contentsOf: file)
            bytes.withUnsafeBytes { FuzzTargets.segmentFile($0, folder: folder) }
        }
    }
}

import ExarCore
import ExarModel
import Foundation
import Testing

/// `CollectionVerifier` on real segment files: the reports of `exar-inspect list` and `verify`.
@Suite struct CollectionVerifierTests {
    /// 300 events of about 100 bytes over several 4 KiB segments.
    private func makeCollection(_ folder: TemporaryFolder) async throws -> Database {
        let database = try makeDatabase(folder, segmentSize: 4096, indexInterval: 256)
        _ = try await database.collection("c").publishNumbered(1, count: 300)
        return database
    }

    @Test func listGivesEventsIdsAndStateOfEachSegment() async throws {
        let folder = TemporaryFolder()
        let database = try await makeCollection(folder)
        let segments = try CollectionVerifier.list(directory: folder.path + "/c")
        #expect(segments.count > 3)
        #expect(segments.map(\.name) == folder.files(in: "c", suffix: ".log").map { String($0.split(separator: "/").last!) })
        #expect(segments.map(\.events).reduce(0, +) == 300)
        #expect(segments.first?.firstId == 1)
        #expect(segments.last?.lastId == 300)
        for (segment, next) in zip(segments, segments.dropFirst()) {
            #expect(segment.events > 0 && segment.lastId! - segment.firstId! + 1 == segment.events)
            #expect(next.firstId == segment.lastId! + 1)
        }
        #expect(segments.dropLast().allSatisfy { $0.state == .sealed })
        #expect(segments.last?.state == .active)
        #expect(segments.allSatisfy { $0.problem == nil && $0.fileSize == 4096 && $0.bytesUsed <= 4096 })
        #expect(segments.first?.firstTimestamp == 1 && segments.last?.lastTimestamp == 300)
        database.close()
        // A clean close seals the last segment too.
        #expect(try CollectionVerifier.list(directory: folder.path + "/c").last?.state == .sealed)
    }

    @Test func listOfAFolderWithoutSegmentsThrows() throws {
        let folder = TemporaryFolder()
        #expect(throws: ExarError.self) { try CollectionVerifier.list(directory: folder.path) }
        #expect(throws: ExarError.self) { try CollectionVerifier.list(directory: folder.path + "/missing") }
        guard case .corrupt(let file, 0, _) = CollectionVerifier.verify(directory: folder.path) else {
            Issue.record("an empty folder verified ok")
            return
        }
        #expect(file == folder.path)
    }

    @Test func aFreshCollectionVerifiesOk() async throws {
        let folder = TemporaryFolder()
        let database = try await makeCollection(folder)
        let count = folder.files(in: "c", suffix: ".log").count
        // Also while the database has it open (as the running server does).
        #expect(CollectionVerifier.verify(directory: folder.path + "/c") == .ok(segments: count, events: 300))
        database.close()
        let report = CollectionVerifier.verify(directory: folder.path + "/c")
        #expect(report == .ok(segments: count, events: 300))
        #expect(report.message == "ok: \(count) segments, 300 events, checksums, ids, index, tag bitmaps and time index consistent")
        // One segment file on its own.
        let second = try #require(folder.files(in: "c", suffix: ".log").dropFirst().first)
        let events = try CollectionVerifier.list(segmentFiles: [second])[0].events
        #expect(CollectionVerifier.verify(segmentFiles: [second]) == .ok(segments: 1, events: events))
    }

    @Test func aFlippedByteInABatchIsReportedWithItsFileAndPosition() async throws {
        let folder = TemporaryFolder()
        try await makeCollection(folder).close()
        let victim = folder.files(in: "c", suffix: ".log")[1]
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: victim)))
        bytes[200] ^= 0x01  // inside the first batch (its header starts at 64, its records follow)
        try Data(bytes).write(to: URL(fileURLWithPath: victim))

        let report = CollectionVerifier.verify(directory: folder.path + "/c")
        guard case .corrupt(let file, let position, let reason) = report else {
            Issue.record("a flipped byte verified ok")
            return
        }
        #expect(file == victim)
        #expect(position == 64)
        #expect(reason.hasPrefix("checksum mismatch at 64"), "\(reason)")
        #expect(report.message == "corrupt: \(victim) at byte 64: \(reason)")
        // list shows the same problem on that segment, and stops its count there.
        let listed = try CollectionVerifier.list(directory: folder.path + "/c")[1]
        #expect(listed.problem?.position == 64 && listed.problem?.reason == reason)
        #expect(listed.events == 0 && listed.bytesUsed == 64)
    }
}

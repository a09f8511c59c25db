@testable import ExarCore
import ExarModel
import Foundation
import Testing

/// `Locate` over the time index, against a reference computed here from what was published.
@Suite struct TimeIndexTests {
    /// The offset `Locate` must answer: the id before the first event (in id order) stamped at or
    /// after `time`, or the last id.
    private func expectedOffset(_ stamps: [(id: UInt64, timestamp: UInt64)], _ time: UInt64) -> UInt64 {
        stamps.first { $0.timestamp >= time }.map { $0.id - 1 } ?? (stamps.last?.id ?? 0)
    }

    /// Publishes `count` events whose timestamps rise overall but jump back and forth (as clients'
    /// clocks do); returns the ids and timestamps.
    private func publishJittered(_ collection: ExarCore.Collection, count: Int, start: UInt64,
                                 seed: inout UInt64) async throws -> [(id: UInt64, timestamp: UInt64)] {
        var stamps: [(UInt64, UInt64)] = []
        var base = start
        var pending: [Event] = []
        for number in 0..<count {
            seed = seed &* 6364136223846793005 &+ 1442695040888963407
            base += (seed >> 60)  // 0...15 ms forwards
            let jitter = (seed >> 33) % 400  // up to 400 ms back
            let timestamp = max(1, base > jitter ? base - jitter : 1)
            pending.append(Event(timestamp: timestamp, tags: ["t\(number % 7)"], data: sampleData(number, size: 60)))
            if pending.count == 50 || number == count - 1 {
                let ids = try await collection.publish(pending)
                for (id, event) in zip(ids, pending) { stamps.append((id, event.timestamp)) }
                pending.removeAll()
            }
        }
        return stamps
    }

    private func probeTimes(_ stamps: [(id: UInt64, timestamp: UInt64)], seed: inout UInt64) -> [UInt64] {
        var times: [UInt64] = [0, 1, stamps[0].timestamp, stamps.last!.timestamp, stamps.last!.timestamp + 1, UInt64.max]
        let top = stamps.map(\.timestamp).max()!
        for _ in 0..<300 {
            seed = seed &* 6364136223846793005 &+ 1442695040888963407
            times.append((seed >> 20) % (top + 50))
        }
        for stamp in stamps.prefix(2000) where stamp.id % 37 == 0 { times.append(stamp.timestamp) }
        return times
    }

    @Test(arguments: [Compression.none, .lz4])
    func locateMatchesTheReferenceAcrossSegmentsAndAfterReopening(compression: Compression) async throws {
        let folder = TemporaryFolder()
        var seed: UInt64 = 42
        var stamps: [(id: UInt64, timestamp: UInt64)] = []
        do {
            let database = try makeDatabase(folder, segmentSize: 16 * 1024, indexInterval: 512, compression: compression)
            let collection = try database.collection("c")
            #expect(collection.locate(timestamp: 5) == 0)
            stamps = try await publishJittered(collection, count: 3000, start: 1_700_000_000_000, seed: &seed)
            #expect(collection.log.segments.count > 2)
            for time in probeTimes(stamps, seed: &seed) {
                #expect(collection.locate(timestamp: time) == expectedOffset(stamps, time), "time \(time)")
            }
            database.close()
        }
        // Reopened: sealed segments' time files are trusted, the last one's is rebuilt.
        let database = try makeDatabase(folder, segmentSize: 16 * 1024, indexInterval: 512, compression: compression)
        let collection = try database.collection("c")
        for time in probeTimes(stamps, seed: &seed) {
            #expect(collection.locate(timestamp: time) == expectedOffset(stamps, time), "time \(time)")
        }
        // Subscribing from the located offset starts at the first event at or after the time.
        let time = stamps[1234].timestamp
        let offset = collection.locate(timestamp: time)
        let first = try collection.read(Query(offset: offset, limit: 1)).first
        #expect(first?.timestamp ?? 0 >= time)
        #expect(stamps.filter { $0.id <= offset }.allSatisfy { $0.timestamp < time })
        database.close()
    }

    @Test func locateMatchesTheReferenceAfterRetentionRemovedTheStart() async throws {
        let folder = TemporaryFolder()
        var seed: UInt64 = 7
        var stamps: [(id: UInt64, timestamp: UInt64)] = []
        do {
            let database = try makeDatabase(folder, segmentSize: 16 * 1024, indexInterval: 512)
            stamps = try await publishJittered(try database.collection("c"), count: 4000, start: 1_700_000_000_000, seed: &seed)
            database.close()
        }
        // Reopened with a bound of a few segments: the pass at open deletes the oldest ones.
        let database = try Database(configuration: DatabaseConfiguration(
            logsPath: folder.path,
            defaults: CollectionConfiguration(segmentSize: 16 * 1024, indexIntervalBytes: 512,
                                              retention: RetentionPolicy(maxBytes: 5 * 28 * 1024))))
        defer { database.close() }
        let collection = try database.collection("c")
        let deadline = Date(timeIntervalSinceNow: 10)
        while collection.firstId == 1 && Date() < deadline { try await Task.sleep(for: .milliseconds(5)) }
        let first = collection.firstId
        #expect(first > 1000, "retention kept \(first)")
        let retained = stamps.filter { $0.id >= first }
        for time in probeTimes(stamps, seed: &seed) {
            // Over what is retained: a time before it all answers the id before the first retained one.
            #expect(collection.locate(timestamp: time) == expectedOffset(retained, time), "time \(time)")
        }
        #expect(collection.locate(timestamp: 0) == first - 1)
    }

    @Test func missingOrDamagedTimeFilesAreRebuiltAndVerifyChecksThem() async throws {
        let folder = TemporaryFolder()
        var seed: UInt64 = 7
        var stamps: [(id: UInt64, timestamp: UInt64)] = []
        do {
            let database = try makeDatabase(folder, segmentSize: 16 * 1024, indexInterval: 512)
            stamps = try await publishJittered(try database.collection("c"), count: 1500, start: 1_000_000, seed: &seed)
            database.close()
        }
        let directory = folder.path + "/c"
        #expect(CollectionVerifier.verify(directory: directory) == .ok(segments: folder.files(in: "c", suffix: ".log").count,
                                                                         events: 1500))
        let timeFiles = folder.files(in: "c", suffix: ".time")
        #expect(timeFiles.count == folder.files(in: "c", suffix: ".log").count)
        // A wrong entry is found by verify.
        let damaged = timeFiles[1]
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: damaged)))
        bytes[Format.Time.headerSize + 2 * Format.Time.entrySize + 5] ^= 0x40
        try Data(bytes).write(to: URL(fileURLWithPath: damaged))
        guard case .corrupt(let file, _, let reason) = CollectionVerifier.verify(directory: directory) else {
            Issue.record("verify missed a damaged time entry")
            return
        }
        #expect(file == damaged)
        #expect(reason.contains("time"))
        // Files of a collection written before time indexes existed: rebuilt on open.
        for file in timeFiles { try FileManager.default.removeItem(atPath: file) }
        let lines = LogLines()
        let database = try makeDatabase(folder, segmentSize: 16 * 1024, indexInterval: 512, log: lines.handler)
        let collection = try database.collection("c")
        #expect(lines.all.contains { $0.contains(".time") && $0.contains("rebuilt") })
        for time in probeTimes(stamps, seed: &seed) {
            #expect(collection.locate(timestamp: time) == expectedOffset(stamps, time), "time \(time)")
        }
        database.close()
        #expect(CollectionVerifier.verify(directory: directory) == .ok(segments: timeFiles.count, events: 1500))
    }
}

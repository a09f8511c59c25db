import ExarCore
import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Damage done to a stopped server's files, as crashes, bad disks and people do it.
enum Damage: String, CaseIterable, CustomTestStringConvertible {
    case randomBytesAfterTheLastBatch
    case halfWrittenLastBatch
    case flippedBitInASealedSegment
    case truncatedIndex
    case deletedTagBitmaps
    case zeroLengthSegmentFile

    var testDescription: String { rawValue }
}

/// The server started on damaged files: it serves every valid event, never a corrupt one, logs
/// what it cut or rebuilt, and `exar-inspect verify` points at the same file.
@Suite(.serialized) struct DamagedFilesTests {
    static let eventCount = 1000

    private func data(_ id: Int) -> String { "event-\(id)-" + String(repeating: "d", count: id % 40) }

    private func bytes(_ path: String) throws -> [UInt8] { [UInt8](try Data(contentsOf: URL(fileURLWithPath: path))) }
    private func write(_ bytes: [UInt8], _ path: String) throws { try Data(bytes).write(to: URL(fileURLWithPath: path)) }
    private func load64(_ bytes: [UInt8], at offset: Int) -> Int {
        bytes.withUnsafeBytes { Int($0.loadUnaligned(fromByteOffset: offset, as: UInt64.self)) }
    }

    @Test(arguments: Damage.allCases)
    func theServerServesWhatIsValidAndSaysWhatItDid(_ damage: Damage) async throws {
        let server = try ExarProcess(database: ["segment_size = 8192", "index_interval_bytes = 256"])
        defer { server.removeFiles() }
        try await server.start()
        let writer = try LineClient(port: server.port)
        writer.send("Connect\tc\n")
        #expect(writer.readLine() == "Connected")
        for start in stride(from: 1, through: Self.eventCount, by: 4) {
            writer.send((start..<(start + 4)).map { "Publish\ttag\($0 % 3)\t\($0)\t\(data($0))\n" }.joined())
            #expect(writer.readLines(4) == (start..<(start + 4)).map { "Published\t\($0)" })
        }
        #expect(server.stop() == 0)

        let collection = server.dataFolder + "/c"
        let segments = try SegmentInspector.segmentPaths(in: collection)
        #expect(segments.count > 5)
        let last = segments[segments.count - 1]
        let victim: String
        var servedAtLeast = Self.eventCount
        var logSays: String
        var cleanAfterwards = true
        switch damage {
        case .randomBytesAfterTheLastBatch:
            victim = last
            var file = try bytes(last)
            let end = load64(file, at: 32)
            var generator = SystemRandomNumberGenerator()
            for offset in 0..<300 { file[end + offset] = UInt8.random(in: 1...255, using: &generator) }
            try write(file, last)
            logSays = "cut 300 bytes from position \(end)"
        case .halfWrittenLastBatch:
            // As a crash in the middle of the last batch leaves it: not sealed, the batch half there.
            victim = last
            var file = try bytes(last)
            let end = load64(file, at: 32)
            let inspector = try SegmentInspector(logPath: last)
            let start = try #require(inspector.batchStarts(upTo: end).keys.max())
            let lost = Int(load64(file, at: 40)) - Int(try #require(inspector.batchStarts(upTo: end)[start]) - inspector.baseId)
            for offset in (start + (end - start) / 2)..<end { file[offset] = 0 }
            for offset in 12..<16 { file[offset] = 0 }  // the sealed flag
            for offset in 32..<48 { file[offset] = 0 }  // end of data and event count
            try write(file, last)
            servedAtLeast = Self.eventCount - lost
            logSays = "cut \((end - start) / 2) bytes from position \(start)"
        case .flippedBitInASealedSegment:
            victim = segments[2]
            var file = try bytes(victim)
            file[load64(file, at: 32) / 2] ^= 0x10
            try write(file, victim)
            servedAtLeast = Self.eventCount - 8
            logSays = "damaged batch in \(victim)"
            cleanAfterwards = false  // the damage stays (it is not deleted), and verify keeps saying so
        case .truncatedIndex:
            victim = String(segments[1].dropLast(4)) + ".index"
            try write(Array(try bytes(victim).prefix(70)), victim)
            logSays = "\(victim): index, tag bitmaps and time index rebuilt"
        case .deletedTagBitmaps:
            victim = String(segments[3].dropLast(4)) + ".tags"
            unlink(victim)
            logSays = "\(String(segments[3].dropLast(4))).index: index, tag bitmaps and time index rebuilt"
        case .zeroLengthSegmentFile:
            victim = collection + "/" + String(format: "%020d", Self.eventCount + 1) + ".log"
            #expect(FileManager.default.createFile(atPath: victim, contents: Data()))
            logSays = "segment file too small to hold events; removed"
        }

        let before = try runInspect(["verify", collection])
        #expect(before.status == 1)
        // verify names the damaged file (for a lost bitmap file: its index, read together with it).
        let named = damage == .deletedTagBitmaps ? String(victim.dropLast(5)) + ".index" : victim
        #expect(before.error.hasPrefix("corrupt: \(named) at byte "), "\(before.error)")

        try await server.start()
        let served = try #require(try readAllEvents(port: server.port))
        #expect(served.count >= servedAtLeast && served.count <= Self.eventCount)
        var previous = 0
        for event in served {
            let fields = event.split(separator: "\t", maxSplits: 3, omittingEmptySubsequences: false).map(String.init)
            let id = Int(fields[0]) ?? 0
            #expect(id > previous)
            previous = id
            #expect(fields == ["\(id)", "\(id)", "tag\(id % 3)", data(id)], "event \(id) served wrong")
        }
        // Tag queries still find exactly their events (bitmaps rebuilt where needed).
        let tagged = try LineClient(port: server.port)
        tagged.send("Connect\tc\nSubscribe\tfalse\t0\t0\ttag1\n")
        #expect(tagged.readLines(2) == ["Connected", "Subscribed"])
        let expectedTagged = served.filter { $0.contains("\ttag1\t") }.count
        #expect(tagged.readLines(expectedTagged + 1).last == "EndOfEventStream")
        // Publishing continues after the last event that is there.
        let next = damage == .halfWrittenLastBatch ? served.count + 1 : Self.eventCount + 1
        let more = try LineClient(port: server.port)
        more.send("Connect\tc\nPublish\tt\t1\tmore\n")
        #expect(more.readLines(2) == ["Connected", "Published\t\(next)"])
        #expect(server.log.contains(logSays), "the log does not say '\(logSays)':\n\(server.log)")
        #expect(server.stop() == 0)

        let after = try runInspect(["verify", collection])
        #expect((after.status == 0) == cleanAfterwards, "\(after.error)")
        if !cleanAfterwards { #expect(after.error.contains("corrupt: \(victim)")) }
    }

    @Test func repairCutsATornTailAndRebuildsAnIndexButNeverWhileTheServerRuns() async throws {
        let server = try ExarProcess(database: ["segment_size = 8192", "index_interval_bytes = 256"])
        defer { server.removeFiles() }
        try await server.start()
        let writer = try LineClient(port: server.port)
        writer.send("Connect\tc\n" + (1...300).map { "Publish\tt\t\($0)\t\(data($0))\n" }.joined())
        #expect(writer.readLines(301).last == "Published\t300")
        let collection = server.dataFolder + "/c"
        // While the server has the collection open, repair refuses and changes nothing.
        let refused = try runInspect(["repair", collection])
        #expect(refused.status != 0)
        #expect(refused.error.contains("in use by another process"), "\(refused.error)")
        #expect(server.stop() == 0)

        let segments = try SegmentInspector.segmentPaths(in: collection)
        let last = segments[segments.count - 1]
        var file = try bytes(last)
        let end = load64(file, at: 32)
        for offset in 0..<100 { file[end + offset] = 0xAB }
        try write(file, last)
        let index = String(segments[0].dropLast(4)) + ".index"
        try write(Array(try bytes(index).prefix(70)), index)
        #expect(try runInspect(["verify", collection]).status == 1)

        let repaired = try runInspect(["repair", collection])
        #expect(repaired.status == 0, "\(repaired.error)")
        #expect(repaired.output.contains("cut 100 bytes from position \(end)"), "\(repaired.output)")
        #expect(repaired.output.contains("\(index): index, tag bitmaps and time index rebuilt"), "\(repaired.output)")
        let verified = try runInspect(["verify", collection])
        #expect(verified.status == 0, "\(verified.error)")
        let again = try runInspect(["repair", collection])
        #expect(again.output.contains("nothing to repair"), "\(again.output)")
        // The server starts on the repaired folder with nothing left to do.
        try await server.start()
        #expect(try readAllEvents(port: server.port)?.count == 300)
        let more = try LineClient(port: server.port)
        more.send("Connect\tc\nPublish\tt\t1\tafter repair\n")
        #expect(more.readLines(2) == ["Connected", "Published\t301"])
        #expect(!server.log.contains("cut ") && !server.log.contains("rebuilt"), "\(server.log)")
        #expect(server.stop() == 0)
    }
}

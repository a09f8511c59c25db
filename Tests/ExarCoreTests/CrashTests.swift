import ExarCore
import ExarModel
import Foundation
import Testing

/// Runs the crash helper (built beside the test binary) and kills it with SIGKILL mid-publish.
@Suite struct CrashTests {
    private var helperPath: String {
        let executable = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
        return executable.deletingLastPathComponent().appendingPathComponent("exar-crash-helper").path
    }

    private func payload(_ number: Int) -> String {
        "event-\(number)-" + String(repeating: "abcdefgh", count: number % 13)
    }

    @Test func everyAcknowledgedEventSurvivesKillNine() async throws {
        #expect(FileManager.default.isExecutableFile(atPath: helperPath), "missing \(helperPath)")
        let folder = TemporaryFolder()
        var acknowledged: Set<UInt64> = []
        var lastAcknowledged: UInt64 = 0
        for round in 0..<6 {
            let compression = round % 2 == 0 ? "none" : "lz4"
            let start = try lastIdAfterReopen(folder, compression: compression) + 1
            let process = Process()
            process.executableURL = URL(fileURLWithPath: helperPath)
            process.arguments = [folder.path, "c", "16384", compression, String(start)]
            let output = Pipe()
            process.standardOutput = output
            try process.run()
            // Let it publish for a while (rolling segments), then kill it without warning.
            usleep(UInt32.random(in: 80_000...300_000))
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
            let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            for line in text.split(separator: "\n") {
                let parts = line.split(separator: " ")
                // A line cut by the kill is not an acknowledgement the test can rely on.
                guard parts.count == 2, let first = UInt64(parts[0]), let count = UInt64(parts[1]) else { continue }
                for id in first..<(first + count) { acknowledged.insert(id) }
                lastAcknowledged = max(lastAcknowledged, first + count - 1)
            }
        }
        #expect(acknowledged.count > 100, "the helper acknowledged too little to test anything")
        let database = try makeDatabase(folder, segmentSize: 16384, indexInterval: 512)
        let collection = try database.collection("c")
        let events = try collection.read(.all)
        // Ids are consecutive from 1, every acknowledged one is there, and every event is intact.
        #expect(events.map(\.id) == Array(1...UInt64(events.count)))
        #expect(UInt64(events.count) >= lastAcknowledged)
        let stored = Set(events.map(\.id))
        #expect(acknowledged.isSubset(of: stored))
        for event in events where event.data != payload(Int(event.id)) {
            Issue.record("event \(event.id) has data \(event.data)")
        }
        #expect(folder.files(in: "c", suffix: ".log").count > 3)
        #expect(try await collection.publish(Event(tags: ["t"], data: "next")) == UInt64(events.count) + 1)
        database.close()
    }

    /// Kill -9 while retention deletes segments (16 KiB segments, a bound of a few of them, so
    /// passes run at almost every roll), then reopen: the folder holds one run of consecutive ids
    /// from the first retained one, every acknowledged event from there on, every segment with its
    /// side files and no orphans.
    @Test func killNineDuringRetentionLeavesAConsistentCollection() async throws {
        #expect(FileManager.default.isExecutableFile(atPath: helperPath), "missing \(helperPath)")
        let folder = TemporaryFolder()
        var acknowledged: Set<UInt64> = []
        for _ in 0..<6 {
            let start = try lastIdAfterReopen(folder, compression: "none") + 1
            let process = Process()
            process.executableURL = URL(fileURLWithPath: helperPath)
            process.arguments = [folder.path, "c", "16384", "none", String(start), String(6 * 24 * 1024)]
            let output = Pipe()
            process.standardOutput = output
            try process.run()
            usleep(UInt32.random(in: 80_000...300_000))
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
            let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            for line in text.split(separator: "\n") {
                let parts = line.split(separator: " ")
                guard parts.count == 2, let first = UInt64(parts[0]), let count = UInt64(parts[1]) else { continue }
                for id in first..<(first + count) { acknowledged.insert(id) }
            }
        }
        #expect(acknowledged.count > 100, "the helper acknowledged too little to test anything")
        let database = try makeDatabase(folder, segmentSize: 16384, indexInterval: 512)
        defer { database.close() }
        let collection = try database.collection("c")
        let first = collection.firstId
        #expect(first > 1, "retention deleted nothing")
        let events = try collection.read(.all)
        #expect(events.map(\.id) == Array(first...collection.lastId))
        #expect(acknowledged.filter { $0 >= first }.isSubset(of: Set(events.map(\.id))))
        for event in events where event.data != payload(Int(event.id)) {
            Issue.record("event \(event.id) has data \(event.data)")
        }
        let logs = folder.files(in: "c", suffix: ".log").count
        for suffix in [".index", ".tags", ".time"] {
            #expect(folder.files(in: "c", suffix: suffix).count == logs, "\(suffix) files")
        }
        #expect(!collection.recoveryNotes.contains { $0.kind == .corruptSealedSegment })
    }

    private func lastIdAfterReopen(_ folder: TemporaryFolder, compression: String) throws -> UInt64 {
        let database = try makeDatabase(folder, segmentSize: 16384, indexInterval: 512,
                                        compression: compression == "lz4" ? .lz4 : .none)
        defer { database.close() }
        return try database.collection("c").lastId
    }
}

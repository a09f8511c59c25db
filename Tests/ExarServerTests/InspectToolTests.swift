import ExarCore
import ExarModel
import Foundation
import Testing

/// Runs the real `exar-inspect` binary (built beside the test binary) on real segments.
@Suite struct InspectToolTests {
    /// A collection of 600 events over several small segments; the database stays open (as a server's would).
    private func makeCollection() async throws -> (String, Database) {
        let folder = NSTemporaryDirectory() + "exar-inspect-" + UUID().uuidString
        let database = try Database(configuration: DatabaseConfiguration(
            logsPath: folder, defaults: CollectionConfiguration(segmentSize: 4096, indexIntervalBytes: 256)))
        let collection = try database.collection("c")
        for start in stride(from: 1, through: 600, by: 20) {
            _ = try await collection.publish((start..<(start + 20)).map {
                Event(timestamp: UInt64($0), tags: $0 % 3 == 0 ? ["three", "all"] : ["all"], data: "event \($0)")
            })
        }
        return (folder + "/c", database)
    }

    @Test func listDumpIndexAndTagsOfALiveCollection() async throws {
        let (path, database) = try await makeCollection()
        defer { database.close(); try? FileManager.default.removeItem(atPath: path) }
        let list = try runInspect([path])
        #expect(list.status == 0)
        let lines = list.output.split(separator: "\n")
        let rows = lines.dropFirst().filter { !$0.hasPrefix("#") }
        #expect(rows.count > 3)
        #expect(lines.last?.hasPrefix("# first retained id 1, last id 600, \(rows.count) segments, ") == true, "\(lines.last ?? "")")
        let counts = rows.map { Int($0.split(separator: "\t")[2])! }
        #expect(counts.reduce(0, +) == 600)
        #expect(rows.last!.split(separator: "\t")[1] == "active")

        let dump = try runInspect(["dump", path, "--from", "299", "--to", "303", "--tag", "three"])
        #expect(dump.output == "Event\t300\t300\tthree all\tevent 300\nEvent\t303\t303\tthree all\tevent 303\n")
        let json = try runInspect(["dump", path, "--from", "7", "--to", "7", "--json"])
        let object = try JSONSerialization.jsonObject(with: Data(json.output.utf8)) as? [String: Any]
        #expect(object?["id"] as? Int == 7)
        #expect(object?["data"] as? String == "event 7")

        let index = try runInspect(["index", path])
        #expect(index.status == 0 && index.output.contains("entry\tid\tposition\n0\t1\t64\n"))
        let tags = try runInspect(["tags", path])
        #expect(tags.status == 0 && tags.output.split(separator: "\n").count == rows.count + 1)
        let verify = try runInspect(["verify", path])
        #expect(verify.status == 0, "\(verify.error)")
        #expect(verify.output.contains("600 events"))
    }

    @Test func verifyFindsAFlippedBitAndAMissingTagBitmap() async throws {
        let (path, database) = try await makeCollection()
        database.close()
        defer { try? FileManager.default.removeItem(atPath: path) }
        let segments = try SegmentInspector.segmentPaths(in: path)
        let victim = segments[1]
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: victim)))
        bytes[200] ^= 0x01
        try Data(bytes).write(to: URL(fileURLWithPath: victim))
        let bad = try runInspect(["verify", path])
        #expect(bad.status == 1)
        #expect(bad.error.contains("corrupt: \(victim) at byte "), "\(bad.error)")
        // verify never changes anything: the damage is still there.
        #expect([UInt8](try Data(contentsOf: URL(fileURLWithPath: victim)))[200] == bytes[200])

        bytes[200] ^= 0x01
        try Data(bytes).write(to: URL(fileURLWithPath: victim))
        #expect(try runInspect(["verify", path]).status == 0)
        let tagsFile = String(segments[2].dropLast(4)) + ".tags"
        var tagBytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: tagsFile)))
        for offset in 64..<(64 + 8192) { tagBytes[offset] = 0 }
        try Data(tagBytes).write(to: URL(fileURLWithPath: tagsFile))
        let stale = try runInspect(["verify", path])
        #expect(stale.status == 1)
        #expect(stale.error.contains("missing from the tag bitmaps"), "\(stale.error)")
    }
}

import ExarCore
import ExarModel
import Foundation
import Testing

/// `sync = always` through the real server: its event loops sync each turn's group themselves
/// while the disk is fast, the writer thread takes the groups that roll a segment, and every
/// connection still gets its answers in order, each id once.
@Suite struct DurableServerTests {
    /// About 100 bytes: 1,800 of them fill a few 64 KiB segments.
    static func data(_ connection: Int, _ number: Int) -> String {
        "\(connection)-\(number)-" + String(repeating: "d", count: 90)
    }

    @Test func pipelinedConnectionsGetOrderedAnswersAndEveryEventIsKept() async throws {
        // 64 KiB segments: rolls every few hundred events, so both paths answer.
        let server = try await TestServer(segmentSize: 64 * 1024, sync: .always)
        let connections = 6
        let perConnection = 300
        let burst = 10
        let answers = try await withThrowingTaskGroup(of: [UInt64].self) { group in
            for number in 0..<connections {
                group.addTask {
                    let client = try LineClient(port: server.port)
                    client.send("Connect\tdurable\n")
                    guard client.readLine() == "Connected" else { throw POSIXError(.EPROTO) }
                    var ids: [UInt64] = []
                    for start in stride(from: 0, to: perConnection, by: burst) {
                        let lines = (start..<(start + burst)).map { "Publish\tc\(number)\t0\t\(Self.data(number, $0))\n" }
                        client.send(lines.joined())
                        for line in client.readLines(burst) {
                            guard line.hasPrefix("Published\t"), let id = UInt64(line.dropFirst(10)) else {
                                throw POSIXError(.EBADMSG)
                            }
                            ids.append(id)
                        }
                    }
                    return ids
                }
            }
            var all: [[UInt64]] = []
            for try await ids in group { all.append(ids) }
            return all
        }
        for ids in answers {
            #expect(ids.count == perConnection)
            #expect(ids == ids.sorted(), "a connection's answers came out of order")
        }
        #expect(answers.flatMap { $0 }.sorted() == Array(1...UInt64(connections * perConnection)))
        let statistics = try server.database.collection("durable").statistics
        #expect(statistics.syncs.count >= 1 && statistics.segments > 1)
        try await server.stop()
        server.database.close()
        // Every acknowledged event is there after reopening, with the data its answer named.
        let reopened = try Database(configuration: DatabaseConfiguration(
            logsPath: server.folder, defaults: CollectionConfiguration(segmentSize: 64 * 1024)))
        let events = try reopened.collection("durable").read(.all)
        #expect(events.count == connections * perConnection)
        var byConnection: [String: [String]] = [:]
        for event in events { byConnection[event.tags.first ?? "", default: []].append(event.data) }
        for number in 0..<connections {
            #expect(byConnection["c\(number)"] == (0..<perConnection).map { Self.data(number, $0) })
        }
        reopened.close()
        server.removeFiles()
    }
}

import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// One publisher's record: what it sent, and which of it the server acknowledged with which id.
private final class PublisherLog: @unchecked Sendable {
    var sent: Set<String> = []
    var acknowledged: [(id: UInt64, line: String)] = []
    var unexpected: [String] = []
}

/// Publishes batches of 32 over one blocking connection until the server goes away.
/// Each event is recorded as its event line shows it (`<timestamp>\t<tags>\t<data>`), with data
/// unique to this publisher and round.
private func publishUntilTheServerDies(port: Int, publisher: Int, round: Int, into log: PublisherLog) {
    guard let client = try? LineClient(port: port) else { return }
    client.send("Connect\tc\n")
    guard client.readLine() == "Connected" else { return }
    var sequence = 0
    while true {
        var batch = ""
        var lines: [String] = []
        for _ in 0..<32 {
            sequence += 1
            let filler = String(repeating: Character(Unicode.Scalar(UInt8(97 + sequence % 26))), count: sequence % 300)
            let (timestamp, tags, data) = (round * 1_000_000 + sequence, "p\(publisher) r\(round)",
                                           "p\(publisher)-r\(round)-\(sequence)-\(filler)")
            // As an event line shows it: timestamp, tags, data.
            let line = "\(timestamp)\t\(tags)\t\(data)"
            lines.append(line)
            log.sent.insert(line)
            batch += "Publish\t\(tags)\t\(timestamp)\t\(data)\n"
        }
        client.send(batch)
        for line in lines {
            guard let answer = client.readLine() else { return }
            guard answer.hasPrefix("Published\t"), let id = UInt64(answer.dropFirst(10)) else {
                log.unexpected.append(answer)
                return
            }
            log.acknowledged.append((id, line))
        }
    }
}

@Suite(.serialized) struct CrashUnderLoadTests {
    /// Checks the stored events with ids above `offset` against the acknowledgements of those ids;
    /// returns the last id.
    private func verify(_ server: ExarProcess, after offset: UInt64 = 0, acknowledged: [UInt64: String],
                        sent: Set<String>) throws -> UInt64 {
        let stored = try #require(try readAllEvents(port: server.port, after: offset),
                                  "the stream did not end with EndOfEventStream")
        var lastId = offset
        var storedById: [UInt64: String] = [:]
        for event in stored {
            let id = UInt64(event.prefix { $0 != "\t" }) ?? 0
            #expect(id == lastId + 1, "ids must be consecutive from 1: \(id) after \(lastId)")
            lastId = id
            let body = String(event.drop { $0 != "\t" }.dropFirst())
            storedById[id] = body
            #expect(sent.contains(body), "event \(id) was never sent: \(body.prefix(80))")
        }
        for (id, line) in acknowledged where id > offset {
            #expect(storedById[id] == line, "acknowledged event \(id) is missing or differs")
        }
        return lastId
    }

    @Test func killNineUnderLoadLosesNothingAcknowledged() async throws {
        let server = try ExarProcess(database: ["segment_size = 65536"])
        defer { server.removeFiles() }
        var acknowledged: [UInt64: String] = [:]
        var verifiedUpTo: UInt64 = 0
        var sent: Set<String> = []
        var generator = SystemRandomNumberGenerator()
        let rounds = 8
        for round in 0..<rounds {
            // Compression on and off in turns, over the same collection.
            try server.configure(database: ["segment_size = 65536", "compression = \"\(round % 2 == 0 ? "none" : "lz4")\""])
            try await server.start()
            // Each round checks what the rounds since the last check added; the end checks it all.
            let lastId = try verify(server, after: verifiedUpTo, acknowledged: acknowledged, sent: sent)
            verifiedUpTo = lastId
            // Publishing continues at the next id.
            let probe = try LineClient(port: server.port)
            let probeLine = "7\tprobe\tprobe-\(round)"
            probe.send("Connect\tc\nPublish\tprobe\t7\tprobe-\(round)\n")
            #expect(probe.readLines(2) == ["Connected", "Published\t\(lastId + 1)"])
            acknowledged[lastId + 1] = probeLine
            sent.insert(probeLine)

            let logs = (0..<4).map { _ in PublisherLog() }
            let finished = DispatchGroup()
            for (publisher, log) in logs.enumerated() {
                finished.enter()
                let port = server.port
                Thread {
                    publishUntilTheServerDies(port: port, publisher: publisher, round: round, into: log)
                    finished.leave()
                }.start()
            }
            try await Task.sleep(for: .milliseconds(Int.random(in: 150...700, using: &generator)))
            #expect(server.stop(SIGKILL) == SIGKILL)
            _ = finished.wait(timeout: .now() + 30)
            for log in logs {
                #expect(log.unexpected.isEmpty, "unexpected answers: \(log.unexpected.prefix(3))")
                #expect(log.acknowledged.count > 0, "a publisher got nothing acknowledged before the kill")
                sent.formUnion(log.sent)
                for (id, line) in log.acknowledged {
                    #expect(acknowledged[id] == nil, "id \(id) acknowledged twice")
                    acknowledged[id] = line
                }
            }
        }
        try await server.start()
        let lastId = try verify(server, acknowledged: acknowledged, sent: sent)
        #expect(lastId >= UInt64(acknowledged.count))
        let segments = try FileManager.default.contentsOfDirectory(atPath: server.dataFolder + "/c").filter { $0.hasSuffix(".log") }
        #expect(segments.count > 2, "the rounds should have rolled segments")
        #expect(server.stop() == 0)
    }
}

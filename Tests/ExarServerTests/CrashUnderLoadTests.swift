import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The real `exar-db` process stopped under load: by SIGKILL (a crash) and by SIGTERM (a graceful stop).
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

    @Test func sigtermUnderLoadAnswersOrRefusesEveryPublishAndExitsZero() async throws {
        let server = try ExarProcess(database: ["segment_size = 65536"])
        defer { server.removeFiles() }
        try await server.start()
        let publishers = (0..<4).map { _ in PublisherLog() }
        let subscribers = (0..<2).map { _ in SubscriberLog() }
        let finished = DispatchGroup()
        let port = server.port
        for (number, log) in publishers.enumerated() {
            finished.enter()
            Thread {
                publishUntilTheServerDies(port: port, publisher: number, round: 0, into: log)
                finished.leave()
            }.start()
        }
        for log in subscribers {
            finished.enter()
            Thread {
                followLive(port: port, into: log)
                finished.leave()
            }.start()
        }
        try await Task.sleep(for: .milliseconds(600))
        #expect(server.stop(SIGTERM) == 0)
        #expect(finished.wait(timeout: .now() + 30) == .success)
        let log = server.log
        #expect(log.contains("[INFO] [exar_db] exar-db listening on"))
        #expect(log.contains("exar-db stopped"))

        // Every publish was answered: Published, or refused with an error, never left hanging.
        var acknowledged: [UInt64: String] = [:]
        var sent: Set<String> = []
        for publisher in publishers {
            #expect(publisher.acknowledged.count > 0)
            #expect(publisher.unexpected.allSatisfy { $0.hasPrefix("Error\t") }, "\(publisher.unexpected)")
            sent.formUnion(publisher.sent)
            for (id, line) in publisher.acknowledged { acknowledged[id] = line }
        }
        try await server.start()
        let lastId = try verify(server, acknowledged: acknowledged, sent: sent)
        #expect(lastId >= UInt64(acknowledged.count))
        #expect(!server.log.contains("cut "), "the start after a graceful stop needed a recovery cut")
        // The live subscribers saw a prefix of the stored events, in order, then the stream's end.
        let stored = try #require(try readAllEvents(port: server.port))
        for subscriber in subscribers {
            #expect(subscriber.events.count > 0)
            #expect(subscriber.events == Array(stored.prefix(subscriber.events.count)))
            #expect(subscriber.end == "Error\tEventStreamError\tClosed")
        }
        #expect(server.stop() == 0)
    }
}

/// What a live subscriber received.
final class SubscriberLog: @unchecked Sendable {
    var events: [String] = []
    /// The last line that was not an event (`nil` when the connection just closed).
    var end: String?
}

/// Subscribes live from the start and reads until the server ends the stream or goes away.
func followLive(port: Int, into log: SubscriberLog) {
    guard let client = try? LineClient(port: port) else { return }
    client.send("Connect\tc\nSubscribe\ttrue\t0\n")
    guard client.readLine() == "Connected", client.readLine() == "Subscribed" else { return }
    while let line = client.readLine() {
        guard line.hasPrefix("Event\t") else {
            log.end = line
            return
        }
        log.events.append(String(line.dropFirst(6)))
    }
}

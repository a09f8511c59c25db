import ExarClient
import ExarModel
import Foundation
import Synchronization
import Testing

/// `PublishIf` (PROTOCOL.md, "Optimistic concurrency") against the real server, byte for byte.
@Suite(.serialized) struct PublishIfServerTests {
    @Test func theExpectedIdDecidesAndPipelinedOnesSeeEachOther() async throws {
        let server = try await TestServer(segmentSize: 16 * 1024)
        defer { server.removeFiles() }
        let client = try LineClient(port: server.port)
        // Before a collection: as every message that needs one. Then the parser's edges.
        client.send("PublishIf\to\t0\to\t0\tx\n")
        #expect(client.readLine() == "Error\tIoError\tInvalidData\tunexpected TCP message")
        client.send("Connect\tc\nPublishIf\nPublishIf\to\nPublishIf\to\t0\to\t0\nPublishIf\to\tsoon\to\t0\tx\nPublishIf\to\t0\to\tlater\tx\n")
        #expect(client.readLines(6) == ["Connected", "Error\tParseError\tMissingField\t1", "Error\tParseError\tMissingField\t1",
                                        "Error\tParseError\tMissingField\t4",
                                        "Error\tParseError\tParseError\tinvalid digit found in string",
                                        "Error\tParseError\tParseError\tinvalid digit found in string"])
        client.send("PublishIf\to p\t0\to\t0\tx\nPublishIf\t\t0\to\t0\tx\nPublishIf\to\t0\to  p\t0\tx\n")
        #expect(client.readLines(3) == ["Error\tValidationError\tthe tag of a PublishIf must be one tag, not empty and without spaces",
                                        "Error\tValidationError\tthe tag of a PublishIf must be one tag, not empty and without spaces",
                                        "Error\tValidationError\tevent must not contain empty tags"])
        // One write: each PublishIf sees the events before it, Publish lines included.
        client.send("PublishIf\torder-7\t0\torder-7\t100\tcreated\nPublishIf\torder-7\t0\torder-7\t0\tdup\n"
                    + "Publish\torder-7 paid\t200\tpaid\nPublishIf\torder-7\t1\torder-7\t0\tstale\nPublishIf\torder-7\t2\torder-7\t300\tshipped\n"
                    + "PublishIf\tother\t0\taudit\t400\tnot carrying it\nPublishIf\tother\t0\tother\t500\tfirst\n")
        #expect(client.readLines(7) == ["Published\t1", "Error\tConflictError\t1", "Published\t2", "Error\tConflictError\t2",
                                        "Published\t3", "Published\t4", "Published\t5"])
        client.send("Subscribe\tfalse\t0\n")
        #expect(client.readLines(7) == ["Subscribed", "Event\t1\t100\torder-7\tcreated", "Event\t2\t200\torder-7 paid\tpaid",
                                        "Event\t3\t300\torder-7\tshipped", "Event\t4\t400\taudit\tnot carrying it",
                                        "Event\t5\t500\tother\tfirst", "EndOfEventStream"])
        // Another connection sees the same last ids.
        let other = try LineClient(port: server.port)
        other.send("Connect\tc\nPublishIf\torder-7\t1\torder-7\t0\tx\nPublishIf\torder-7\t3\torder-7\t600\tdelivered\n")
        #expect(other.readLines(3) == ["Connected", "Error\tConflictError\t3", "Published\t6"])
        try await server.stop()
    }

    /// Connections race on two tags, each adopting the id a conflict names; every stored event
    /// must follow the previous event of its tag, whatever the interleaving.
    @Test func racingConnectionsFormOneHistoryPerTag() async throws {
        let server = try await TestServer(segmentSize: 16 * 1024)
        defer { server.removeFiles() }
        let port = server.port
        let stored = try await withThrowingTaskGroup(of: Int.self) { group in
            for writer in 0..<4 {
                group.addTask {
                    try await onDispatchThread {
                        let client = try LineClient(port: port)
                        client.send("Connect\tc\n")
                        guard client.readLine() == "Connected" else { throw POSIXError(.ECONNREFUSED) }
                        var expected: [String: UInt64] = ["a": 0, "b": 0]
                        var stored = 0
                        for round in 0..<60 {
                            let tag = round % 2 == 0 ? "a" : "b"
                            let first = expected[tag]!
                            client.send("PublishIf\t\(tag)\t\(first)\t\(tag)\t0\tw\(writer) after \(first)\n")
                            let answer = client.readLine() ?? ""
                            if answer.hasPrefix("Published\t"), let id = UInt64(answer.dropFirst(10)) {
                                expected[tag] = id
                                stored += 1
                            } else if answer.hasPrefix("Error\tConflictError\t"), let actual = UInt64(answer.dropFirst(20)) {
                                #expect(actual != first)
                                expected[tag] = actual
                            } else {
                                Issue.record("answer \(answer)")
                            }
                        }
                        return stored
                    }
                }
            }
            return try await group.reduce(0, +)
        }
        let events = try #require(try readAllEvents(port: port))
        #expect(events.count == stored)
        var previous: [String: UInt64] = [:]
        for line in events {
            let fields = line.split(separator: "\t", omittingEmptySubsequences: false)
            let id = UInt64(fields[0])!
            let tag = String(fields[2])
            let after = UInt64(fields[3].split(separator: " ").last!)!
            #expect(after == previous[tag] ?? 0, "event \(id) of \(tag) was published after \(after), the previous is \(previous[tag] ?? 0)")
            previous[tag] = id
        }
        try await server.stop()
    }

    @Test func theClientThrowsATypedConflictWithTheActualId() async throws {
        let server = try await TestServer()
        defer { server.removeFiles() }
        let client = try await ExarClient.connect(port: server.port, collection: "c")
        let created = try await client.publish(Event(tags: ["order-7"], data: "created"), expecting: .noEvent("order-7"))
        #expect(created == 1)
        do {
            try await client.publish(Event(tags: ["order-7"], data: "again"), expecting: .noEvent("order-7"))
            Issue.record("a second first event was stored")
        } catch let conflict as ConflictError {
            #expect(conflict.actualId == 1 && conflict.expectation == .noEvent("order-7"))
        }
        // Concurrent calls of one client are pipelined: exactly one of those expecting 1 wins.
        let results = await withTaskGroup(of: Result<UInt64, ConflictError>.self) { group in
            for number in 0..<5 {
                group.addTask {
                    do {
                        return .success(try await client.publish(Event(tags: ["order-7"], data: "paid \(number)"),
                                                                 expecting: .init(tag: "order-7", lastId: 1)))
                    } catch let conflict as ConflictError {
                        return .failure(conflict)
                    } catch {
                        Issue.record("\(error)")
                        return .failure(ConflictError(expectation: .noEvent("x"), actualId: .max))
                    }
                }
            }
            return await group.reduce(into: []) { $0.append($1) }
        }
        let wins = results.compactMap { try? $0.get() }
        #expect(wins == [2])
        #expect(results.allSatisfy { if case .failure(let conflict) = $0 { conflict.actualId == 2 } else { true } })
        await #expect(throws: ExarError.self) {
            try await client.publish(Event(tags: ["x"], data: "y"), expecting: .init(tag: "two tags", lastId: 0))
        }
        await client.close()
        try await server.stop()
    }
}

import ExarClient
import ExarModel
import Foundation
import Testing

/// `Locate` (PROTOCOL.md, "Extensions / Time") against the real server.
@Suite(.serialized) struct LocateTests {
    @Test func locateAnswersTheOffsetOfTheFirstEventAtOrAfterATime() async throws {
        let server = try await TestServer()
        defer { server.removeFiles() }
        let client = try LineClient(port: server.port)
        client.send("Locate\t5\nLocate\nLocated\t3\nLocated\n")
        #expect(client.readLines(4) == ["Error\tIoError\tInvalidData\tunexpected TCP message",
                                        "Error\tParseError\tMissingField\t1",
                                        "Error\tIoError\tInvalidData\tunexpected TCP message",
                                        "Error\tParseError\tMissingField\t1"])
        client.send("Connect\tc\nLocate\t5\nLocate\tsoon\n")
        #expect(client.readLines(3) == ["Connected", "Located\t0", "Error\tParseError\tParseError\tinvalid digit found in string"])
        // Out of order: the first event stamped 250 or later in id order is id 2. The Locate comes
        // in the same write as the publishes and sees them.
        client.send("Publish\ta\t100\tw\nPublish\ta\t300\tx\nPublish\ta\t200\ty\nPublish\ta\t400\tz\nLocate\t250\n")
        #expect(client.readLines(5) == ["Published\t1", "Published\t2", "Published\t3", "Published\t4", "Located\t1"])
        client.send("Locate\t0\nLocate\t100\nLocate\t101\nLocate\t400\nLocate\t401\nLocate\t18446744073709551615\n")
        #expect(client.readLines(6) == ["Located\t0", "Located\t0", "Located\t1", "Located\t3", "Located\t4", "Located\t4"])
        client.send("Subscribe\tfalse\t1\n")
        #expect(client.readLines(5) == ["Subscribed", "Event\t2\t300\ta\tx", "Event\t3\t200\ta\ty", "Event\t4\t400\ta\tz",
                                        "EndOfEventStream"])
        // While a live stream runs, a Locate waits for its end, like every other line.
        client.send("Subscribe\ttrue\t3\nLocate\t350\n")
        #expect(client.readLines(2) == ["Subscribed", "Event\t4\t400\ta\tz"])
        client.send("Unsubscribe\n")
        #expect(client.readLines(2) == ["EndOfEventStream", "Located\t3"])
        // A dropped collection: the connection must select again.
        let other = try LineClient(port: server.port)
        other.send("Drop\tc\n")
        #expect(other.readLine() == "Dropped")
        client.send("Locate\t1\n")
        #expect(client.readLine() == "Error\tConnectionError")
        try await server.stop()
    }

    @Test func theClientSubscribesSinceADate() async throws {
        let server = try await TestServer(segmentSize: 8192)
        defer { server.removeFiles() }
        let client = try await ExarClient.connect(port: server.port, collection: "c")
        let start: UInt64 = 1_800_000_000_000
        // Timestamps rise by 10 ms per event, with every fifth one stamped a second early.
        let events = (0..<500).map { number in
            Event(timestamp: start + UInt64(number) * 10 - (number % 5 == 4 ? 1000 : 0), tags: ["t"],
                  data: String(repeating: "d", count: 50))
        }
        let ids = try await client.publish(events)
        #expect(ids == Array(1...500))
        let since = Date(timeIntervalSince1970: Double(start + 2_345) / 1000)
        let expectedFirst = zip(ids, events).first { $0.1.timestamp >= start + 2_345 }!.0
        #expect(try await client.locate(since) == expectedFirst - 1)
        let reader = try await ExarClient.connect(port: server.port, collection: "c")
        var received: [UInt64] = []
        for try await event in try await reader.subscribe(since: since, live: false) { received.append(event.id) }
        #expect(received == Array(expectedFirst...500))
        #expect(try await client.locate(Date(timeIntervalSince1970: 4_000_000_000)) == 500)
        #expect(try await client.locate(Date(timeIntervalSince1970: 0)) == 0)
        await client.close()
        await reader.close()
        try await server.stop()
    }
}

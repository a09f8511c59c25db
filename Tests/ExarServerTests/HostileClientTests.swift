import ExarClient
import ExarModel
import Foundation
import Testing

@Suite(.serialized) struct HostileClientTests {
    @Test func aLineOverTheLimitClosesOnlyThatConnection() async throws {
        let server = try await TestServer(maxLineBytes: 4096)
        defer { server.removeFiles() }
        let good = try LineClient(port: server.port)
        good.send("Connect\tc\n")
        #expect(good.readLine() == "Connected")
        let bad = try LineClient(port: server.port)
        bad.send("Connect\tc\nPublish\tt\t0\tok\n")
        #expect(bad.readLines(2) == ["Connected", "Published\t1"])
        bad.send("Publish\tt\t0\t" + String(repeating: "x", count: 10_000) + "\n")
        #expect(bad.readLine() == "Error\tIoError\tInvalidData\tline longer than the maximum of 4096 bytes")
        #expect(bad.isClosedByServer())
        good.send("Publish\tt\t0\tstill fine\n")
        #expect(good.readLine() == "Published\t2")
        try await server.stop()
    }

    @Test func randomBytesGetErrorsAndOthersAreServed() async throws {
        let server = try await TestServer(maxLineBytes: 1 << 16)
        defer { server.removeFiles() }
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<5 {
            let noisy = try LineClient(port: server.port)
            noisy.send((0..<20_000).map { _ in UInt8.random(in: 0...255, using: &generator) } + [10])
            noisy.setReceiveTimeout(milliseconds: 200)
            while let line = noisy.readLine() {
                #expect(line.hasPrefix("Error\t"))
            }
        }
        let good = try LineClient(port: server.port)
        good.send("Connect\tc\nPublish\tt\t0\tok\n")
        #expect(good.readLines(2) == ["Connected", "Published\t1"])
        try await server.stop()
    }

    @Test func hundredsOfIdleConnectionsCostLittle() async throws {
        let server = try await TestServer()
        defer { server.removeFiles() }
        var idle: [LineClient] = []
        for _ in 0..<300 { idle.append(try LineClient(port: server.port)) }
        let good = try LineClient(port: server.port)
        good.send("Connect\tc\nPublish\tt\t0\tok\n")
        #expect(good.readLines(2) == ["Connected", "Published\t1"])
        #expect(server.server.connectionCount >= 300)
        idle.removeAll()
        // The server notices the closes as its loops get to them: allow a few seconds (slow under sanitizers).
        for _ in 0..<100 where server.server.connectionCount > 2 {
            try await Task.sleep(for: .milliseconds(50))
        }
        #expect(server.server.connectionCount <= 2)
        try await server.stop()
    }

    // A stalled subscriber that held up publishing would hang this test: the limit catches that.
    @Test(.timeLimit(.minutes(3)))
    func aSubscriberThatNeverReadsPausesOnlyItself() async throws {
        let server = try await TestServer(segmentSize: 8 << 20)
        defer { server.removeFiles() }
        let stalled = try LineClient(port: server.port)
        stalled.send("Connect\tc\nSubscribe\ttrue\t0\n")
        let client = try await ExarClient.connect(port: server.port, collection: "c")
        // 20 MB of events while the subscriber reads nothing.
        let payload = String(repeating: "d", count: 1000)
        for round in 0..<200 {
            let ids = try await client.publish((0..<100).map { Event(timestamp: UInt64(round * 100 + $0 + 1), tags: ["t"], data: payload) })
            #expect(ids.count == 100)
        }
        // Nothing was lost for the slow one: it gets every event, in order, once it reads.
        #expect(stalled.readLines(2) == ["Connected", "Subscribed"])
        for id in 1...20_000 {
            guard let line = stalled.readLine() else {
                Issue.record("stream ended at \(id)")
                break
            }
            if !line.hasPrefix("Event\t\(id)\t") {
                Issue.record("expected event \(id), got \(line.prefix(40))")
                break
            }
        }
        await client.close()
        try await server.stop()
    }

    @Test func clientsVanishingMidStreamLeaveTheServerServing() async throws {
        let server = try await TestServer()
        defer { server.removeFiles() }
        let publisher = try LineClient(port: server.port)
        publisher.send("Connect\tc\n")
        #expect(publisher.readLine() == "Connected")
        for _ in 0..<20 {
            let subscriber = try LineClient(port: server.port)
            subscriber.send("Connect\tc\nSubscribe\ttrue\t0\n")
            #expect(subscriber.readLines(2) == ["Connected", "Subscribed"])
        }
        var text = ""
        for number in 1...2000 { text += "Publish\tt\t\(number)\tafter the subscribers left\n" }
        publisher.send(text)
        let answers = publisher.readLines(2000)
        #expect(answers.last == "Published\t2000")
        for _ in 0..<100 where server.server.connectionCount > 1 {
            try await Task.sleep(for: .milliseconds(50))
        }
        #expect(server.server.connectionCount == 1)
        let reader = try LineClient(port: server.port)
        reader.send("Connect\tc\nSubscribe\tfalse\t1999\n")
        #expect(reader.readLines(4) == ["Connected", "Subscribed", "Event\t2000\t2000\tt\tafter the subscribers left", "EndOfEventStream"])
        try await server.stop()
    }
}

@Suite(.serialized) struct ClientLibraryTests {
    @Test func publishSubscribeAndErrorsThroughTheClient() async throws {
        let server = try await TestServer(username: "u", password: "p")
        defer { server.removeFiles() }
        await #expect(throws: ExarError.authentication) {
            _ = try await ExarClient.connect(port: server.port, collection: "c", username: "u", password: "bad")
        }
        let client = try await ExarClient.connect(port: server.port, collection: "c", username: "u", password: "p")
        #expect(try await client.publish(Event(timestamp: 5, tags: ["a", "b"], data: "one\twith tab")) == 1)
        #expect(try await client.publish((2...100).map { Event(timestamp: UInt64($0), tags: ["n"], data: "e\($0)") }) == Array(2...100))
        await #expect(throws: ExarError.validation("event must not contain empty tags")) {
            try await client.publish(Event(tags: [""], data: "x"))
        }
        var events: [Event] = []
        for try await event in try await client.subscribe(Query(offset: 0, limit: 3)) {
            events.append(event)
        }
        #expect(events == [Event(id: 1, timestamp: 5, tags: ["a", "b"], data: "one\twith tab"),
                           Event(id: 2, timestamp: 2, tags: ["n"], data: "e2"), Event(id: 3, timestamp: 3, tags: ["n"], data: "e3")])

        let live = try await ExarClient.connect(port: server.port, collection: "c", username: "u", password: "p")
        let stream = try await live.subscribe(Query(live: true, offset: 100, limit: 2))
        _ = try await client.publish([Event(tags: ["x"], data: "101"), Event(tags: ["x"], data: "102")])
        var liveData: [String] = []
        for try await event in stream { liveData.append(event.data) }
        #expect(liveData == ["101", "102"])
        await client.close()
        await live.close()
        try await server.stop()
    }
}

@Suite(.serialized) struct FramingOrderTests {
    @Test func answersOwedBeforeAnOverlongLineComeFirst() async throws {
        let server = try await TestServer(maxLineBytes: 4096)
        defer { server.removeFiles() }
        let client = try LineClient(port: server.port)
        var text = "Connect\tc\n"
        for number in 1...500 { text += "Publish\tt\t\(number)\tx\n" }
        text += "Publish\tt\t0\t" + String(repeating: "y", count: 8000) + "\n"
        client.send(text)
        let lines = client.readLines(502)
        #expect(lines.first == "Connected")
        #expect(Array(lines.dropFirst().prefix(500)) == (1...500).map { "Published\t\($0)" })
        #expect(lines.last == "Error\tIoError\tInvalidData\tline longer than the maximum of 4096 bytes")
        #expect(client.isClosedByServer())
        try await server.stop()
    }
}

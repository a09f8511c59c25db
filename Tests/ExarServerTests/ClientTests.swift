import ExarClient
import ExarModel
import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The client library against the real server: backpressure of a slow subscriber, unsubscribing
/// by leaving a loop or cancelling a task, and the session messages.
@Suite(.serialized) struct ClientTests {
    // MARK: Backpressure

    @Test func aStalledSubscriberBuffersBoundedlyWhileTheServerServesOthers() async throws {
        let server = try await TestServer(segmentSize: 8 << 20)
        defer { server.removeFiles() }
        let publisher = try await ExarClient.connect(port: server.port, collection: "c")
        let total = 200_000
        let padding = String(repeating: "x", count: 100)
        for start in stride(from: 1, through: total, by: 2000) {
            let ids = try await publisher.publish((start..<start + 2000).map {
                Event(timestamp: UInt64($0), tags: ["t"], data: "\(padding)\($0)")
            })
            #expect(ids.first == UInt64(start))
        }
        // The shortest line: `Event\t1\t1\tt\t` and the data.
        let shortestLine = "Event\t1\t1\tt\t\(padding)1".utf8.count

        let subscriber = try await ExarClient.connect(port: server.port, collection: "c")
        let subscription = try await subscriber.subscribe(Query(offset: 0, limit: UInt64(total)))
        var iterator = subscription.makeAsyncIterator()
        for id in 1...10 {
            #expect(try await iterator.next()?.id == UInt64(id))
        }
        // Stop consuming: wait until the client stops receiving (unchanged for half a second).
        let received = try await settledCount { subscription.receivedEvents }
        // The buffer's high watermark, plus what one read under way (NIO reads up to 4 times
        // 64 KiB before it asks again) delivers after it was reached.
        let bound = 4096 + 4 * 65536 / shortestLine + 1
        print("stalled subscriber: received \(received) of \(total) events, \(subscription.bufferedEvents) buffered (\(subscription.bufferedBytes) bytes); bound \(bound)")
        #expect(received - 10 <= bound)
        #expect(subscription.bufferedEvents <= bound)
        #expect(subscription.bufferedBytes <= 4 << 20 + 4 * 65536 * 2)

        // Another client of the same collection is served meanwhile.
        let other = try await ExarClient.connect(port: server.port, collection: "c")
        #expect(try await other.publish(Event(tags: ["other"], data: "while stalled")) == UInt64(total + 1))
        var tail: [UInt64] = []
        for try await event in try await other.subscribe(Query(offset: UInt64(total - 5))) { tail.append(event.id) }
        #expect(tail == Array(UInt64(total - 4)...UInt64(total + 1)))
        #expect(subscription.receivedEvents <= 10 + bound)

        // Then every event arrives, once, in order.
        var expected = UInt64(11)
        var largestBuffer = 0
        while let event = try await iterator.next() {
            if event.id != expected {
                Issue.record("expected event \(expected), got \(event.id)")
                break
            }
            if event.data != "\(padding)\(event.id)" {
                Issue.record("event \(event.id) carries \(event.data.suffix(20))")
                break
            }
            expected += 1
            if expected % 1000 == 0 { largestBuffer = max(largestBuffer, subscription.bufferedEvents) }
        }
        #expect(expected == UInt64(total + 1))
        print("while consuming: at most \(largestBuffer) events buffered (sampled every 1000)")
        #expect(largestBuffer <= bound)
        await publisher.close()
        await subscriber.close()
        await other.close()
        try await server.stop()
    }

    @Test func aStalledSubscriberOfLargeEventsIsBoundedInBytes() async throws {
        let server = try await TestServer(segmentSize: 8 << 20)
        defer { server.removeFiles() }
        let publisher = try await ExarClient.connect(port: server.port, collection: "c")
        let total = 400
        let payload = String(repeating: "y", count: 64 * 1024)
        for start in stride(from: 1, through: total, by: 50) {
            _ = try await publisher.publish((start..<start + 50).map { Event(timestamp: UInt64($0), tags: ["t"], data: "\($0) \(payload)") })
        }
        let subscriber = try await ExarClient.connect(port: server.port, collection: "c")
        let subscription = try await subscriber.subscribe(Query(offset: 0))
        var iterator = subscription.makeAsyncIterator()
        #expect(try await iterator.next()?.id == 1)
        _ = try await settledCount { subscription.receivedEvents }
        // 4 MiB, plus the event that crossed it and one read under way (4 times 64 KiB).
        let bound = 4 << 20 + (payload.utf8.count + 128) + 4 * 65536
        print("stalled subscriber of 64 KiB events: \(subscription.bufferedEvents) events, \(subscription.bufferedBytes) bytes buffered; bound \(bound) bytes")
        #expect(subscription.bufferedBytes <= bound)
        #expect(subscription.receivedEvents < total / 2)
        var expected = UInt64(2)
        while let event = try await iterator.next() {
            guard event.id == expected, event.data == "\(expected) \(payload)" else {
                Issue.record("expected event \(expected), got \(event.id)")
                break
            }
            expected += 1
        }
        #expect(expected == UInt64(total + 1))
        await publisher.close()
        await subscriber.close()
        try await server.stop()
    }

    // MARK: Unsubscribing

    @Test func leavingTheLoopUnsubscribesAndTheConnectionStaysUsable() async throws {
        let server = try await TestServer(segmentSize: 8 << 20)
        defer { server.removeFiles() }
        let relay = try RecordingRelay(serverPort: server.port)
        defer { relay.stop() }
        let client = try await ExarClient.connect(port: relay.port, collection: "c")
        try await publishNumbered(client, count: 30_000)
        try await withTimeout(30, closing: client) {
            var seen: [UInt64] = []
            for try await event in try await client.subscribe(Query(live: true, offset: 0)) {
                seen.append(event.id)
                if seen.count == 5 { break }
            }
            #expect(seen == [1, 2, 3, 4, 5])
            // A live subscription never ends by itself: these answers come only after the Unsubscribe.
            #expect(try await client.publish(Event(tags: ["t"], data: "after")) == 30_001)
            var tail: [UInt64] = []
            for try await event in try await client.subscribe(Query(offset: 29_998)) { tail.append(event.id) }
            #expect(tail == [29_999, 30_000, 30_001])
        }
        #expect(relay.clientLines.filter { $0 == "Unsubscribe" }.count == 1)
        await client.close()
        try await server.stop()
    }

    @Test func cancellingTheTaskUnsubscribes() async throws {
        let server = try await TestServer(segmentSize: 8 << 20)
        defer { server.removeFiles() }
        let relay = try RecordingRelay(serverPort: server.port)
        defer { relay.stop() }
        let client = try await ExarClient.connect(port: relay.port, collection: "c")
        try await publishNumbered(client, count: 20_000)
        try await withTimeout(30, closing: client) {
            // Cancelled while events stream (the consumer is slow and the buffer full).
            let started = AsyncStream<Void>.makeStream()
            let streaming = Task {
                var count = 0
                for try await _ in try await client.subscribe(Query(live: true, offset: 0)) {
                    count += 1
                    if count == 3 { started.continuation.yield() }
                    try? await Task.sleep(for: .milliseconds(1))
                }
                return count
            }
            for await _ in started.stream { break }
            streaming.cancel()
            let count = try await streaming.value
            #expect(count >= 3 && count < 20_000)
            #expect(try await client.publish(Event(tags: ["t"], data: "after the first")) == 20_001)

            // Cancelled while waiting for an event that does not come.
            let subscribed = AsyncStream<Void>.makeStream()
            let waiting = Task {
                let subscription = try await client.subscribe(Query(live: true, offset: 20_001))
                subscribed.continuation.yield()
                var count = 0
                for try await _ in subscription { count += 1 }
                return count
            }
            for await _ in subscribed.stream { break }
            try await Task.sleep(for: .milliseconds(50))
            waiting.cancel()
            #expect(try await waiting.value == 0)
            #expect(try await client.publish(Event(tags: ["t"], data: "after the second")) == 20_002)
        }
        #expect(relay.clientLines.filter { $0 == "Unsubscribe" }.count == 2)
        await client.close()
        try await server.stop()
    }

    @Test func aSubscriptionThatEndsByItselfSendsNoUnsubscribe() async throws {
        let server = try await TestServer()
        defer { server.removeFiles() }
        let relay = try RecordingRelay(serverPort: server.port)
        defer { relay.stop() }
        let client = try await ExarClient.connect(port: relay.port, collection: "c")
        try await publishNumbered(client, count: 100)
        try await withTimeout(30, closing: client) {
            var ids: [UInt64] = []
            for try await event in try await client.subscribe(Query(live: true, offset: 0, limit: 3)) { ids.append(event.id) }
            #expect(ids == [1, 2, 3])
            ids = []
            for try await event in try await client.subscribe(Query(offset: 95)) { ids.append(event.id) }
            #expect(ids == [96, 97, 98, 99, 100])
            // Left early, but the stream had ended already (its end was read with the events).
            let subscription = try await client.subscribe(Query(offset: 98))
            _ = try await settledCount { subscription.receivedEvents }
            for try await _ in subscription { break }
            #expect(try await client.publish(Event(tags: ["t"], data: "after")) == 101)
        }
        #expect(!relay.clientLines.contains("Unsubscribe"))
        await client.close()
        try await server.stop()
    }

    @Test func anUnsubscribeThatCrossesTheStreamsEndIsAnsweredAndSkipped() async throws {
        let server = try await TestServer(segmentSize: 8 << 20)
        defer { server.removeFiles() }
        // The relay reads the server's whole stream at once, so the server's stream has ended
        // (and the server takes the Unsubscribe as a line of its own) while the client,
        // which stopped reading at its buffer's limit, has not seen the end yet.
        let relay = try RecordingRelay(serverPort: server.port)
        defer { relay.stop() }
        let client = try await ExarClient.connect(port: relay.port, collection: "c")
        try await publishNumbered(client, count: 60_000)
        try await withTimeout(30, closing: client) {
            let subscription = try await client.subscribe(Query(offset: 0))
            try await eventually { relay.serverSent(endsWith: "EndOfEventStream\n") }
            var first: UInt64 = 0
            for try await event in subscription {
                first = event.id
                break
            }
            #expect(first == 1)
            #expect(try await client.publish(Event(tags: ["t"], data: "after")) == 60_001)
            var tail: [UInt64] = []
            for try await event in try await client.subscribe(Query(offset: 59_999)) { tail.append(event.id) }
            #expect(tail == [60_000, 60_001])
        }
        #expect(relay.clientLines.contains("Unsubscribe"))
        #expect(relay.serverText.contains("EndOfEventStream\nError\tIoError\tInvalidData\tunexpected TCP message\nPublished\t60001\n"))
        await client.close()
        try await server.stop()
    }

    // MARK: Session

    @Test func authenticateSelectAndDropOnAServerWithCredentials() async throws {
        let server = try await TestServer(username: "u", password: "p")
        defer { server.removeFiles() }
        let client = try await ExarClient.connect(port: server.port)
        await #expect(throws: ExarError.authentication) { try await client.select("a") }
        await #expect(throws: ExarError.authentication) { try await client.drop("a") }
        await #expect(throws: ExarError.authentication) { try await client.authenticate(username: "u", password: "bad") }
        try await client.authenticate(username: "u", password: "p")
        try await client.select("a")
        #expect(try await client.publish([Event(tags: ["t"], data: "a1"), Event(tags: ["t"], data: "a2")]) == [1, 2])
        try await client.select("b")
        #expect(try await client.publish(Event(tags: ["t"], data: "b1")) == 1)
        try await client.drop("a")
        try await client.select("a")
        #expect(try await client.publish(Event(tags: ["t"], data: "a again")) == 1)
        var data: [String] = []
        for try await event in try await client.subscribe(.all) { data.append(event.data) }
        #expect(data == ["a again"])
        await #expect(throws: ExarError.connection("")) { try await client.select("bad/name") }

        // Credentials without a collection authenticate; Select also works after a Connect.
        let second = try await ExarClient.connect(port: server.port, username: "u", password: "p")
        try await second.select("b")
        #expect(try await second.publish(Event(tags: ["t"], data: "b2")) == 2)
        await #expect(throws: ExarError.authentication) {
            _ = try await ExarClient.connect(port: server.port, username: "u", password: "wrong")
        }
        let third = try await ExarClient.connect(port: server.port, collection: "b", username: "u", password: "p")
        try await third.select("a")
        #expect(try await third.publish(Event(tags: ["t"], data: "a3")) == 2)
        await client.close()
        await second.close()
        await third.close()
        try await server.stop()
    }

    @Test func selectAtOnceAndDropEndsSubscriptionsOnAServerWithoutCredentials() async throws {
        let server = try await TestServer()
        defer { server.removeFiles() }
        let client = try await ExarClient.connect(port: server.port)
        try await client.select("c")
        try await publishNumbered(client, count: 10)
        let watcher = try await ExarClient.connect(port: server.port, collection: "c")
        let subscription = try await watcher.subscribe(Query(live: true, offset: 0))
        try await withTimeout(30, closing: client, watcher) {
            try await client.drop("c")
            var ids: [UInt64] = []
            for try await event in subscription { ids.append(event.id) }
            #expect(ids == Array(1...10))
            // Still bound to the dropped collection until it selects again.
            await #expect(throws: ExarError.connection("")) { try await watcher.publish(Event(tags: ["t"], data: "x")) }
            try await watcher.select("c")
            #expect(try await watcher.publish(Event(tags: ["t"], data: "new")) == 1)
        }
        await client.close()
        await watcher.close()
        try await server.stop()
    }

    @Test func namesThatWouldSplitTheLineAreRefusedBeforeSending() async throws {
        let server = try await TestServer()
        defer { server.removeFiles() }
        let client = try await ExarClient.connect(port: server.port, collection: "c")
        await #expect(throws: ExarError.self) { try await client.select("a\nPublish\tt\t0\tinjected") }
        await #expect(throws: ExarError.self) { try await client.drop("a\tb") }
        await #expect(throws: ExarError.self) { try await client.authenticate(username: "u\tv", password: "p") }
        #expect(try await client.publish(Event(tags: ["t"], data: "only")) == 1)
        await client.close()
        try await server.stop()
    }

    // MARK: Helpers

    private func publishNumbered(_ client: ExarClient, count: Int) async throws {
        for start in stride(from: 1, through: count, by: 1000) {
            _ = try await client.publish((start..<min(start + 1000, count + 1)).map {
                Event(timestamp: UInt64($0), tags: ["t"], data: "e\($0)")
            })
        }
    }
}

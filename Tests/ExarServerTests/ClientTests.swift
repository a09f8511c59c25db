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

struct TimedOut: Error {}

/// Runs `body`; after `seconds` closes the clients (which fails what they wait for) and throws.
func withTimeout(_ seconds: Int, closing clients: ExarClient..., body: @escaping @Sendable () async throws -> Void) async throws {
    try await withThrowingTaskGroup(of: Bool.self) { group in
        group.addTask {
            try await body()
            return true
        }
        group.addTask {
            try? await Task.sleep(for: .seconds(seconds))
            return false
        }
        let finished = try await group.next()!
        if !finished {
            for client in clients { await client.close() }
            Issue.record("timed out after \(seconds) s")
        }
        group.cancelAll()
        try await group.waitForAll()
        if !finished { throw TimedOut() }
    }
}

/// Waits until `condition` holds (polling), for at most `seconds`.
func eventually(_ seconds: Int = 10, _ condition: () -> Bool) async throws {
    let deadline = ContinuousClock.now + .seconds(seconds)
    while !condition() {
        guard ContinuousClock.now < deadline else { throw TimedOut() }
        try await Task.sleep(for: .milliseconds(10))
    }
}

/// `count()` once it has not changed for half a second.
func settledCount(_ count: () -> Int) async throws -> Int {
    var last = count()
    var unchangedSince = ContinuousClock.now
    let deadline = ContinuousClock.now + .seconds(20)
    while ContinuousClock.now - unchangedSince < .milliseconds(500) {
        guard ContinuousClock.now < deadline else { throw TimedOut() }
        try await Task.sleep(for: .milliseconds(20))
        let now = count()
        if now != last {
            last = now
            unchangedSince = .now
        }
    }
    return last
}

/// A loopback TCP relay for one client connection that records what each side sent. It reads
/// the server's side as fast as the server writes and keeps it for the client without bound.
final class RecordingRelay: @unchecked Sendable {
    let port: Int
    private let listener: Int32
    private let condition = NSCondition()
    // Behind `condition`.
    private var fromClient: [UInt8] = []
    private var fromServer: [UInt8] = []
    private var forClient: [UInt8] = []
    private var serverClosed = false
    private var sockets: [Int32] = []

    init(serverPort: Int) throws {
        let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        self.listener = listener
        var address = Self.loopback(port: 0)
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(listener, $0, length) == 0 && listen(listener, 1) == 0 && getsockname(listener, $0, &length) == 0
            }
        }
        guard bound else { throw POSIXError(.EADDRNOTAVAIL) }
        port = Int(UInt16(bigEndian: address.sin_port))
        Thread.detachNewThread { self.relay(serverPort: serverPort) }
    }

    /// The lines the client sent.
    var clientLines: [String] {
        condition.withLock { String(decoding: fromClient, as: UTF8.self) }.split(separator: "\n").map(String.init)
    }

    /// Whether what the server sent so far ends with `text`.
    func serverSent(endsWith text: String) -> Bool {
        condition.withLock { fromServer.suffix(text.utf8.count).elementsEqual(text.utf8) }
    }

    /// Everything the server sent.
    var serverText: String {
        condition.withLock { String(decoding: fromServer, as: UTF8.self) }
    }

    func stop() {
        condition.withLock {
            for socket in sockets { shutdown(socket, Int32(SHUT_RDWR)) }
        }
        shutdown(listener, Int32(SHUT_RDWR))
        close(listener)
    }

    private static func loopback(port: Int) -> sockaddr_in {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        return address
    }

    private func relay(serverPort: Int) {
        let client = accept(listener, nil, nil)
        guard client >= 0 else { return }
        let server = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = Self.loopback(port: serverPort)
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(server, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        condition.withLock { sockets = [client, server] }
        guard connected == 0 else {
            shutdown(client, Int32(SHUT_RDWR))
            return
        }
        Thread.detachNewThread {
            self.pump(from: client) { bytes in
                self.condition.withLock { self.fromClient += bytes }
                return Self.sendAll(bytes, to: server)
            }
            shutdown(server, Int32(SHUT_WR))
        }
        Thread.detachNewThread {
            self.pump(from: server) { bytes in
                self.condition.withLock {
                    self.fromServer += bytes
                    self.forClient += bytes
                    self.condition.signal()
                }
                return true
            }
            self.condition.withLock {
                self.serverClosed = true
                self.condition.signal()
            }
        }
        while true {
            let bytes: [UInt8]? = condition.withLock {
                while forClient.isEmpty && !serverClosed { condition.wait() }
                defer { forClient.removeAll() }
                return forClient.isEmpty ? nil : forClient
            }
            guard let bytes, Self.sendAll(bytes, to: client) else { break }
        }
        shutdown(client, Int32(SHUT_RDWR))
    }

    private func pump(from socket: Int32, _ deliver: ([UInt8]) -> Bool) {
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = chunk.withUnsafeMutableBytes { recv(socket, $0.baseAddress, $0.count, 0) }
            if count <= 0 || !deliver(Array(chunk[..<count])) { return }
        }
    }

    private static func sendAll(_ bytes: [UInt8], to socket: Int32) -> Bool {
        var offset = 0
        while offset < bytes.count {
            let sent = bytes[offset...].withUnsafeBytes { send(socket, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if sent <= 0 { return false }
            offset += sent
        }
        return true
    }
}

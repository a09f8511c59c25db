import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The 0.2 session messages (PROTOCOL.md, "Extensions / Session") against the real server.
@Suite(.serialized) struct SessionTests {
    @Test func authenticateThenSelect() async throws {
        let server = try await TestServer(username: "admin", password: "secret", maxLoginFailures: 10)
        defer { server.removeFiles() }
        let client = try LineClient(port: server.port)
        client.send("Select\torders\nDrop\torders\nPublish\tt\t0\tx\n")
        #expect(client.readLines(3) == ["Error\tAuthenticationError", "Error\tAuthenticationError",
                                        "Error\tIoError\tInvalidData\tunexpected TCP message"])
        client.send("Authenticate\tadmin\twrong\nAuthenticate\tadmin\n")
        #expect(client.readLines(2) == ["Error\tAuthenticationError", "Error\tParseError\tMissingField\t1"])
        client.send("Authenticate\tadmin\tsecret\nSelect\torders\nPublish\tt\t5\tx\nSelect\tother\nPublish\tt\t6\ty\n")
        #expect(client.readLines(5) == ["Authenticated", "Selected", "Published\t1", "Selected", "Published\t1"])
        client.send("Select\ta/b\nPublish\tt\t7\tz\nSubscribe\tfalse\t0\n")
        #expect(client.readLines(5) == ["Error\tConnectionError", "Published\t2", "Subscribed", "Event\t1\t6\tt\ty", "Event\t2\t7\tt\tz"])
        #expect(client.readLine() == "EndOfEventStream")
        // After Authenticate a Connect needs no credentials of its own.
        let authenticated = try LineClient(port: server.port)
        authenticated.send("Connect\torders\nAuthenticate\tadmin\tsecret\nConnect\torders\nPublish\tt\t8\tw\n")
        #expect(authenticated.readLines(4) == ["Error\tAuthenticationError", "Authenticated", "Connected", "Published\t2"])
        // A Connect with credentials also allows Select.
        let other = try LineClient(port: server.port)
        other.send("Connect\torders\tadmin\tsecret\nSelect\tother\nSubscribe\tfalse\t1\n")
        #expect(other.readLines(5) == ["Connected", "Selected", "Subscribed", "Event\t2\t7\tt\tz", "EndOfEventStream"])
        try await server.stop()
    }

    @Test func withoutCredentialsSelectWorksAtOnce() async throws {
        let server = try await TestServer()
        defer { server.removeFiles() }
        let client = try LineClient(port: server.port)
        client.send("Authenticate\tanyone\tanything\nSelect\tc\nPublish\tt\t1\tx\nConnect\td\n")
        #expect(client.readLines(4) == ["Authenticated", "Selected", "Published\t1", "Error\tIoError\tInvalidData\tunexpected TCP message"])
        try await server.stop()
    }

    @Test func unsubscribeEndsTheStreamAtOnceEvenBehindWaitingLines() async throws {
        let server = try await TestServer()
        defer { server.removeFiles() }
        let client = try LineClient(port: server.port)
        client.send("Connect\tc\nPublish\tt\t1\ta\nSubscribe\ttrue\t0\n")
        #expect(client.readLines(4) == ["Connected", "Published\t1", "Subscribed", "Event\t1\t1\tt\ta"])
        // These wait for the stream's end; the Unsubscribe behind them ends it now.
        client.send("Publish\tt\t2\tb\nSubscribe\tfalse\t0\nUnsubscribe\n")
        #expect(client.readLines(6) == ["EndOfEventStream", "Published\t2", "Subscribed", "Event\t1\t1\tt\ta", "Event\t2\t2\tt\tb", "EndOfEventStream"])
        client.send("Unsubscribe\n")
        #expect(client.readLine() == "Error\tIoError\tInvalidData\tunexpected TCP message")
        // In one write with the Subscribe it answers.
        client.send("Subscribe\ttrue\t1\nUnsubscribe\nUnsubscribe\nPublish\tt\t3\tc\n")
        let answers = client.readLines(5)
        #expect(answers.first == "Subscribed")
        #expect(Array(answers.suffix(2)) == ["Error\tIoError\tInvalidData\tunexpected TCP message", "Published\t3"])
        #expect(answers.contains("EndOfEventStream"))
        try await server.stop()
    }

    @Test func unsubscribeReachesASubscriberThatDoesNotRead() async throws {
        let server = try await TestServer(segmentSize: 64 << 20)
        defer { server.removeFiles() }
        let publisher = try LineClient(port: server.port)
        var text = "Connect\tc\n"
        for number in 1...100_000 { text += "Publish\tt\t\(number)\tevent number \(number) with some padding to fill the socket\n" }
        publisher.send(text)
        #expect(publisher.readLines(100_001).last == "Published\t100000")
        let client = try LineClient(port: server.port)
        client.send("Connect\tc\nSubscribe\ttrue\t0\n")
        try await Task.sleep(for: .milliseconds(200))
        client.send("Unsubscribe\nPublish\tt\t0\tafter\n")
        #expect(client.readLines(2) == ["Connected", "Subscribed"])
        var expected: UInt64 = 1
        var line = client.readLine()
        while let current = line, current.hasPrefix("Event\t") {
            let id = UInt64(current.split(separator: "\t")[1])
            #expect(id == expected)
            if id != expected { break }
            expected += 1
            line = client.readLine()
        }
        #expect(line == "EndOfEventStream")
        // The stream ended in order after what was sent, and the connection goes on.
        #expect(client.readLine() == "Published\t100001")
        #expect(expected > 1)
        try await server.stop()
    }

    @Test func linesPipelinedBehindALiveStreamAreReadOnlyUpToABound() async throws {
        let server = try await TestServer()
        defer { server.removeFiles() }
        let client = try LineClient(port: server.port)
        client.send("Connect\tc\nSubscribe\ttrue\t0\n")
        #expect(client.readLines(2) == ["Connected", "Subscribed"])
        let line = Array("Publish\tt\t0\t\(String(repeating: "x", count: 1000))\n".utf8)
        var chunk: [UInt8] = []
        for _ in 0..<256 { chunk += line }
        let accepted = client.sendWithoutWaiting(chunk, upTo: 256 << 20)
        // Socket buffers on both sides plus the server's bound, far from the 256 MiB offered.
        #expect(accepted < 48 << 20, "accepted \(accepted) bytes")
        // Meanwhile the server serves everyone else.
        let other = try LineClient(port: server.port)
        other.send("Connect\tc\nPublish\tt\t1\tother\n")
        #expect(other.readLines(2) == ["Connected", "Published\t1"])
        try await server.stop()
    }

    @Test func dropEndsStreamsAndRestartsTheCollection() async throws {
        let server = try await TestServer()
        defer { server.removeFiles() }
        let writer = try LineClient(port: server.port)
        writer.send("Connect\tc\nPublish\tt\t1\ta\nPublish\tt\t2\tb\n")
        #expect(writer.readLines(3) == ["Connected", "Published\t1", "Published\t2"])
        let subscriber = try LineClient(port: server.port)
        subscriber.send("Connect\tc\nSubscribe\ttrue\t0\n")
        #expect(subscriber.readLines(4) == ["Connected", "Subscribed", "Event\t1\t1\tt\ta", "Event\t2\t2\tt\tb"])
        let dropper = try LineClient(port: server.port)
        dropper.send("Drop\tc\n")
        #expect(dropper.readLine() == "Dropped")
        #expect(subscriber.readLine() == "EndOfEventStream")
        #expect(!FileManager.default.fileExists(atPath: server.folder + "/c"))
        // Bound connections get ConnectionError until they select again.
        writer.send("Publish\tt\t3\tc\nSubscribe\tfalse\t0\nSelect\tc\nPublish\tt\t4\td\nSubscribe\tfalse\t0\n")
        #expect(writer.readLines(7) == ["Error\tConnectionError", "Error\tConnectionError", "Selected", "Published\t1",
                                        "Subscribed", "Event\t1\t4\tt\td", "EndOfEventStream"])
        dropper.send("Drop\tnever-existed\nDrop\ta/b\n")
        #expect(dropper.readLines(2) == ["Dropped", "Error\tConnectionError"])
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: server.folder).filter { $0.hasPrefix(".exar-dropped") }
        #expect(leftovers.isEmpty)
        try await server.stop()
    }

    @Test func dropIsSafeAgainstConcurrentPublishersAndSubscribers() async throws {
        let server = try await TestServer(segmentSize: 64 * 1024)
        defer { server.removeFiles() }
        let port = server.port
        let stop = StopFlag()
        let publishers = (0..<3).map { number in
            Thread.detachNewThreadWithResult {
                guard let client = try? LineClient(port: port) else { return 0 }
                client.send("Connect\tc\n")
                guard client.readLine() == "Connected" else { return 0 }
                var answered = 0
                while !stop.isSet {
                    client.send(String(repeating: "Publish\tp\(number)\t0\tsome data of publisher \(number)\n", count: 50))
                    let answers = client.readLines(50)
                    answered += answers.count
                    // Once dropped, a publisher selects the collection again.
                    if answers.contains("Error\tConnectionError") {
                        client.send("Select\tc\n")
                        if client.readLine() != "Selected" { return -1 }
                    } else if answers.count < 50 || !answers.allSatisfy({ $0.hasPrefix("Published\t") }) {
                        return -1
                    }
                }
                return answered
            }
        }
        let subscribers = (0..<2).map { _ in
            Thread.detachNewThreadWithResult {
                guard let client = try? LineClient(port: port) else { return 0 }
                client.setReceiveTimeout(milliseconds: 200)
                client.send("Connect\tc\nSubscribe\ttrue\t0\n")
                var streams = 0
                var expected: UInt64 = 1
                var quietSince = Date()
                while !stop.isSet {
                    guard let line = client.readLine() else {
                        // Quiet (no publisher got through for a while), unless it lasts.
                        if Date().timeIntervalSince(quietSince) > 30 { return -1 }
                        continue
                    }
                    quietSince = Date()
                    if line.hasPrefix("Event\t") {
                        // Ids of one stream are consecutive from 1, whatever the drops.
                        if UInt64(line.split(separator: "\t")[1]) != expected { return -1 }
                        expected += 1
                    } else if line == "EndOfEventStream" || line == "Error\tConnectionError" {
                        // Dropped under the stream, or between the Select and the Subscribe.
                        streams += 1
                        expected = 1
                        client.send("Select\tc\nSubscribe\ttrue\t0\n")
                    }
                }
                return streams
            }
        }
        let dropper = try LineClient(port: port)
        for _ in 0..<5 {
            try await Task.sleep(for: .milliseconds(150))
            dropper.send("Drop\tc\n")
            #expect(dropper.readLine() == "Dropped")
        }
        stop.set()
        for publisher in publishers { #expect(await publisher.value > 0) }
        for subscriber in subscribers { #expect(await subscriber.value >= 0) }
        dropper.send("Drop\tc\nConnect\tc\nSubscribe\tfalse\t0\n")
        #expect(dropper.readLines(3) == ["Dropped", "Connected", "Subscribed"])
        #expect(dropper.readLine() == "EndOfEventStream")
        try await server.stop()
    }
}

extension Thread {
    /// Runs `body` on a new thread; the task's value is its result.
    static func detachNewThreadWithResult(_ body: @escaping @Sendable () -> Int) -> Task<Int, Never> {
        Task {
            await withCheckedContinuation { continuation in
                Thread.detachNewThread { continuation.resume(returning: body()) }
            }
        }
    }
}

extension LineClient {
    /// Sends `chunk` over and over without blocking until `limit` bytes went out or the socket
    /// stays full for half a second; returns the bytes the kernel took.
    func sendWithoutWaiting(_ chunk: [UInt8], upTo limit: Int) -> Int {
        var sent = 0
        var stalledSince: Date?
        while sent < limit {
            let count = chunk.withUnsafeBytes { Glibc.send(descriptor, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL | MSG_DONTWAIT)) }
            if count > 0 {
                sent += count
                stalledSince = nil
                continue
            }
            guard errno == EAGAIN || errno == EWOULDBLOCK else { break }
            if let since = stalledSince {
                if Date().timeIntervalSince(since) > 0.5 { break }
            } else {
                stalledSince = Date()
            }
            usleep(10_000)
        }
        return sent
    }
}

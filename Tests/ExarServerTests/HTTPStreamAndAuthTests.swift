import ExarCore
import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Live tails over Server-Sent Events, authentication and `/metrics`, against a real server.
@Suite struct HTTPStreamAndAuthTests {
    /// Opens a live tail on a plain socket and returns it with the answer's head read.
    func openStream(_ server: TestHTTPServer, _ path: String, headers: [String] = [],
                    receiveBuffer: Int32? = nil) async throws -> LineClient {
        try await onDispatchThread {
            let client = try LineClient(port: server.port, receiveBuffer: receiveBuffer)
            client.send("GET \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\n" + headers.map { $0 + "\r\n" }.joined() + "\r\n")
            var head: [String] = []
            while let line = client.readLine(), line != "\r" { head.append(line) }
            #expect(head.first?.hasPrefix("HTTP/1.1 200") == true, "\(head)")
            #expect(head.contains { $0.lowercased().hasPrefix("content-type: text/event-stream") })
            return client
        }
    }

    /// The next `count` events of a stream (chunk sizes and `retry:` skipped) as (id, data JSON).
    func readEvents(_ client: LineClient, _ count: Int) async throws -> [(id: Int, data: [String: Any])] {
        let read = try await onDispatchThread {
            var events: [(id: Int, json: String)] = []
            var id: Int?
            while events.count < count, let line = client.readLine() {
                let text = line.hasSuffix("\r") ? String(line.dropLast()) : line
                if text.hasPrefix("id: ") { id = Int(text.dropFirst(4)) }
                if text.hasPrefix("data: "), let id { events.append((id, String(text.dropFirst(6)))) }
            }
            return events
        }
        return read.map { event in
            (event.id, (try? JSONSerialization.jsonObject(with: Data(event.json.utf8))) as? [String: Any] ?? [:])
        }
    }

    @Test func aLiveTailResumesFromLastEventID() async throws {
        let server = try await TestHTTPServer()
        let publisher = try server.protocolClient("tail")
        publisher.send("Publish\told\t0\tone\nPublish\told\t0\ttwo\n")
        #expect(publisher.readLines(2) == ["Published\t1", "Published\t2"])

        // By default only new events; with offset=0 the stored ones first.
        let fromStart = try await openStream(server, "/api/v1/collections/tail/stream?offset=0")
        let onlyNew = try await openStream(server, "/api/v1/collections/tail/stream")
        let stored = try await readEvents(fromStart, 2)
        #expect(stored.map(\.id) == [1, 2])
        #expect(stored.first?.data["data"] as? String == "one")
        publisher.send("Publish\tnew x\t0\tthree\n")
        #expect(publisher.readLine() == "Published\t3")
        let live = try await readEvents(fromStart, 1)
        #expect(live.first?.id == 3)
        #expect(live.first?.data["tags"] as? [String] == ["new", "x"])
        #expect(try await readEvents(onlyNew, 1).first?.id == 3)

        // A browser reconnecting sends the last id it saw: the tail goes on after it.
        let resumed = try await openStream(server, "/api/v1/collections/tail/stream?offset=0", headers: ["Last-Event-ID: 2"])
        #expect(try await readEvents(resumed, 1).first?.id == 3)
        let tagged = try await openStream(server, "/api/v1/collections/tail/stream?offset=0&tag=old")
        #expect(try await readEvents(tagged, 2).map(\.id) == [1, 2])
        // `since` starts at the first event stamped at or after the time (ids 1 to 3 were stamped now).
        publisher.send("Publish\tdated\t9000000005000\tfour\nPublish\tdated\t9000000004000\tfive\nPublish\tdated\t9000000006000\tsix\n")
        #expect(publisher.readLines(3) == ["Published\t4", "Published\t5", "Published\t6"])
        let dated = try await openStream(server, "/api/v1/collections/tail/stream?since=9000000004500")
        #expect(try await readEvents(dated, 3).map(\.id) == [4, 5, 6])
        try await server.stop()
    }

    /// A tail whose reader stops reading pauses its own subscription (the server does not buffer
    /// the collection for it), while publishing and other readers go on.
    @Test func aStalledTailPausesOnlyItself() async throws {
        let server = try await TestHTTPServer()
        let publisher = try server.protocolClient("stall")
        let stalled = try await openStream(server, "/api/v1/collections/stall/stream?offset=0", receiveBuffer: 16384)
        let total = 20_000
        let data = String(repeating: "x", count: 1000)
        try await onDispatchThread {
            for round in 0..<20 {
                publisher.send(String(repeating: "Publish\tt\t0\t\(data)\n", count: total / 20))
                #expect(publisher.readLines(total / 20).last == "Published\t\((round + 1) * total / 20)")
            }
        }
        try await Task.sleep(for: .milliseconds(300))
        let figures = try await httpRequest(server.port, "GET", "/api/v1/collections/stall")
        let delivered = try #require(figures.object["eventsDelivered"] as? Int)
        // The socket buffers and the stream's own buffer hold a few thousand events at most; the
        // rest were never read for it (its subscription paused), so they are not in memory either.
        // (The server's heap is not a usable figure here: publishing 20 MB grows it by as much.)
        #expect(delivered < total / 2, "delivered \(delivered) of \(total) to a reader that reads nothing")
        // Another tail of the same collection is not held up.
        let other = try await openStream(server, "/api/v1/collections/stall/stream?offset=\(total - 3)")
        #expect(try await readEvents(other, 3).map(\.id) == [total - 2, total - 1, total])
        // Once the stalled reader reads, it gets everything, in order.
        let all = try await readEvents(stalled, total)
        #expect(all.count == total)
        #expect(all.last?.id == total)
        #expect(zip(all, all.dropFirst()).allSatisfy { $0.id + 1 == $1.id })
        try await server.stop()
    }

    /// A tail whose client goes away ends at once, even on a collection where nothing happens.
    @Test func aClosedTailEndsItsSubscription() async throws {
        let server = try await TestHTTPServer()
        let publisher = try server.protocolClient("quiet")
        publisher.send("Publish\tt\t0\tx\n")
        #expect(publisher.readLine() == "Published\t1")
        for _ in 0..<3 {
            let tail = try await openStream(server, "/api/v1/collections/quiet/stream?tag=never")
            tail.shutdownWrite()
        }
        var subscriptions = -1
        for _ in 0..<100 where subscriptions != 0 {
            try await Task.sleep(for: .milliseconds(50))
            subscriptions = try await httpRequest(server.port, "GET", "/api/v1/collections/quiet").object["subscriptions"] as? Int ?? -1
        }
        #expect(subscriptions == 0)
        try await server.stop()
    }

    /// SIGTERM with a tail and an export whose clients read nothing: the server still stops,
    /// promptly and with status 0.
    @Test func readersThatStopReadingDoNotHoldUpShutdown() async throws {
        let server = try await TestHTTPServer()
        let publisher = try server.protocolClient("big")
        let data = String(repeating: "y", count: 1000)
        try await onDispatchThread {
            publisher.send(String(repeating: "Publish\tt\t0\t\(data)\n", count: 5000))
            #expect(publisher.readLines(5000).last == "Published\t5000")
        }
        let tail = try await openStream(server, "/api/v1/collections/big/stream?offset=0", receiveBuffer: 4096)
        let export = try LineClient(port: server.port, receiveBuffer: 4096)
        export.send("GET /api/v1/collections/big/events?format=ndjson HTTP/1.1\r\nHost: x\r\n\r\n")
        try await Task.sleep(for: .milliseconds(300))
        let start = ContinuousClock.now
        let status = server.process.stop()
        #expect(status == 0)
        #expect(ContinuousClock.now - start < .seconds(10), "stopping took \(ContinuousClock.now - start)")
        _ = (tail, export)
        server.process.removeFiles()
    }

    @Test func everyRouteNeedsTheCredentials() async throws {
        let server = try await TestHTTPServer(username: "admin", password: "s3cret", maxLoginFailures: 3)
        for path in ["/", "/api/v1/server", "/metrics", "/console/app.js", "/api/v1/nothing"] {
            let refused = try await httpRequest(server.port, "GET", path)
            #expect(refused.status == 401, "\(path)")
            #expect(refused.header("www-authenticate")?.hasPrefix("Basic realm=\"exar-db\"") == true)
            #expect(refused.object["error"] as? String == "AuthenticationError")
        }
        let right = basicAuthorization("admin", "s3cret")
        #expect(try await httpRequest(server.port, "GET", "/api/v1/server", headers: right).status == 200)
        #expect(try await httpRequest(server.port, "GET", "/metrics", headers: right).status == 200)
        let posted = try await httpRequest(server.port, "POST", "/api/v1/collections/c/events", headers: right,
                                           body: #"{"tags": "a", "data": "x"}"#)
        #expect(posted.status == 201)

        // Wrong guesses: each answer later than the one before, the last one closes the connection.
        var delays: [Duration] = []
        for guess in ["s3cret\u{0}", "S3cret", "admin"] {
            let start = ContinuousClock.now
            let wrong = try await httpRequest(server.port, "GET", "/api/v1/server", headers: basicAuthorization("admin", guess))
            delays.append(ContinuousClock.now - start)
            #expect(wrong.status == 401)
            #expect((wrong.header("connection") == "close") == (guess == "admin"))
        }
        // The connection of a guess past the limit is closed by the server, not only marked.
        let keptAlive = try LineClient(port: server.port)
        let wrongHeader = basicAuthorization("admin", "nope").first!
        keptAlive.send("GET /api/v1/server HTTP/1.1\r\nHost: x\r\n\(wrongHeader.key): \(wrongHeader.value)\r\n\r\n")
        #expect(try await onDispatchThread { keptAlive.readUntilClosed() != nil }, "the connection stayed open")
        #expect(delays[0] >= .milliseconds(100) && delays[1] >= .milliseconds(200) && delays[2] >= .milliseconds(400), "\(delays)")
        // A right answer still works, and clears the count.
        #expect(try await httpRequest(server.port, "GET", "/api/v1/server", headers: right).status == 200)
        let wrongUser = try await httpRequest(server.port, "GET", "/", headers: basicAuthorization("root", "s3cret"))
        #expect(wrongUser.status == 401)
        #expect(wrongUser.header("connection") != "close")
        try await server.stop()
    }

    @Test func metricsCountWhatWasPublished() async throws {
        let server = try await TestHTTPServer()
        let client = try server.protocolClient("metered")
        for _ in 1...40 { client.send("Publish\tt\t0\tdata\n") }
        client.send("Publish\t\t0\tno tags\n")
        #expect(client.readLines(41).last == "Error\tValidationError\tevent must not contain empty tags")
        let posted = try await httpRequest(server.port, "POST", "/api/v1/collections/metered/events",
                                           body: #"[{"tags": "h", "data": "1"}, {"tags": "h", "data": "2"}]"#)
        #expect(posted.status == 201)

        let metrics = try await httpRequest(server.port, "GET", "/metrics")
        #expect(metrics.status == 200)
        #expect(metrics.header("content-type")?.hasPrefix("text/plain; version=0.0.4") == true)
        func value(_ series: String) -> Double? {
            metrics.body.split(separator: "\n").first { $0.hasPrefix(series + " ") }.flatMap { Double($0.split(separator: " ").last!) }
        }
        #expect(value(#"exar_events_appended_total{collection="metered"}"#) == 42)
        #expect(value(#"exar_collection_last_id{collection="metered"}"#) == 42)
        #expect(value(#"exar_collection_first_id{collection="metered"}"#) == 1)
        #expect(value(#"exar_collection_segments{collection="metered"}"#) == 1)
        #expect(value(#"exar_publish_rejected_total{reason="validation"}"#) == 1)
        #expect(value("exar_publish_duration_seconds_count") == 42)
        #expect(value(#"exar_publish_duration_seconds_bucket{le="+Inf"}"#) == 42)
        #expect(value("exar_connections_active") == 1)
        #expect(value(#"exar_build_info{version="0.1.0"}"#) == 1)
        #expect((value("exar_disk_free_bytes") ?? 0) > 0)
        #expect(metrics.body.contains("# TYPE exar_sync_duration_seconds histogram"))

        // Counters move on between scrapes.
        client.send("Publish\tt\t0\tmore\n")
        #expect(client.readLine() == "Published\t43")
        let again = try await httpRequest(server.port, "GET", "/metrics")
        #expect(again.body.contains("exar_events_appended_total{collection=\"metered\"} 43\n"))
        try await server.stop()
    }
}

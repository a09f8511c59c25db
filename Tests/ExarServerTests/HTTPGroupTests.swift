import Foundation
import Testing

/// `/api/v1/collections/:name/groups` and the `exar_group_*` metrics (docs/HTTP.md, "Consumer groups").
@Suite struct HTTPGroupTests {
    @Test func groupsAreListedTheirParkedEventsRedeliveredOrDiscardedAndDeleted() async throws {
        // One delivery each: an event a leaving member held unacknowledged is parked at once.
        let server = try await TestHTTPServer(database: ["groups = { ack_wait_in_ms = 3600000, max_deliver = 1 }"])
        let json = ["Content-Type": "application/json"]
        let base = "/api/v1/collections/jobs/groups"
        let publisher = try server.protocolClient("jobs")
        publisher.send((1...4).map { "Publish\tjob\t0\tj\($0)\n" }.joined())
        #expect(publisher.readLines(4).last == "Published\t4")
        let empty = try await httpRequest(server.port, "GET", base)
        #expect(empty.status == 200 && empty.body == "[]\n", "\(empty.body)")

        // A member takes 1 to 3, acknowledges 1 (which gives it room for 4) and disconnects: 2 to 4 are parked.
        let member = try server.protocolClient("jobs")
        member.send("Join\tworkers\t0\t3\n")
        #expect(eventIds(member.readLines(4)) == [1, 2, 3])
        let listed = try await httpRequest(server.port, "GET", base)
        #expect(listed.array.first?["members"] as? Int == 1 && listed.array.first?["inFlight"] as? Int == 3, "\(listed.body)")
        #expect(listed.array.first?["lag"] as? Int == 4 && listed.array.first?["tag"] is NSNull, "\(listed.body)")
        member.send("Ack\t1\n")
        #expect(eventIds(member.readLines(1)) == [4])
        member.shutdownWrite()
        var group: [String: Any] = [:]
        try await eventuallyAsync {
            group = try await httpRequest(server.port, "GET", base + "/workers").object
            return group["parked"] as? Int == 3
        }
        #expect(group["name"] as? String == "workers" && group["members"] as? Int == 0, "\(group)")
        #expect(group["ackedFloor"] as? Int == 4 && group["position"] as? Int == 4 && group["lag"] as? Int == 0, "\(group)")
        let parked = (group["parkedEvents"] as? [[String: Any]] ?? []).map { ($0["id"] as? Int ?? 0, $0["deliveries"] as? Int ?? 0) }
        #expect(parked.map(\.0) == [2, 3, 4] && parked.map(\.1) == [1, 1, 1], "\(group)")
        #expect(group["parkedTotal"] as? Int == 3 && group["redelivered"] as? Int == 0 && group["lost"] as? Int == 0, "\(group)")

        let metrics = try await httpRequest(server.port, "GET", "/metrics", json: false).body
        let labels = #"{collection="jobs",group="workers"}"#
        for line in ["exar_group_acked_id\(labels) 4", "exar_group_lag_events\(labels) 0", "exar_group_parked_total\(labels) 3",
                     "exar_group_redelivered_total\(labels) 0", "exar_group_parked_events\(labels) 3"] {
            #expect(metrics.contains(line + "\n") || metrics.contains(line + ".0\n"), "\(line) in\n\(metrics)")
        }

        // Redeliver 2 (and an id that is not parked, which counts nothing): the next member gets it.
        let redeliver = try await httpRequest(server.port, "POST", base + "/workers/redeliver", headers: json, body: #"{"ids": [2, 9]}"#)
        #expect(redeliver.status == 200 && redeliver.object["redelivered"] as? Int == 1, "\(redeliver.body)")
        let next = try server.protocolClient("jobs")
        next.send("Join\tworkers\t0\t5\n")
        #expect(eventIds(next.readLines(2)) == [2])
        next.send("Ack\t2\n")
        try await eventuallyAsync {
            try await httpRequest(server.port, "GET", base + "/workers").object["inFlight"] as? Int == 0
        }
        // Discard the rest (no body: every parked event).
        let discard = try await httpRequest(server.port, "POST", base + "/workers/discard", headers: json)
        #expect(discard.status == 200 && discard.object["discarded"] as? Int == 2, "\(discard.body)")
        #expect(try await httpRequest(server.port, "GET", base + "/workers").object["parked"] as? Int == 0)

        // Refusals: each a clear error, nothing changed.
        let refusals: [(String, String, [String: String], String?, Int, String)] = [
            ("GET", base + "/nobody", [:], nil, 404, "NotFound"),
            ("POST", base + "/nobody/discard", json, nil, 404, "NotFound"),
            ("GET", "/api/v1/collections/missing/groups", [:], nil, 404, "NotFound"),
            ("GET", base + "/a%20b", [:], nil, 400, "SubscriptionError"),
            ("POST", base + "/workers/redeliver", json, #"{"ids": [-1]}"#, 400, "ParseError"),
            ("POST", base + "/workers/redeliver", json, "[1]", 400, "ParseError"),
            ("POST", base + "/workers/discard", ["Content-Type": "text/plain"], "{}", 415, "ParseError"),
            ("DELETE", base + "/workers", [:], nil, 415, "ParseError"),
        ]
        for (method, path, headers, body, status, kind) in refusals {
            let answer = try await httpRequest(server.port, method, path, headers: headers, body: body)
            #expect(answer.status == status && answer.object["error"] as? String == kind, "\(method) \(path): \(answer.body)")
        }

        // Deleting the group ends its member's stream, and its series leave /metrics.
        let deleted = try await httpRequest(server.port, "DELETE", base + "/workers", headers: json)
        #expect(deleted.status == 200 && deleted.object["deleted"] as? String == "workers", "\(deleted.body)")
        #expect(next.readLine() == "EndOfEventStream")
        #expect(try await httpRequest(server.port, "GET", base + "/workers").status == 404)
        #expect(try await httpRequest(server.port, "GET", base).body == "[]\n")
        let after = try await httpRequest(server.port, "GET", "/metrics", json: false).body
        #expect(!after.contains("group=\"workers\""), "\(after)")
        #expect(server.process.isRunning, "\(server.process.log)")
        try await server.stop()
    }

    /// A scrape after a collection or a group is gone forgets its series while others of the same
    /// names remain (the registry once stopped the process on such a scrape).
    @Test func aScrapeAfterDroppingOneOfTwoCollectionsForgetsOnlyItsSeries() async throws {
        let server = try await TestHTTPServer()
        for name in ["kept", "gone"] {
            let client = try server.protocolClient(name)
            client.send("Publish\tt\t0\tx\nJoin\tg-\(name)\t0\t0\n")
            #expect(client.readLines(3).first == "Published\t1")
        }
        let before = try await httpRequest(server.port, "GET", "/metrics", json: false)
        #expect(before.body.contains(#"exar_group_acked_id{collection="gone",group="g-gone"}"#), "\(before.body)")
        let dropped = try await httpRequest(server.port, "DELETE", "/api/v1/collections/gone", headers: ["Content-Type": "application/json"])
        #expect(dropped.status == 200, "\(dropped.body)")
        let after = try await httpRequest(server.port, "GET", "/metrics", json: false)
        #expect(after.status == 200 && !after.body.contains(#"collection="gone""#), "\(after.body)")
        #expect(after.body.contains(#"exar_group_acked_id{collection="kept",group="g-kept"}"#), "\(after.body)")
        #expect(after.body.contains(#"exar_collection_last_id{collection="kept"} 1"#), "\(after.body)")
        #expect(server.process.isRunning, "\(server.process.log)")
        try await server.stop()
    }
}

/// Waits up to 10 s for an asynchronous condition.
func eventuallyAsync(_ condition: () async throws -> Bool) async throws {
    for _ in 0..<400 {
        if try await condition() { return }
        try await Task.sleep(for: .milliseconds(25))
    }
    Issue.record("the condition did not hold within 10 s")
}

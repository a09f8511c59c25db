import Foundation
import Testing

/// `POST .../events` with `expect: {tag, id}`: the HTTP side of `PublishIf`.
@Suite struct HTTPPublishIfTests {
    @Test func expectStoresOnlyWhenTheTagsLastIdMatches() async throws {
        let server = try await TestHTTPServer()
        let path = "/api/v1/collections/orders/events"
        func post(_ body: String) async throws -> HTTPAnswer {
            try await httpRequest(server.port, "POST", path, body: body)
        }
        let first = try await post(#"{"tags": ["order-7", "created"], "data": "a", "expect": {"tag": "order-7", "id": 0}}"#)
        #expect(first.status == 201, "\(first.body)")
        #expect(first.object["id"] as? Int == 1)
        // Another tag's event in between: it does not move order-7's last id.
        let other = try await post(#"{"tags": "order-8", "data": "b"}"#)
        #expect(other.object["id"] as? Int == 2)

        let stale = try await post(#"{"tags": "order-7", "data": "c", "expect": {"tag": "order-7", "id": 0}}"#)
        #expect(stale.status == 409, "\(stale.body)")
        #expect(stale.object["error"] as? String == "ConflictError")
        #expect(stale.object["actualId"] as? Int == 1, "\(stale.body)")

        let fresh = try await post(#"{"tags": "order-7 paid", "data": "d", "expect": {"tag": "order-7", "id": 1}}"#)
        #expect(fresh.status == 201, "\(fresh.body)")
        #expect(fresh.object["id"] as? Int == 3)
        // The expected tag need not be among the event's own tags.
        let elsewhere = try await post(#"{"tags": "audit", "data": "e", "expect": {"tag": "order-7", "id": 3}}"#)
        #expect(elsewhere.object["id"] as? Int == 4, "\(elsewhere.body)")
        let late = try await post(#"{"tags": "order-7", "data": "f", "expect": {"tag": "order-7", "id": 1}}"#)
        #expect(late.status == 409)
        #expect(late.object["actualId"] as? Int == 3, "\(late.body)")

        let refusals: [(String, String, String)] = [
            (#"[{"tags": "a", "data": "x", "expect": {"tag": "a", "id": 0}}]"#, "ParseError", "one event"),
            (#"{"tags": "a", "data": "x", "expect": {"tag": "a b", "id": 0}}"#, "ValidationError", "expect.tag"),
            (#"{"tags": "a", "data": "x", "expect": {"tag": "", "id": 0}}"#, "ValidationError", "expect.tag"),
            (#"{"tags": "a", "data": "x", "expect": {"tag": "a", "id": -1}}"#, "ParseError", "expect.id"),
            (#"{"tags": "a", "data": "x", "expect": {"tag": "a"}}"#, "ParseError", "expect.id"),
            (#"{"tags": "a", "data": "x", "expect": "a"}"#, "ParseError", "expect must be an object"),
        ]
        for (body, kind, text) in refusals {
            let answer = try await post(body)
            #expect(answer.status == 400, "\(body): \(answer.body)")
            #expect(answer.object["error"] as? String == kind, "\(body): \(answer.body)")
            #expect((answer.object["message"] as? String)?.contains(text) == true, "\(body): \(answer.body)")
        }
        // Nothing refused or in conflict was stored, and the protocol port sees the same history.
        let collection = try await httpRequest(server.port, "GET", "/api/v1/collections/orders")
        #expect(collection.object["lastId"] as? Int == 4)
        let client = try server.protocolClient("orders")
        client.send("PublishIf\torder-7\t3\torder-7\t0\tg\n")
        #expect(client.readLine() == "Published\t5")
        let metrics = try await httpRequest(server.port, "GET", "/metrics", json: false)
        #expect(metrics.body.contains("reason=\"conflict\""), "\(metrics.body.prefix(2000))")
        try await server.stop()
    }
}

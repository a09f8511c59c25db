import ExarCore
import Foundation
import Testing

/// The HTTP API (docs/HTTP.md) against a real server on loopback, through a plain socket client.
@Suite struct HTTPAPITests {
    @Test func serverAndCollectionFigures() async throws {
        let server = try await TestHTTPServer()
        let client = try server.protocolClient("orders")
        client.send("Publish\ta\t0\tone\nPublish\ta b\t0\ttwo\nPublish\tb\t0\tthree\n")
        #expect(client.readLines(3) == ["Published\t1", "Published\t2", "Published\t3"])

        let figures = try await httpRequest(server.port, "GET", "/api/v1/server")
        #expect(figures.status == 200)
        #expect(figures.header("content-type")?.hasPrefix("application/json") == true)
        #expect(figures.header("x-content-type-options") == "nosniff")
        #expect(figures.object["version"] as? String == "0.1.0")
        #expect(figures.object["connections"] as? Int == 1)
        #expect(figures.object["collections"] as? Int == 1)
        #expect((figures.object["diskFreeBytes"] as? Int ?? 0) > 0)
        #expect((figures.object["dataBytes"] as? Int ?? 0) > 0)
        let publish = figures.object["publish"] as? [String: Any]
        #expect(publish?["count"] as? Int == 3)
        #expect(publish?["p99Seconds"] is NSNumber)

        let list = try await httpRequest(server.port, "GET", "/api/v1/collections")
        #expect(list.status == 200)
        #expect(list.array.count == 1)
        #expect(list.array.first?["name"] as? String == "orders")
        #expect(list.array.first?["firstId"] as? Int == 1)
        #expect(list.array.first?["lastId"] as? Int == 3)
        #expect(list.array.first?["events"] as? Int == 3)
        #expect(list.array.first?["segments"] as? Int == 1)

        let one = try await httpRequest(server.port, "GET", "/api/v1/collections/orders")
        let settings = one.object["settings"] as? [String: Any]
        #expect(settings?["segmentSize"] as? Int == 1 << 20)
        #expect(settings?["compression"] as? String == "none")

        let missing = try await httpRequest(server.port, "GET", "/api/v1/collections/nothing-here")
        #expect(missing.status == 404)
        #expect(missing.object["error"] as? String == "NotFound")
        // A read never creates a collection.
        #expect(!FileManager.default.fileExists(atPath: server.process.dataFolder + "/nothing-here"))
        let invalid = try await httpRequest(server.port, "GET", "/api/v1/collections/%2E%2E/events")
        #expect(invalid.status == 400)
        #expect(invalid.object["error"] as? String == "ConnectionError")
        let noRoute = try await httpRequest(server.port, "GET", "/api/v2/anything")
        #expect(noRoute.status == 404)
        #expect(noRoute.object["error"] as? String == "NotFound")
        try await server.stop()
    }

    @Test func pagesBothWaysAndFiltersByTag() async throws {
        let server = try await TestHTTPServer()
        let client = try server.protocolClient("pages")
        for id in 1...25 { client.send("Publish\t\(id % 2 == 0 ? "even" : "odd") all\t\(1000 + id)\tevent \(id)\n") }
        #expect(client.readLines(25).last == "Published\t25")

        func ids(_ query: String) async throws -> ([Int], Any?) {
            let answer = try await httpRequest(server.port, "GET", "/api/v1/collections/pages/events" + query)
            #expect(answer.status == 200, "\(query): \(answer.body)")
            let events = answer.object["events"] as? [[String: Any]] ?? []
            return (events.compactMap { $0["id"] as? Int }, answer.object["next"])
        }
        let first = try await ids("?limit=10")
        #expect(first.0 == Array(1...10))
        #expect(first.1 as? Int == 10)
        let last = try await ids("?offset=20&limit=10")
        #expect(last.0 == Array(21...25))
        #expect(last.1 is NSNull)
        let newest = try await ids("?order=desc&limit=10")
        #expect(newest.0 == Array((16...25).reversed()))
        #expect(newest.1 as? Int == 16)
        let older = try await ids("?order=desc&offset=16&limit=10")
        #expect(older.0 == Array((6...15).reversed()))
        let oldest = try await ids("?order=desc&offset=6&limit=10")
        #expect(oldest.0 == Array((1...5).reversed()))
        #expect(oldest.1 is NSNull)
        let even = try await ids("?tag=even&limit=5")
        #expect(even.0 == [2, 4, 6, 8, 10])
        let evenNewest = try await ids("?tag=even&order=desc&limit=3")
        #expect(evenNewest.0 == [24, 22, 20])
        #expect(evenNewest.1 as? Int == 20)
        // With a tag, `desc` pages by id too: below the offset, and `next` moves on.
        let evenBelow = try await ids("?tag=even&order=desc&offset=19&limit=3")
        #expect(evenBelow.0 == [18, 16, 14])
        let evenFurther = try await ids("?tag=even&order=desc&offset=\(evenBelow.1 as? Int ?? 0)&limit=3")
        #expect(evenFurther.0 == [12, 10, 8])
        let evenLast = try await ids("?tag=even&order=desc&offset=5&limit=3")
        #expect(evenLast.0 == [4, 2])
        #expect(evenLast.1 is NSNull)

        let event = try await httpRequest(server.port, "GET", "/api/v1/collections/pages/events?offset=2&limit=1")
        let object = (event.object["events"] as? [[String: Any]])?.first
        #expect(object?["timestamp"] as? Int == 1003)
        #expect(object?["tags"] as? [String] == ["odd", "all"])
        #expect(object?["data"] as? String == "event 3")

        // `since`: from the first event stamped at or after that time (Locate).
        let since = try await ids("?since=1010&limit=3")
        #expect(since.0 == [10, 11, 12])
        #expect(since.1 as? Int == 12)
        #expect(try await ids("?since=5000").0 == [])
        #expect(try await ids("?since=0&tag=even&limit=2").0 == [2, 4])

        for (query, word) in [("?limit=abc", "limit"), ("?offset=-1", "offset"), ("?order=up", "order"),
                              ("?format=xml", "format"), ("?limit=10001", "limit"), ("?limit=0", "limit"),
                              ("?since=yesterday", "since"), ("?since=5&offset=2", "not both"),
                              ("?since=5&order=desc", "order=desc")] {
            let bad = try await httpRequest(server.port, "GET", "/api/v1/collections/pages/events" + query)
            #expect(bad.status == 400, "\(query)")
            #expect(bad.object["error"] as? String == "ParseError")
            #expect((bad.object["message"] as? String)?.contains(word) == true, "\(query): \(bad.body)")
        }
        try await server.stop()
    }

    @Test func exportsStreamTheWholeAnswer() async throws {
        let server = try await TestHTTPServer()
        let client = try server.protocolClient("export")
        let count = 5_000
        for id in 1...count { client.send("Publish\tt\(id % 3)\t0\t{\"n\":\(id),\"s\":\"a,b\"}\n") }
        #expect(client.readLines(count).last == "Published\t\(count)")

        let ndjson = try await httpRequest(server.port, "GET", "/api/v1/collections/export/events?format=ndjson")
        #expect(ndjson.status == 200)
        #expect(ndjson.header("content-type")?.hasPrefix("application/x-ndjson") == true)
        #expect(ndjson.header("content-disposition")?.contains("export.ndjson") == true)
        let lines = ndjson.body.split(separator: "\n")
        #expect(lines.count == count)
        let decoded = lines.compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
        #expect(decoded.map { $0["id"] as? Int ?? 0 } == Array(1...count))

        let csv = try await httpRequest(server.port, "GET", "/api/v1/collections/export/events?format=csv&tag=t1&order=desc&limit=3")
        #expect(csv.status == 200)
        let rows = csv.body.components(separatedBy: "\r\n").filter { !$0.isEmpty }
        #expect(rows.first == "id,timestamp,tags,data")
        #expect(rows.count == 4)
        let newestT1 = (1...count).last { $0 % 3 == 1 }!
        #expect(rows[1].hasPrefix("\(newestT1),"))
        #expect(rows[1].hasSuffix(",t1,\"{\"\"n\"\":\(newestT1),\"\"s\"\":\"\"a,b\"\"}\""))
        try await server.stop()
    }

    @Test func postsEventsWithTheProtocolsValidation() async throws {
        let server = try await TestHTTPServer(maxBodyBytes: 4096)
        let one = try await httpRequest(server.port, "POST", "/api/v1/collections/posted/events",
                                  body: #"{"tags": ["order", "created"], "data": "{\"id\":7}", "timestamp": 1764043200123}"#)
        #expect(one.status == 201, "\(one.body)")
        #expect(one.object["id"] as? Int == 1)
        let many = try await httpRequest(server.port, "POST", "/api/v1/collections/posted/events",
                                   body: #"[{"tags": "a b", "data": "x"}, {"tags": ["c"], "data": "y"}]"#)
        #expect(many.status == 201)
        #expect(many.object["ids"] as? [Int] == [2, 3])

        let reader = try server.protocolClient("posted")
        reader.send("Subscribe\tfalse\t0\n")
        let lines = reader.readLines(5)
        try #require(lines.count == 5, "\(lines)")
        #expect(lines.first == "Subscribed")
        #expect(lines[1] == "Event\t1\t1764043200123\torder created\t{\"id\":7}")
        #expect(lines[2].hasPrefix("Event\t2\t") && lines[2].hasSuffix("\ta b\tx"))
        #expect(lines[4] == "EndOfEventStream")

        let refusals: [(String, Int, String, String)] = [
            (#"{"tags": "a  b", "data": "x"}"#, 400, "ValidationError", "event must not contain empty tags"),
            (#"{"tags": [], "data": "x"}"#, 400, "ValidationError", "event must contain at least one tag"),
            (#"{"tags": ["a"], "data": "x\ny"}"#, 400, "ValidationError", "event data must not contain newlines"),
            (#"{"tags": ["a"], "data": 5}"#, 400, "ParseError", "data must be a string"),
            (#"{"tags": ["a"], "data": "x", "timestamp": -3}"#, 400, "ParseError", "timestamp"),
            (#"{"tags": ["a"], "data": "x", "timestamp": 1.5}"#, 400, "ParseError", "timestamp"),
            (#"{"tags": ["a"]"#, 400, "ParseError", "not valid JSON"),
            (#"[{"tags": "ok", "data": "x"}, {"tags": "", "data": "y"}]"#, 400, "ValidationError", "event 1: event must not contain empty tags"),
            ("{\"tags\": [\"a\"], \"data\": \"" + String(repeating: "x", count: 5000) + "\"}", 413, "ValidationError", "larger than"),
        ]
        for (body, status, kind, text) in refusals {
            let answer = try await httpRequest(server.port, "POST", "/api/v1/collections/posted/events", body: body)
            #expect(answer.status == status, "\(body.prefix(60)): \(answer.body)")
            #expect(answer.object["error"] as? String == kind, "\(body.prefix(60))")
            #expect((answer.object["message"] as? String)?.contains(text) == true, "\(body.prefix(60)): \(answer.body)")
        }
        // Nothing refused was stored: the refused array stored none of its events.
        let count = try await httpRequest(server.port, "GET", "/api/v1/collections/posted")
        #expect(count.object["lastId"] as? Int == 3)

        let plain = try await httpRequest(server.port, "POST", "/api/v1/collections/posted/events",
                                    headers: ["Content-Type": "text/plain"], body: #"{"tags": "a", "data": "x"}"#, json: false)
        #expect(plain.status == 415)
        #expect(plain.header("access-control-allow-origin") == nil)
        try await server.stop()
    }

    @Test func dropsSegmentsAndVerify() async throws {
        let server = try await TestHTTPServer()
        let client = try server.protocolClient("doomed")
        client.send("Publish\tt\t0\tx\n")
        #expect(client.readLine() == "Published\t1")
        let segments = try await httpRequest(server.port, "GET", "/api/v1/collections/doomed/segments")
        #expect(segments.status == 200)
        #expect(segments.array.first?["file"] as? String == "00000000000000000001.log")
        #expect(segments.array.first?["state"] as? String == "active")
        #expect(segments.array.first?["events"] as? Int == 1)
        let verified = try await httpRequest(server.port, "POST", "/api/v1/collections/doomed/verify", body: "{}")
        #expect(verified.status == 200)
        #expect(verified.object["ok"] as? Bool == true)
        #expect(verified.object["events"] as? Int == 1)

        let refused = try await httpRequest(server.port, "DELETE", "/api/v1/collections/doomed", headers: ["Content-Type": "text/plain"])
        #expect(refused.status == 415)
        let dropped = try await httpRequest(server.port, "DELETE", "/api/v1/collections/doomed", body: "")
        #expect(dropped.status == 200, "\(dropped.body)")
        #expect(dropped.object["dropped"] as? String == "doomed")
        #expect(try await httpRequest(server.port, "GET", "/api/v1/collections/doomed").status == 404)
        // The protocol connection bound to it now gets the dropped collection's error.
        client.send("Publish\tt\t0\tx\n")
        #expect(client.readLine() == "Error\tConnectionError")
        try await server.stop()
    }

    @Test func consoleFilesHaveETags() async throws {
        let server = try await TestHTTPServer()
        let page = try await httpRequest(server.port, "GET", "/")
        #expect(page.status == 200)
        #expect(page.header("content-type")?.hasPrefix("text/html") == true)
        #expect(page.header("content-security-policy")?.contains("default-src 'self'") == true)
        let etag = try #require(page.header("etag"))
        let again = try await httpRequest(server.port, "GET", "/", headers: ["If-None-Match": etag])
        #expect(again.status == 304)
        #expect(again.body.isEmpty)
        #expect(try await httpRequest(server.port, "GET", "/console/no-such-file.js").status == 404)
        try await server.stop()
    }
}

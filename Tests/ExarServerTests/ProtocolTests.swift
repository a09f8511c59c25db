import ExarModel
import Foundation
import Testing

@Suite(.serialized) struct ProtocolTests {
    @Test func theProtocolExampleByteForByte() async throws {
        let server = try await TestServer()
        defer { server.removeFiles() }
        let client = try LineClient(port: server.port)
        client.send("Connect\torders\n")
        #expect(client.readLine() == "Connected")
        client.send("Publish\torder created\t1700000000000\t{\"id\":7}\n")
        #expect(client.readLine() == "Published\t1")
        let before = UInt64(Date().timeIntervalSince1970 * 1000)
        client.send("Publish\torder\t0\tsecond\n")
        #expect(client.readLine() == "Published\t2")
        let after = UInt64(Date().timeIntervalSince1970 * 1000)
        client.send("Subscribe\tfalse\t0\n")
        #expect(client.readLine() == "Subscribed")
        #expect(client.readLine() == "Event\t1\t1700000000000\torder created\t{\"id\":7}")
        let second = client.readLine()!.split(separator: "\t", omittingEmptySubsequences: false)
        #expect(second.count == 5 && second[0] == "Event" && second[1] == "2" && second[3] == "order" && second[4] == "second")
        let stamped = UInt64(second[2]) ?? 0
        #expect(stamped >= before && stamped <= after)
        #expect(client.readLine() == "EndOfEventStream")
        client.send("Subscribe\tfalse\t0\t0\tcreated\n")
        #expect(client.readLines(3) == ["Subscribed", "Event\t1\t1700000000000\torder created\t{\"id\":7}", "EndOfEventStream"])
        client.send("Publish\t\t0\tx\n")
        #expect(client.readLine() == "Error\tValidationError\tevent must not contain empty tags")
        client.send("Frobnicate\n")
        #expect(client.readLine() == "Error\tParseError\tParseError\tunknown TCP message: Frobnicate")
        try await server.stop()
    }

    @Test func stateErrorsCrlfTabsAndEmptyData() async throws {
        let server = try await TestServer()
        defer { server.removeFiles() }
        let client = try LineClient(port: server.port)
        client.send("Publish\ta\t0\tx\r\nSubscribe\tfalse\t0\r\n")
        #expect(client.readLines(2) == Array(repeating: "Error\tIoError\tInvalidData\tunexpected TCP message", count: 2))
        client.send("Connect\tc\r\nConnect\tc\r\n")
        #expect(client.readLines(2) == ["Connected", "Error\tIoError\tInvalidData\tunexpected TCP message"])
        client.send("Publish\ttab\t5\tdata\twith\ttabs\r\nPublish\tempty\t6\t\r\nPublish\ttag\t0\r\nPublish\ta\tnope\tx\r\n")
        #expect(client.readLines(4) == ["Published\t1", "Published\t2", "Error\tParseError\tMissingField\t2",
                                        "Error\tParseError\tParseError\tinvalid digit found in string"])
        client.send("Subscribe\tfalse\t0\r\n")
        #expect(client.readLines(4) == ["Subscribed", "Event\t1\t5\ttab\tdata\twith\ttabs", "Event\t2\t6\tempty\t", "EndOfEventStream"])
        client.send("Connected\nEndOfEventStream\n")
        #expect(client.readLines(2) == Array(repeating: "Error\tIoError\tInvalidData\tunexpected TCP message", count: 2))
        try await server.stop()
    }

    @Test func tenThousandPipelinedPublishesInOneWrite() async throws {
        let server = try await TestServer()
        defer { server.removeFiles() }
        let client = try LineClient(port: server.port)
        var text = "Connect\tpipe\n"
        for number in 1...10_000 {
            text += "Publish\tp\t\(number)\tevent \(number)\n"
        }
        client.send(text)
        let answers = client.readLines(10_001)
        #expect(answers.first == "Connected")
        #expect(Array(answers.dropFirst()) == (1...10_000).map { "Published\t\($0)" })
        client.send("Subscribe\tfalse\t9998\n")
        #expect(client.readLines(4) == ["Subscribed", "Event\t9999\t9999\tp\tevent 9999", "Event\t10000\t10000\tp\tevent 10000", "EndOfEventStream"])
        try await server.stop()
    }

    @Test func idsContinueAcrossARestart() async throws {
        let first = try await TestServer()
        defer { first.removeFiles() }
        let client = try LineClient(port: first.port)
        client.send("Connect\tc\nPublish\tt\t1\ta\nPublish\tt\t2\tb\n")
        #expect(client.readLines(3) == ["Connected", "Published\t1", "Published\t2"])
        try await first.stop()
        let second = try await TestServer(folder: first.folder)
        let again = try LineClient(port: second.port)
        again.send("Connect\tc\nPublish\tt\t3\tc\nSubscribe\tfalse\t1\n")
        #expect(again.readLines(6) == ["Connected", "Published\t3", "Subscribed", "Event\t2\t2\tt\tb", "Event\t3\t3\tt\tc", "EndOfEventStream"])
        try await second.stop()
    }

    @Test func liveSubscriptionsWithLimitAndTagAndWaitingLines() async throws {
        let server = try await TestServer()
        defer { server.removeFiles() }
        let subscriber = try LineClient(port: server.port)
        let limited = try LineClient(port: server.port)
        let publisher = try LineClient(port: server.port)
        subscriber.send("Connect\tlive\nSubscribe\ttrue\t0\t0\tred\n")
        #expect(subscriber.readLines(2) == ["Connected", "Subscribed"])
        // Lines sent while streaming wait until the stream ends: this Publish is answered after the 3 events.
        limited.send("Connect\tlive\nSubscribe\ttrue\t0\t3\nPublish\tafter\t9\tlate\n")
        #expect(limited.readLines(2) == ["Connected", "Subscribed"])
        publisher.send("Connect\tlive\n")
        #expect(publisher.readLine() == "Connected")
        // The limited subscriber's waiting Publish runs once its stream ends, between these: ids vary.
        var ids: [Int: String] = [:]
        for number in 1...6 {
            publisher.send("Publish\t\(number % 2 == 0 ? "red" : "blue")\t\(number)\tn\(number)\n")
            let answer = publisher.readLine() ?? ""
            #expect(answer.hasPrefix("Published\t"))
            ids[number] = String(answer.dropFirst("Published\t".count))
        }
        #expect(Set(ids.values).count == 6)
        #expect(subscriber.readLines(3) == [2, 4, 6].map { "Event\t\(ids[$0]!)\t\($0)\tred\tn\($0)" })
        let limitedLines = limited.readLines(5)
        #expect(Array(limitedLines.prefix(4)) == [1, 2, 3].map { "Event\t\($0)\t\($0)\t\($0 % 2 == 0 ? "red" : "blue")\tn\($0)" } + ["EndOfEventStream"])
        #expect(limitedLines.last?.hasPrefix("Published\t") == true)
        #expect(!ids.values.contains(String(limitedLines.last!.dropFirst("Published\t".count))))
        try await server.stop()
    }

    @Test func collectionsAreSeparate() async throws {
        let server = try await TestServer()
        defer { server.removeFiles() }
        let a = try LineClient(port: server.port)
        let b = try LineClient(port: server.port)
        a.send("Connect\talpha\nPublish\tt\t1\tA\n")
        b.send("Connect\tbeta\nPublish\tt\t1\tB\nPublish\tt\t1\tB2\n")
        #expect(a.readLines(2) == ["Connected", "Published\t1"])
        #expect(b.readLines(3) == ["Connected", "Published\t1", "Published\t2"])
        a.send("Subscribe\tfalse\t0\n")
        #expect(a.readLines(3) == ["Subscribed", "Event\t1\t1\tt\tA", "EndOfEventStream"])
        let bad = try LineClient(port: server.port)
        bad.send("Connect\t../escape\nConnect\t\n")
        #expect(bad.readLines(2) == ["Error\tConnectionError", "Error\tConnectionError"])
        try await server.stop()
    }

    @Test func authenticationWhenTheServerHasCredentials() async throws {
        let server = try await TestServer(username: "admin", password: "s3cret")
        defer { server.removeFiles() }
        let client = try LineClient(port: server.port)
        client.send("Connect\tc\nConnect\tc\tadmin\twrong\nConnect\tc\tadmi\ts3cret\nPublish\tt\t0\tx\nConnect\tc\tadmin\ts3cret\nPublish\tt\t1\tx\n")
        #expect(client.readLines(6) == ["Error\tAuthenticationError", "Error\tAuthenticationError", "Error\tAuthenticationError",
                                        "Error\tIoError\tInvalidData\tunexpected TCP message", "Connected", "Published\t1"])
        try await server.stop()

        let open = try await TestServer()
        defer { open.removeFiles() }
        let anyone = try LineClient(port: open.port)
        anyone.send("Connect\tc\tsomeone\tanything\n")
        #expect(anyone.readLine() == "Connected")
        try await open.stop()
    }
}

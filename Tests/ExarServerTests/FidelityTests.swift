import Foundation
import Testing

/// The original 0.1 server's answers edge by edge (PROTOCOL.md, "The original parser, edge by
/// edge"), against the real server on a loopback port, byte for byte.
@Suite(.serialized) struct FidelityTests {
    let unexpected = "Error\tIoError\tInvalidData\tunexpected TCP message"

    /// Sends each line and expects exactly the one answer line.
    private func expectAnswers(_ client: LineClient, _ pairs: [(String, String)], sourceLocation: SourceLocation = #_sourceLocation) {
        for (line, answer) in pairs {
            client.send(line + "\n")
            #expect(client.readLine() == answer, "\(line.debugDescription)", sourceLocation: sourceLocation)
        }
    }

    @Test func beforeConnectTheStateDecidesBeforeValidation() async throws {
        let server = try await TestServer()
        defer { server.removeFiles() }
        let client = try LineClient(port: server.port)
        expectAnswers(client, [
            ("Publish\t\t0\tx", unexpected),
            ("Publish\ta  b\t0\tx", unexpected),
            ("Subscribe\ttrue\t0", unexpected),
            // A parse error is still the parser's: it comes before the state.
            ("Publish\ta\tx", "Error\tParseError\tParseError\tinvalid digit found in string"),
            ("Connect", "Error\tParseError\tMissingField\t1"),
            ("Connect\t", "Error\tConnectionError"),
            ("Connect\ta/b", "Error\tConnectionError"),
            ("Connect\t..", "Error\tConnectionError"),
            ("Connect\tc\tuser", "Connected"),
            ("Connect\tc", unexpected),
        ])
        try await server.stop()
    }

    @Test func fieldsLeftToRightAfterConnect() async throws {
        let server = try await TestServer()
        defer { server.removeFiles() }
        let client = try LineClient(port: server.port)
        expectAnswers(client, [
            ("Connect\tc", "Connected"),
            ("Publish", "Error\tParseError\tMissingField\t1"),
            ("Publish\t", "Error\tParseError\tMissingField\t1"),
            ("Publish\ta", "Error\tParseError\tMissingField\t1"),
            ("Publish\ta\tx", "Error\tParseError\tParseError\tinvalid digit found in string"),
            ("Publish\ta\t0", "Error\tParseError\tMissingField\t2"),
            ("Publish\ta\t", "Error\tParseError\tParseError\tcannot parse integer from empty string"),
            ("Publish\ta\t-1\tx", "Error\tParseError\tParseError\tinvalid digit found in string"),
            ("Publish\ta\t18446744073709551616\tx", "Error\tParseError\tParseError\tnumber too large to fit in target type"),
            ("Publish\t\t0\tx", "Error\tValidationError\tevent must not contain empty tags"),
            ("Publish\t a\t0\tx", "Error\tValidationError\tevent must not contain empty tags"),
            ("Publish\ta\t+7\tplus", "Published\t1"),
            ("Subscribe", "Error\tParseError\tMissingField\t1"),
            ("Subscribe\ttrue", "Error\tParseError\tMissingField\t1"),
            ("Subscribe\tmaybe\t0", "Error\tParseError\tParseError\tprovided string was not `true` or `false`"),
            ("Subscribe\tfalse\tx", "Error\tParseError\tParseError\tinvalid digit found in string"),
        ])
        // The limit is lenient: empty, not a number or 0 all mean no limit; the tag is optional.
        for limit in ["", "x", "0", "-1"] {
            client.send("Subscribe\tfalse\t0\t\(limit)\n")
            #expect(client.readLines(3) == ["Subscribed", "Event\t1\t7\ta\tplus", "EndOfEventStream"], "limit \(limit)")
            client.send("Subscribe\tfalse\t0\t\(limit)\ta\n")
            #expect(client.readLines(3) == ["Subscribed", "Event\t1\t7\ta\tplus", "EndOfEventStream"], "limit \(limit) with a tag")
        }
        client.send("Subscribe\tfalse\t0\t0\t\n")
        #expect(client.readLines(2) == ["Subscribed", "EndOfEventStream"])
        try await server.stop()
    }

    @Test func aCarriageReturnInsideTagsIsATagCharacter() async throws {
        let server = try await TestServer()
        defer { server.removeFiles() }
        let client = try LineClient(port: server.port)
        // Only a \r right before the \n ends a line; inside the tags the original stored it.
        client.send("Connect\tc\nPublish\ta\rb\t3\tcr\r\nSubscribe\tfalse\t0\t0\ta\rb\n")
        #expect(client.readLines(5) == ["Connected", "Published\t1", "Subscribed", "Event\t1\t3\ta\rb\tcr", "EndOfEventStream"])
        try await server.stop()
    }

    @Test func theServersOwnMessagesAreParsedAsTheOriginalParsedThem() async throws {
        let server = try await TestServer()
        defer { server.removeFiles() }
        let client = try LineClient(port: server.port)
        let pairs: [(String, String)] = [
            ("Connected", unexpected), ("Connected\tx", unexpected), ("Subscribed", unexpected),
            ("EndOfEventStream", unexpected), ("Authenticated", unexpected), ("Selected", unexpected), ("Dropped", unexpected),
            ("Published", "Error\tParseError\tMissingField\t1"),
            ("Published\tx", "Error\tParseError\tParseError\tinvalid digit found in string"),
            ("Published\t5", unexpected),
            ("Event", "Error\tParseError\tMissingField\t1"),
            ("Event\tx\t1\tt\td", "Error\tParseError\tParseError\tinvalid digit found in string"),
            ("Event\t1\t2\tt", "Error\tParseError\tMissingField\t3"),
            ("Event\t1\t2\tt\td", unexpected),
            ("Error", "Error\tParseError\tMissingField\t1"),
            ("Error\tFoo", "Error\tParseError\tParseError\tunknown database error: Foo"),
            ("Error\tIoError\tNope\tx", "Error\tParseError\tParseError\tunknown error kind: Nope"),
            ("Error\tEventStreamError", "Error\tParseError\tMissingField\t1"),
            ("Error\tAuthenticationError", unexpected),
            ("Error\tIoError\tOther\tboom", unexpected),
            ("Unsubscribe", unexpected),
            ("Frobnicate\tx", "Error\tParseError\tParseError\tunknown TCP message: Frobnicate"),
        ]
        expectAnswers(client, pairs)
        client.send("Connect\tc\n")
        #expect(client.readLine() == "Connected")
        expectAnswers(client, pairs)
        try await server.stop()
    }

    @Test func invalidUTF8IsAnsweredAndTheConnectionKept() async throws {
        let server = try await TestServer()
        defer { server.removeFiles() }
        let client = try LineClient(port: server.port)
        let answer = "Error\tIoError\tInvalidData\tstream did not contain valid UTF-8"
        client.send([0xFF, 0x0A])
        #expect(client.readLine() == answer)
        client.send(Array("Connect\tc".utf8) + [0xC3, 0x28, 0x0A] + Array("Connect\tc\n".utf8))
        #expect(client.readLines(2) == [answer, "Connected"])
        client.send(Array("Publish\tt\t1\t".utf8) + [0xED, 0xA0, 0x80, 0x0A] + Array("Publish\tt\t2\tdonn\u{E9}es \u{1F600}\n".utf8))
        #expect(client.readLines(2) == [answer, "Published\t1"])
        client.send("Subscribe\tfalse\t0\n")
        #expect(client.readLines(3) == ["Subscribed", "Event\t1\t2\tt\tdonn\u{E9}es \u{1F600}", "EndOfEventStream"])
        try await server.stop()
    }

    @Test func anOffsetNearTwoToTheSixtyFourDeliversNothing() async throws {
        let server = try await TestServer()
        defer { server.removeFiles() }
        let client = try LineClient(port: server.port)
        client.send("Connect\tc\nPublish\tt\t1\ta\nPublish\tt\t2\tb\n")
        #expect(client.readLines(3) == ["Connected", "Published\t1", "Published\t2"])
        client.send("Subscribe\tfalse\t18446744073709551615\n")
        #expect(client.readLines(2) == ["Subscribed", "EndOfEventStream"])
        client.send("Subscribe\tfalse\t18446744073709551614\t1\n")
        #expect(client.readLines(2) == ["Subscribed", "EndOfEventStream"])
        // A live one delivers nothing and, like every live subscription, runs until it is ended.
        for offset in ["18446744073709551615", "18446744073709551614"] {
            client.send("Subscribe\ttrue\t\(offset)\n")
            #expect(client.readLine() == "Subscribed")
            let publisher = try LineClient(port: server.port)
            publisher.send("Connect\tc\nPublish\tt\t3\tlater\n")
            #expect(publisher.readLines(2).count == 2)
            client.send("Unsubscribe\n")
            #expect(client.readLine() == "EndOfEventStream", "offset \(offset)")
        }
        client.send("Subscribe\tfalse\t1\t1\n")
        #expect(client.readLines(3) == ["Subscribed", "Event\t2\t2\tt\tb", "EndOfEventStream"])
        try await server.stop()
    }

    @Test func credentialsPaddedWithNulBytesAreRefused() async throws {
        let server = try await TestServer(username: "admin", password: "secret", maxLoginFailures: 10)
        defer { server.removeFiles() }
        let client = try LineClient(port: server.port)
        let nul = String(repeating: "\0", count: 256)
        client.send("Connect\tc\tadmin\tsecret\(nul)\n")
        #expect(client.readLine() == "Error\tAuthenticationError")
        client.send("Connect\tc\tadmin\(nul)\tsecret\n")
        #expect(client.readLine() == "Error\tAuthenticationError")
        client.send("Connect\tc\tadmin\n")
        #expect(client.readLine() == "Error\tAuthenticationError")
        client.send("Connect\tc\tadmin\tsecret\n")
        #expect(client.readLine() == "Connected")
        try await server.stop()
    }

    @Test func aHalfClosedClientGetsEveryAnswer() async throws {
        let server = try await TestServer()
        defer { server.removeFiles() }
        // `printf 'Connect\tc\nPublish\ta\t0\tx' | nc -N`: the last line has no newline.
        let writer = try LineClient(port: server.port)
        writer.send("Connect\tc\nPublish\ta\t1\tfirst\nPublish\ta\t2\tlast, no newline")
        writer.shutdownWrite()
        let written = writer.readUntilClosed()
        #expect(written?.lines == ["Connected", "Published\t1", "Published\t2"])
        #expect(written?.rest == "")

        // A whole non-live stream, and the lines behind it, before the close.
        let reader = try LineClient(port: server.port)
        reader.send("Connect\tc\nSubscribe\tfalse\t0\nPublish\ta\t3\tthird\nFrobnicate")
        reader.shutdownWrite()
        #expect(reader.readUntilClosed()?.lines == [
            "Connected", "Subscribed", "Event\t1\t1\ta\tfirst", "Event\t2\t2\ta\tlast, no newline", "EndOfEventStream",
            "Published\t3", "Error\tParseError\tParseError\tunknown TCP message: Frobnicate",
        ])

        // A live stream ends once it has delivered what is stored when the input ends.
        let live = try LineClient(port: server.port)
        live.send("Connect\tc\nSubscribe\ttrue\t1\n")
        #expect(live.readLines(2) == ["Connected", "Subscribed"])
        live.shutdownWrite()
        #expect(live.readUntilClosed()?.lines == ["Event\t2\t2\ta\tlast, no newline", "Event\t3\t3\ta\tthird", "EndOfEventStream"])
        let late = try LineClient(port: server.port)
        late.send("Connect\tc\nSubscribe\ttrue\t2")
        late.shutdownWrite()
        #expect(late.readUntilClosed()?.lines == ["Connected", "Subscribed", "Event\t3\t3\ta\tthird", "EndOfEventStream"])
        try await server.stop()
    }
}

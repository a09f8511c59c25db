import ExarModel
import NIOCore
import Testing

@testable import ExarNet

@Suite struct ClientRequestTests {
    private func parse(_ text: String) -> Result<ClientRequest, ExarError> {
        ClientRequest.parse(ByteBuffer(string: text))
    }

    @Test func connectWithAndWithoutCredentials() {
        #expect(parse("Connect\torders") == .success(.connect(collection: "orders", username: nil, password: nil)))
        #expect(parse("Connect\torders\tme\tse\tcret") == .success(.connect(collection: "orders", username: "me", password: "se\tcret")))
        #expect(parse("Connect\torders\tme") == .failure(.parse(.missingField(2))))
    }

    @Test func publishKeepsFieldsInTheLine() throws {
        let line = ByteBuffer(string: "Publish\torder created\t1700000000000\t{\"id\":7}\twith\ttabs")
        guard case .success(.publish(let fields)) = ClientRequest.parse(line) else {
            Issue.record("not a publish")
            return
        }
        #expect(fields.timestamp == 1_700_000_000_000)
        #expect(line.getString(at: fields.tags.lowerBound, length: fields.tags.count) == "order created")
        #expect(line.getString(at: fields.data.lowerBound, length: fields.data.count) == "{\"id\":7}\twith\ttabs")
        guard case .success(.publish(let empty)) = parse("Publish\tt\t0\t") else {
            Issue.record("empty data must parse")
            return
        }
        #expect(empty.data.isEmpty)
    }

    @Test func publishErrorsAreTheProtocols() {
        #expect(parse("Publish\ttag\t0") == .failure(.parse(.missingField(2))))
        #expect(parse("Publish\ttag") == .failure(.parse(.missingField(1))))
        #expect(parse("Publish") == .failure(.parse(.missingField(1))))
        #expect(parse("Publish\t\t0\tx") == .failure(.validation("event must not contain empty tags")))
        #expect(parse("Publish\ta  b\t0\tx") == .failure(.validation("event must not contain empty tags")))
        #expect(parse("Publish\t a\t0\tx") == .failure(.validation("event must not contain empty tags")))
        #expect(parse("Publish\ta \t0\tx") == .failure(.validation("event must not contain empty tags")))
        #expect(parse("Publish\ta\tx1\tx") == .failure(.parse(.parseError("invalid digit found in string"))))
        #expect(parse("Publish\ta\t\tx") == .failure(.parse(.parseError("cannot parse integer from empty string"))))
        #expect(parse("Publish\ta\t99999999999999999999\tx") == .failure(.parse(.parseError("number too large to fit in target type"))))
    }

    @Test func subscribeForms() {
        #expect(parse("Subscribe\tfalse\t0") == .success(.subscribe(Query(live: false, offset: 0))))
        #expect(parse("Subscribe\ttrue\t5\t10") == .success(.subscribe(Query(live: true, offset: 5, limit: 10))))
        #expect(parse("Subscribe\ttrue\t5\t0\tcreated") == .success(.subscribe(Query(live: true, offset: 5, tag: "created"))))
        #expect(parse("Subscribe\tyes\t0") == .failure(.parse(.parseError("provided string was not `true` or `false`"))))
        #expect(parse("Subscribe\ttrue") == .failure(.parse(.missingField(1))))
    }

    @Test func unknownAndServerMessages() {
        #expect(parse("Frobnicate") == .failure(.parse(.parseError("unknown TCP message: Frobnicate"))))
        #expect(parse("Frobnicate\tx\ty") == .failure(.parse(.parseError("unknown TCP message: Frobnicate"))))
        #expect(parse("") == .failure(.parse(.parseError("unknown TCP message: "))))
        #expect(parse("Connected") == .success(.serverMessage))
        #expect(parse("Published\t3") == .success(.serverMessage))
        #expect(parse("Published\tx") == .failure(.parse(.parseError("invalid digit found in string"))))
    }

    @Test func encodedLinesParseBack() throws {
        var buffer = ByteBuffer()
        buffer.writeConnected()
        buffer.writePublished(id: 18_446_744_073_709_551_615)
        buffer.writeSubscribed()
        let tags = Array("a b".utf8)
        let data = Array("x\ty".utf8)
        tags.withUnsafeBytes { t in data.withUnsafeBytes { d in buffer.writeEvent(id: 7, timestamp: 0, tags: t, data: d) } }
        buffer.writeEndOfEventStream()
        buffer.writeError(.parse(.missingField(2)))
        var decoder = LineFrameDecoder(maximumLineBytes: 1024)
        var messages: [ServerMessage] = []
        while let line = try decoder.nextLine(&buffer) {
            messages.append(try ServerMessage.parse(line))
        }
        #expect(messages == [
            .connected, .published(18_446_744_073_709_551_615), .subscribed,
            .event(Event(id: 7, timestamp: 0, tags: ["a", "b"], data: "x\ty")), .endOfEventStream,
            .error(.parse(.missingField(2))),
        ])
    }
}

@Suite struct LineFrameDecoderTests {
    @Test func framesLinesAndStripsCarriageReturns() throws {
        var decoder = LineFrameDecoder(maximumLineBytes: 16)
        var buffer = ByteBuffer(string: "one\r\ntwo\n\nthr")
        #expect(try decoder.nextLine(&buffer).map { String(buffer: $0) } == "one")
        #expect(try decoder.nextLine(&buffer).map { String(buffer: $0) } == "two")
        #expect(try decoder.nextLine(&buffer).map { String(buffer: $0) } == "")
        #expect(try decoder.nextLine(&buffer) == nil)
        buffer.writeString("ee\n")
        #expect(try decoder.nextLine(&buffer).map { String(buffer: $0) } == "three")
    }

    @Test func aLineOverTheLimitCannotBeFramed() throws {
        var decoder = LineFrameDecoder(maximumLineBytes: 8)
        var buffer = ByteBuffer(string: "12345678\n")
        #expect(try decoder.nextLine(&buffer).map { String(buffer: $0) } == "12345678")
        var long = ByteBuffer(string: "123456789")
        #expect(throws: LineTooLongError.self) { try decoder.nextLine(&long) }
        var longWithNewline = ByteBuffer(string: "1234567890\n")
        var fresh = LineFrameDecoder(maximumLineBytes: 8)
        #expect(throws: LineTooLongError.self) { try fresh.nextLine(&longWithNewline) }
    }
}

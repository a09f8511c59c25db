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
        // A username without a password counts as no credentials; no collection field at all is field 1.
        #expect(parse("Connect\torders\tme") == .success(.connect(collection: "orders", username: nil, password: nil)))
        #expect(parse("Connect") == .failure(.parse(.missingField(1))))
        #expect(parse("Connect\t") == .success(.connect(collection: "", username: nil, password: nil)))
        #expect(parse("Connect\tc\t\t") == .success(.connect(collection: "c", username: "", password: "")))
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

    @Test func publishErrorsFieldByField() {
        #expect(parse("Publish\ttag\t0") == .failure(.parse(.missingField(2))))
        #expect(parse("Publish\ttag") == .failure(.parse(.missingField(1))))
        #expect(parse("Publish\t") == .failure(.parse(.missingField(1))))
        #expect(parse("Publish") == .failure(.parse(.missingField(1))))
        // The timestamp is parsed before the data is found missing.
        #expect(parse("Publish\ta\tx") == .failure(.parse(.parseError("invalid digit found in string"))))
        #expect(parse("Publish\ta\tx1\tx") == .failure(.parse(.parseError("invalid digit found in string"))))
        #expect(parse("Publish\ta\t\tx") == .failure(.parse(.parseError("cannot parse integer from empty string"))))
        #expect(parse("Publish\ta\t+\tx") == .failure(.parse(.parseError("invalid digit found in string"))))
        #expect(parse("Publish\ta\t-1\tx") == .failure(.parse(.parseError("invalid digit found in string"))))
        #expect(parse("Publish\ta\t99999999999999999999\tx") == .failure(.parse(.parseError("number too large to fit in target type"))))
        // Rust stops at the first digit that overflows, before it sees a bad one further on.
        #expect(parse("Publish\ta\t99999999999999999999x\tx") == .failure(.parse(.parseError("number too large to fit in target type"))))
        guard case .success(.publish(let plus)) = parse("Publish\ta\t+5\tx") else {
            Issue.record("a leading + is a number in Rust")
            return
        }
        #expect(plus.timestamp == 5)
    }

    @Test func tagsAreValidatedOnlyWhenTheStateAllowsThePublish() throws {
        // Parsing leaves them alone (the state check comes first); the check itself:
        for text in ["Publish\t\t0\tx", "Publish\ta  b\t0\tx", "Publish\t a\t0\tx", "Publish\ta \t0\tx"] {
            let line = ByteBuffer(string: text)
            guard case .success(.publish(let fields)) = ClientRequest.parse(line) else {
                Issue.record("\(text) must parse")
                continue
            }
            #expect(throws: ExarError.validation("event must not contain empty tags")) { try fields.validateTags(in: line) }
        }
    }

    @Test func subscribeForms() {
        #expect(parse("Subscribe\tfalse\t0") == .success(.subscribe(Query(live: false, offset: 0))))
        #expect(parse("Subscribe\ttrue\t5\t10") == .success(.subscribe(Query(live: true, offset: 5, limit: 10))))
        #expect(parse("Subscribe\ttrue\t5\t0\tcreated") == .success(.subscribe(Query(live: true, offset: 5, tag: "created"))))
        #expect(parse("Subscribe\tyes\t0") == .failure(.parse(.parseError("provided string was not `true` or `false`"))))
        #expect(parse("Subscribe\ttrue") == .failure(.parse(.missingField(1))))
        #expect(parse("Subscribe") == .failure(.parse(.missingField(1))))
        #expect(parse("Subscribe\t") == .failure(.parse(.parseError("provided string was not `true` or `false`"))))
        #expect(parse("Subscribe\tyes") == .failure(.parse(.parseError("provided string was not `true` or `false`"))))
        #expect(parse("Subscribe\ttrue\tx\t5") == .failure(.parse(.parseError("invalid digit found in string"))))
        #expect(parse("Subscribe\tfalse\t18446744073709551615") == .success(.subscribe(Query(live: false, offset: .max))))
    }

    @Test func limitIsLenient() {
        for limit in ["", "x", "0", "-3", "99999999999999999999"] {
            #expect(parse("Subscribe\tfalse\t0\t\(limit)") == .success(.subscribe(Query(live: false, offset: 0))))
            #expect(parse("Subscribe\tfalse\t0\t\(limit)\tt") == .success(.subscribe(Query(live: false, offset: 0, tag: "t"))))
        }
        #expect(parse("Subscribe\tfalse\t0\t3\ta\tb") == .success(.subscribe(Query(live: false, offset: 0, limit: 3, tag: "a\tb"))))
    }

    @Test func sessionMessages() {
        #expect(parse("Authenticate\tu\tp\tq") == .success(.authenticate(username: "u", password: "p\tq")))
        #expect(parse("Authenticate\tu") == .failure(.parse(.missingField(1))))
        #expect(parse("Authenticate") == .failure(.parse(.missingField(1))))
        #expect(parse("Select\torders") == .success(.select(collection: "orders")))
        #expect(parse("Select") == .failure(.parse(.missingField(1))))
        #expect(parse("Drop\torders") == .success(.drop(collection: "orders")))
        #expect(parse("Drop") == .failure(.parse(.missingField(1))))
        #expect(parse("Unsubscribe") == .success(.unsubscribe))
        #expect(ClientRequest.isUnsubscribe(ByteBuffer(string: "Unsubscribe")))
        #expect(ClientRequest.isUnsubscribe(ByteBuffer(string: "Unsubscribe\tnow")))
        #expect(!ClientRequest.isUnsubscribe(ByteBuffer(string: "Unsubscribed")))
        #expect(!ClientRequest.isUnsubscribe(ByteBuffer(string: "unsubscribe")))
    }

    @Test func unknownAndServerMessages() {
        #expect(parse("Frobnicate") == .failure(.parse(.parseError("unknown TCP message: Frobnicate"))))
        #expect(parse("Frobnicate\tx\ty") == .failure(.parse(.parseError("unknown TCP message: Frobnicate"))))
        #expect(parse("") == .failure(.parse(.parseError("unknown TCP message: "))))
        for message in ["Connected", "Subscribed", "EndOfEventStream", "Connected\tx", "Authenticated", "Selected", "Dropped"] {
            #expect(parse(message) == .success(.serverMessage))
        }
        #expect(parse("Published\t3") == .success(.serverMessage))
        #expect(parse("Published") == .failure(.parse(.missingField(1))))
        #expect(parse("Published\tx") == .failure(.parse(.parseError("invalid digit found in string"))))
        #expect(parse("Published\t3\t4") == .failure(.parse(.parseError("invalid digit found in string"))))
        #expect(parse("Event") == .failure(.parse(.missingField(1))))
        #expect(parse("Event\tx") == .failure(.parse(.parseError("invalid digit found in string"))))
        #expect(parse("Event\t1") == .failure(.parse(.missingField(1))))
        #expect(parse("Event\t1\t2") == .failure(.parse(.missingField(2))))
        #expect(parse("Event\t1\t2\tt") == .failure(.parse(.missingField(3))))
        #expect(parse("Event\t1\tx\tt\td") == .failure(.parse(.parseError("invalid digit found in string"))))
        #expect(parse("Event\t1\t2\tt\td\te") == .success(.serverMessage))
    }

    @Test func errorLinesAsTheOriginalParsedThem() {
        let cases: [(String, Result<ClientRequest, ExarError>)] = [
            ("Error", .failure(.parse(.missingField(1)))),
            ("Error\t", .failure(.parse(.parseError("unknown database error: ")))),
            ("Error\tFoo", .failure(.parse(.parseError("unknown database error: Foo")))),
            ("Error\tAuthenticationError", .success(.serverMessage)),
            ("Error\tConnectionError\textra", .success(.serverMessage)),
            ("Error\tSubscriptionError", .success(.serverMessage)),
            ("Error\tEventStreamError", .failure(.parse(.missingField(1)))),
            ("Error\tEventStreamError\tEmpty", .success(.serverMessage)),
            ("Error\tEventStreamError\tOpen", .failure(.parse(.parseError("unknown event stream error: Open")))),
            ("Error\tIoError", .failure(.parse(.missingField(1)))),
            ("Error\tIoError\tFoo", .failure(.parse(.parseError("unknown error kind: Foo")))),
            ("Error\tIoError\tOther", .failure(.parse(.missingField(1)))),
            ("Error\tIoError\tOther\twhat\tever", .success(.serverMessage)),
            ("Error\tParseError", .failure(.parse(.missingField(1)))),
            ("Error\tParseError\tX", .failure(.parse(.parseError("unknown parse error: X")))),
            ("Error\tParseError\tParseError", .failure(.parse(.missingField(1)))),
            ("Error\tParseError\tParseError\twhy", .success(.serverMessage)),
            ("Error\tParseError\tMissingField\tx", .failure(.parse(.parseError("invalid digit found in string")))),
            ("Error\tParseError\tMissingField\t2", .success(.serverMessage)),
            ("Error\tValidationError", .failure(.parse(.missingField(1)))),
            ("Error\tValidationError\tbad", .success(.serverMessage)),
        ]
        for (line, expected) in cases {
            #expect(parse(line) == expected, "\(line)")
        }
    }

    @Test func invalidUTF8IsItsOwnError() {
        let invalid: [[UInt8]] = [
            [0xFF], [0xC0, 0x80], [0xC3], [0xE0, 0x80, 0x80], [0xED, 0xA0, 0x80], [0xF4, 0x90, 0x80, 0x80],
            [0xF0, 0x9F, 0x98], [0x80], Array("Publish\tt\t0\t".utf8) + [0xE2, 0x82],
            // A bad byte inside the 32- and 8-byte ASCII steps, and right after them.
            Array(String(repeating: "a", count: 40).utf8) + [0xFF] + Array(String(repeating: "b", count: 40).utf8),
            Array(String(repeating: "a", count: 64).utf8) + [0xC3],
            Array(String(repeating: "a", count: 13).utf8) + [0xC0, 0xAF] + Array(String(repeating: "b", count: 50).utf8),
        ]
        for bytes in invalid {
            #expect(ClientRequest.parse(ByteBuffer(bytes: bytes)) == .failure(ClientRequest.invalidUTF8), "\(bytes)")
        }
        let valid = "Publish\tt\t0\tdonn\u{E9}es \u{20AC} \u{1F600} \u{10FFFF} and enough ASCII to use the wide path"
        guard case .success(.publish) = parse(valid) else {
            Issue.record("valid UTF-8 must parse")
            return
        }
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
        // The limit counts the line without its terminator: one byte more is too long, with or
        // without the \r, and a \r just past the limit may still be the terminator's.
        var oneOver = ByteBuffer(string: "123456789\n")
        var third = LineFrameDecoder(maximumLineBytes: 8)
        #expect(throws: LineTooLongError.self) { try third.nextLine(&oneOver) }
        var exactWithCR = ByteBuffer(string: "12345678\r")
        var fourth = LineFrameDecoder(maximumLineBytes: 8)
        #expect(try fourth.nextLine(&exactWithCR) == nil)
        exactWithCR.writeString("\n")
        #expect(try fourth.nextLine(&exactWithCR).map { String(buffer: $0) } == "12345678")
    }
}

import ExarModel
import NIOCore

/// A message a client sends, parsed from one line.
public enum ClientRequest: Sendable, Equatable {
    /// `Connect\t<collection>[\t<username>\t<password>]`: credentials only when both are there.
    case connect(collection: String, username: String?, password: String?)
    /// `Publish\t<tags>\t<timestamp>\t<data>`: the fields stay in the line (see ``PublishFields``).
    case publish(PublishFields)
    /// `PublishIf\t<tag>\t<expected id>\t<tags>\t<timestamp>\t<data>` (extension): a `Publish`
    /// stored only if the last event carrying `tag` has the expected id. `tagIsValid` says
    /// whether `tag` is one tag (checked, like the tags field, once the connection's state
    /// accepted the message).
    case publishIf(tag: String, expectedId: UInt64, PublishFields, tagIsValid: Bool)
    /// `Subscribe\t<live>\t<offset>[\t<limit>[\t<tag>]]`.
    case subscribe(Query)
    /// `Authenticate\t<username>\t<password>` (0.2).
    case authenticate(username: String, password: String)
    /// `Select\t<collection>` (0.2).
    case select(collection: String)
    /// `Drop\t<collection>` (0.2).
    case drop(collection: String)
    /// `Unsubscribe` (0.2).
    case unsubscribe
    /// `Locate\t<timestamp ms>` (extension): the offset from which a subscription starts at that time.
    case locate(timestamp: UInt64)
    /// `Join\t<group>\t<offset>\t<max in flight>[\t<tag>]` (extension): a member of a consumer group.
    case join(group: String, offset: UInt64, maxInFlight: UInt64, tag: String?)
    /// `Ack\t<id>` (extension): acknowledges a group member's events up to the id.
    case ack(UInt64)
    /// A well-formed message of the server's own kinds (`Connected`, `Event`, ...): never valid from a client.
    case serverMessage

    /// The names of the messages, as on the wire.
    public enum Name {
        public static let connect = "Connect"
        public static let publish = "Publish"
        public static let subscribe = "Subscribe"
    }

    /// The answer to a line that is not valid UTF-8, as the original server's line reader gave it.
    public static let invalidUTF8: ExarError = .io(.invalidData, "stream did not contain valid UTF-8")
}

/// Where the fields of a `Publish` lie in its line: byte ranges relative to the line's reader
/// index, so publishing copies the bytes once, from the read buffer into the collection.
public struct PublishFields: Sendable, Equatable {
    /// The timestamp in ms, `0` for "stamp it now".
    public var timestamp: UInt64
    /// The tags field (tags separated by single spaces), not yet validated (see ``validateTags(in:)``).
    public var tags: Range<Int>
    /// The data (the rest of the line).
    public var data: Range<Int>
    /// Whether the tags field is valid, found while parsing; the original server answered an
    /// invalid one only after the connection's state accepted the `Publish` (see ``validateTags(in:)``).
    public var tagsAreValid: Bool

    /// Fields of a `Publish` line.
    public init(timestamp: UInt64, tags: Range<Int>, data: Range<Int>, tagsAreValid: Bool = true) {
        self.timestamp = timestamp
        self.tags = tags
        self.data = data
        self.tagsAreValid = tagsAreValid
    }

    /// Checks the tags field of `line` (the line this was parsed from).
    /// - Throws: ``ExarError/validation(_:)`` for an empty tag.
    public func validateTags(in line: ByteBuffer) throws(ExarError) {
        let tags = self.tags
        let failure: ExarError? = line.withUnsafeReadableBytes { bytes in
            do throws(ExarError) {
                try EventValidation.validateTagsField(UnsafeRawBufferPointer(rebasing: bytes[tags]))
                return nil
            } catch {
                return error
            }
        }
        if let failure { throw failure }
    }
}

extension ClientRequest {
    /// Parses one line (without its line terminator) field by field, left to right, as the
    /// original 0.1 server did: the first missing or bad field decides the error.
    ///
    /// The message type is the text before the first TAB and the rest of the line is the
    /// message's data; a message with fields and no data is `MissingField\t1`. The data is split
    /// into at most as many fields as the message has, the last taking the rest of the line; a
    /// missing field is `MissingField\t<index>`, counting from 0 within the data.
    public static func parse(_ line: ByteBuffer) -> Result<ClientRequest, ExarError> {
        line.withUnsafeReadableBytes { bytes in
            guard UTF8Validation.isValid(bytes) else { return .failure(invalidUTF8) }
            var outer = TabFields(bytes, 0..<bytes.count, parts: 2)
            let type = outer.messageType()
            do throws(ExarError) {
                switch type.count {
                case 7 where outer.equals(type, "Publish"):
                    return .success(try parsePublish(&outer))
                case 7 where outer.equals(type, "Connect"):
                    return .success(try parseConnect(&outer))
                case 9 where outer.equals(type, "Subscribe"):
                    return .success(try parseSubscribe(&outer))
                case 9 where outer.equals(type, "PublishIf"):
                    return .success(try parsePublishIf(&outer))
                default:
                    return .success(try parseOther(&outer, type: outer.string(type)))
                }
            } catch {
                return .failure(error)
            }
        }
    }

    /// Whether `line` starts with `Ack` as its message type (handled at once during a group stream).
    public static func isAck(_ line: ByteBuffer) -> Bool {
        line.withUnsafeReadableBytes { raw in
            raw.count >= 3 && raw[0] == UInt8(ascii: "A") && raw[1] == UInt8(ascii: "c") && raw[2] == UInt8(ascii: "k")
                && (raw.count == 3 || raw[3] == UInt8(ascii: "\t") || raw[3] == UInt8(ascii: "\r"))
        }
    }

    /// Whether `line` is an `Unsubscribe` (looked for among the lines that wait behind a stream).
    public static func isUnsubscribe(_ line: ByteBuffer) -> Bool {
        line.withUnsafeReadableBytes { bytes in
            var fields = TabFields(bytes, 0..<bytes.count, parts: 2)
            return fields.equals(fields.messageType(), "Unsubscribe")
        }
    }

    private static func parsePublish(_ outer: inout TabFields) throws(ExarError) -> ClientRequest {
        var fields = try outer.data(parts: 3)
        let tags = try fields.field()
        let timestamp = try fields.uint64()
        let data = try fields.field()
        let tagsAreValid: Bool
        do throws(ExarError) {
            try EventValidation.validateTagsField(fields.slice(tags))
            tagsAreValid = true
        } catch {
            tagsAreValid = false
        }
        return .publish(PublishFields(timestamp: timestamp, tags: tags, data: data, tagsAreValid: tagsAreValid))
    }

    /// Fields left to right as `Publish`'s: a missing one is `MissingField\t<index>` (0: the
    /// tag, 1: the expected id, 2: the tags, 3: the timestamp, 4: the data).
    private static func parsePublishIf(_ outer: inout TabFields) throws(ExarError) -> ClientRequest {
        var fields = try outer.data(parts: 5)
        let tag = try fields.field()
        let expected = try fields.uint64()
        let tags = try fields.field()
        let timestamp = try fields.uint64()
        let data = try fields.field()
        let tagBytes = Array(fields.slice(tag))
        var tagIsValid = true
        do throws(ExarError) {
            try EventValidation.validateTag(tagBytes)
        } catch {
            tagIsValid = false
        }
        var tagsAreValid = true
        do throws(ExarError) {
            try EventValidation.validateTagsField(fields.slice(tags))
        } catch {
            tagsAreValid = false
        }
        return .publishIf(tag: fields.string(tag), expectedId: expected,
                          PublishFields(timestamp: timestamp, tags: tags, data: data, tagsAreValid: tagsAreValid),
                          tagIsValid: tagIsValid)
    }

    private static func parseConnect(_ outer: inout TabFields) throws(ExarError) -> ClientRequest {
        var fields = try outer.data(parts: 3)
        let collection = try fields.field()
        let username = fields.nextPart()
        let password = fields.nextPart()
        guard let username, let password else {
            return .connect(collection: fields.string(collection), username: nil, password: nil)
        }
        return .connect(collection: fields.string(collection), username: fields.string(username),
                        password: fields.string(password))
    }

    private static func parseSubscribe(_ outer: inout TabFields) throws(ExarError) -> ClientRequest {
        var fields = try outer.data(parts: 4)
        let live = try fields.bool()
        let offset = try fields.uint64()
        // Lenient, as the original: absent, empty, not a number or 0 all mean "no limit".
        var limit: UInt64?
        if let field = fields.nextPart(), case .success(let value) = fields.parseUInt64(field), value > 0 {
            limit = value
        }
        let tag = fields.nextPart().map(fields.string)
        return .subscribe(Query(live: live, offset: offset, limit: limit, tag: tag))
    }

    /// The session messages of 0.2, and the messages only a server sends (parsed for their
    /// shape as the original parsed them, then refused by the connection's state).
    private static func parseOther(_ outer: inout TabFields, type: String) throws(ExarError) -> ClientRequest {
        switch type {
        case "Authenticate":
            var fields = try outer.data(parts: 2)
            let username = try fields.field()
            let password = try fields.field()
            return .authenticate(username: fields.string(username), password: fields.string(password))
        case "Select":
            let collection = try outer.field()
            return .select(collection: outer.string(collection))
        case "Drop":
            let collection = try outer.field()
            return .drop(collection: outer.string(collection))
        case "Unsubscribe":
            return .unsubscribe
        case "Join":
            var fields = try outer.data(parts: 4)
            let group = try fields.field()
            let offset = try fields.uint64()
            let maxInFlight = try fields.uint64()
            let tag = fields.nextPart().map(fields.string)
            return .join(group: fields.string(group), offset: offset, maxInFlight: maxInFlight, tag: tag)
        case "Ack":
            return .ack(try outer.uint64())
        case "Locate":
            return .locate(timestamp: try outer.uint64())
        case "Connected", "Subscribed", "EndOfEventStream", "Authenticated", "Selected", "Dropped":
            return .serverMessage
        case "Published", "Located":
            _ = try outer.uint64()
            return .serverMessage
        case "Event":
            var fields = try outer.data(parts: 4)
            _ = try fields.uint64()
            _ = try fields.uint64()
            _ = try fields.field()
            _ = try fields.field()
            return .serverMessage
        case "Error":
            var fields = try outer.data(parts: 2)
            try parseError(&fields)
            return .serverMessage
        default:
            throw .parse(.parseError("unknown TCP message: \(type)"))
        }
    }

    /// The original's parse of the error after `Error\t`, for its errors only.
    private static func parseError(_ fields: inout TabFields) throws(ExarError) {
        let kind = fields.string(try fields.field())
        switch kind {
        case "AuthenticationError", "ConnectionError", "SubscriptionError":
            return
        case "EventStreamError":
            let stream = fields.string(try fields.field())
            guard stream == "Empty" || stream == "Closed" else {
                throw .parse(.parseError("unknown event stream error: \(stream)"))
            }
        case "IoError":
            var io = try fields.data(parts: 2)
            let ioKind = io.string(try io.field())
            guard IoErrorKind(rawValue: ioKind) != nil else {
                throw .parse(.parseError("unknown error kind: \(ioKind)"))
            }
            _ = try io.field()
        case "ParseError":
            var parse = try fields.data(parts: 2)
            let parseKind = parse.string(try parse.field())
            switch parseKind {
            case "ParseError": _ = try parse.field()
            case "MissingField": _ = try parse.uint64()
            default: throw .parse(.parseError("unknown parse error: \(parseKind)"))
            }
        case "ValidationError":
            _ = try fields.field()
        default:
            throw .parse(.parseError("unknown database error: \(kind)"))
        }
    }
}

/// Splits part of a line into TAB-separated fields without copying, as Rust's `splitn` and the
/// original's `TabSeparatedParser` did: at most `parts` fields, the last taking the rest; an
/// empty text still has one (empty) field. `index` counts the fields parsed so far, which is the
/// index a missing field reports.
struct TabFields {
    let bytes: UnsafeRawBufferPointer
    private var position: Int
    private let end: Int
    private var remaining: Int
    private(set) var index = 0

    init(_ bytes: UnsafeRawBufferPointer, _ range: Range<Int>, parts: Int) {
        self.bytes = bytes
        self.position = range.lowerBound
        self.end = range.upperBound
        self.remaining = parts
    }

    /// The next field, or `nil` once there are no more (does not count as parsed).
    mutating func nextPart() -> Range<Int>? {
        guard remaining > 0, position <= end else { return nil }
        remaining -= 1
        let start = position
        if remaining > 0, let tab = indexOfTab(from: start) {
            position = tab + 1
            return start..<tab
        }
        position = end + 1
        return start..<end
    }

    /// The first field of a line, which every line has (it counts as parsed).
    mutating func messageType() -> Range<Int> {
        let type = nextPart()!
        index += 1
        return type
    }

    /// The next field as text; missing: `MissingField\t<index>`.
    mutating func field() throws(ExarError) -> Range<Int> {
        guard let part = nextPart() else { throw .parse(.missingField(index)) }
        index += 1
        return part
    }

    /// The next field split into at most `parts` fields of its own.
    mutating func data(parts: Int) throws(ExarError) -> TabFields {
        TabFields(bytes, try field(), parts: parts)
    }

    /// The next field as a decimal `u64`.
    mutating func uint64() throws(ExarError) -> UInt64 {
        guard let part = nextPart() else { throw .parse(.missingField(index)) }
        let value = try parseUInt64(part).get()
        index += 1
        return value
    }

    /// The next field as `true` or `false`.
    mutating func bool() throws(ExarError) -> Bool {
        guard let part = nextPart() else { throw .parse(.missingField(index)) }
        let value: Bool
        if equals(part, "true") {
            value = true
        } else if equals(part, "false") {
            value = false
        } else {
            throw .parse(.parseError("provided string was not `true` or `false`"))
        }
        index += 1
        return value
    }

    private func indexOfTab(from start: Int) -> Int? {
        guard start < bytes.count, let base = bytes.baseAddress else { return nil }
        guard let found = memchr(base + start, 0x09, bytes.count - start) else { return nil }
        return UnsafeRawPointer(found) - base
    }

    func slice(_ range: Range<Int>) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(rebasing: bytes[range])
    }

    func string(_ range: Range<Int>) -> String {
        String(decoding: slice(range), as: UTF8.self)
    }

    func equals(_ range: Range<Int>, _ text: StaticString) -> Bool {
        range.count == text.utf8CodeUnitCount && memcmp(bytes.baseAddress! + range.lowerBound, text.utf8Start, range.count) == 0
    }

    /// Parses a decimal `u64` as Rust's `str::parse` does, with its error texts.
    func parseUInt64(_ range: Range<Int>) -> Result<UInt64, ExarError> {
        var digits = range
        if digits.isEmpty {
            return .failure(.parse(.parseError("cannot parse integer from empty string")))
        }
        if bytes[digits.lowerBound] == UInt8(ascii: "+") {
            digits = (digits.lowerBound + 1)..<digits.upperBound
            if digits.isEmpty { return .failure(.parse(.parseError("invalid digit found in string"))) }
        }
        // Digit by digit, as Rust does: the first digit that is not one, or that overflows, decides.
        var value: UInt64 = 0
        for index in digits {
            let byte = bytes[index]
            guard byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") else {
                return .failure(.parse(.parseError("invalid digit found in string")))
            }
            let (times10, o1) = value.multipliedReportingOverflow(by: 10)
            let (sum, o2) = times10.addingReportingOverflow(UInt64(byte - UInt8(ascii: "0")))
            if o1 || o2 {
                return .failure(.parse(.parseError("number too large to fit in target type")))
            }
            value = sum
        }
        return .success(value)
    }
}

#if canImport(Glibc)
import Glibc
#endif

import ExarModel
import NIOCore

/// A message a client sends, parsed from one line.
public enum ClientRequest: Sendable, Equatable {
    /// `Connect\t<collection>[\t<username>\t<password>]`.
    case connect(collection: String, username: String?, password: String?)
    /// `Publish\t<tags>\t<timestamp>\t<data>`: the fields stay in the line (see ``PublishFields``).
    case publish(PublishFields)
    /// `Subscribe\t<live>\t<offset>[\t<limit>[\t<tag>]]`.
    case subscribe(Query)
    /// A well-formed message of the server's own kinds (`Connected`, `Event`, ...): never valid from a client.
    case serverMessage

    /// The names of the messages, as on the wire.
    public enum Name {
        public static let connect = "Connect"
        public static let publish = "Publish"
        public static let subscribe = "Subscribe"
    }
}

/// Where the fields of a `Publish` lie in its line: byte ranges relative to the line's reader
/// index, so publishing copies the bytes once, from the read buffer into the collection.
public struct PublishFields: Sendable, Equatable {
    /// The timestamp in ms, `0` for "stamp it now".
    public var timestamp: UInt64
    /// The tags field (tags separated by single spaces), already validated.
    public var tags: Range<Int>
    /// The data (the rest of the line).
    public var data: Range<Int>
}

extension ClientRequest {
    /// Parses one line (without its line terminator).
    ///
    /// The message type is the text before the first TAB; the rest is split into at most as many
    /// fields as the message has, the last field taking the rest of the line. A missing field is
    /// `ParseError\tMissingField\t<index>`, counting from 0 after the message type.
    public static func parse(_ line: ByteBuffer) -> Result<ClientRequest, ExarError> {
        line.withUnsafeReadableBytes { bytes in
            var fields = FieldSplitter(bytes)
            let type = fields.messageType()
            switch type.count {
            case 7 where fields.equals(type, "Publish"):
                return parsePublish(&fields)
            case 7 where fields.equals(type, "Connect"):
                return parseConnect(&fields)
            case 9 where fields.equals(type, "Subscribe"):
                return parseSubscribe(&fields)
            default:
                return parseServerMessage(&fields, type: type)
            }
        }
    }

    private static func parsePublish(_ fields: inout FieldSplitter) -> Result<ClientRequest, ExarError> {
        fields.beginRemainder(fieldCount: 3)
        guard let tags = fields.next() else { return .failure(.parse(.missingField(0))) }
        guard let timestampField = fields.next() else { return .failure(.parse(.missingField(1))) }
        guard let data = fields.next() else { return .failure(.parse(.missingField(2))) }
        let timestamp: UInt64
        switch fields.parseUInt64(timestampField) {
        case .success(let value): timestamp = value
        case .failure(let error): return .failure(error)
        }
        do throws(ExarError) {
            try EventValidation.validateTagsField(fields.slice(tags))
        } catch {
            return .failure(error)
        }
        return .success(.publish(PublishFields(timestamp: timestamp, tags: tags, data: data)))
    }

    private static func parseConnect(_ fields: inout FieldSplitter) -> Result<ClientRequest, ExarError> {
        fields.beginRemainder(fieldCount: 3)
        guard let collection = fields.next() else { return .failure(.parse(.missingField(0))) }
        let username = fields.next()
        let password = fields.next()
        if username != nil && password == nil {
            return .failure(.parse(.missingField(2)))
        }
        return .success(.connect(
            collection: fields.string(collection), username: username.map(fields.string),
            password: password.map(fields.string)))
    }

    private static func parseSubscribe(_ fields: inout FieldSplitter) -> Result<ClientRequest, ExarError> {
        fields.beginRemainder(fieldCount: 4)
        guard let liveField = fields.next() else { return .failure(.parse(.missingField(0))) }
        guard let offsetField = fields.next() else { return .failure(.parse(.missingField(1))) }
        let live: Bool
        switch fields.parseBool(liveField) {
        case .success(let value): live = value
        case .failure(let error): return .failure(error)
        }
        let offset: UInt64
        switch fields.parseUInt64(offsetField) {
        case .success(let value): offset = value
        case .failure(let error): return .failure(error)
        }
        var limit: UInt64?
        if let limitField = fields.next() {
            switch fields.parseUInt64(limitField) {
            case .success(let value): limit = value
            case .failure(let error): return .failure(error)
            }
        }
        let tag = fields.next().map(fields.string)
        return .success(.subscribe(Query(live: live, offset: offset, limit: limit, tag: tag)))
    }

    /// Messages only a server sends: parsed for their shape, then refused by the connection's state.
    private static func parseServerMessage(_ fields: inout FieldSplitter, type: Range<Int>) -> Result<ClientRequest, ExarError> {
        let name = fields.string(type)
        switch name {
        case "Connected", "Subscribed", "EndOfEventStream":
            return .success(.serverMessage)
        case "Published":
            fields.beginRemainder(fieldCount: 1)
            guard let id = fields.next() else { return .failure(.parse(.missingField(0))) }
            return fields.parseUInt64(id).map { _ in .serverMessage }
        case "Event":
            fields.beginRemainder(fieldCount: 4)
            guard let id = fields.next() else { return .failure(.parse(.missingField(0))) }
            guard let timestamp = fields.next() else { return .failure(.parse(.missingField(1))) }
            guard fields.next() != nil else { return .failure(.parse(.missingField(2))) }
            guard fields.next() != nil else { return .failure(.parse(.missingField(3))) }
            return fields.parseUInt64(id).flatMap { _ in fields.parseUInt64(timestamp) }.map { _ in .serverMessage }
        case "Error":
            return .success(.serverMessage)
        default:
            return .failure(.parse(.parseError("unknown TCP message: \(name)")))
        }
    }
}

/// Splits a line into TAB-separated fields without copying.
struct FieldSplitter {
    let bytes: UnsafeRawBufferPointer
    private var position = 0
    private var remaining = 0
    private var hasRemainder = false

    init(_ bytes: UnsafeRawBufferPointer) {
        self.bytes = bytes
    }

    /// The message type: the bytes before the first TAB (or the whole line).
    mutating func messageType() -> Range<Int> {
        let end = indexOfTab(from: 0) ?? bytes.count
        position = end
        hasRemainder = end < bytes.count
        return 0..<end
    }

    /// Starts splitting what follows the message type into at most `fieldCount` fields. A line
    /// without a TAB after its type still has one (empty) field, as the original server split it.
    mutating func beginRemainder(fieldCount: Int) {
        if hasRemainder { position += 1 }
        remaining = fieldCount
    }

    /// The next field, the last one taking the rest of the line; `nil` once there are no more.
    mutating func next() -> Range<Int>? {
        guard remaining > 0, position <= bytes.count else { return nil }
        remaining -= 1
        let start = position
        if remaining == 0 {
            position = bytes.count + 1
            return start..<bytes.count
        }
        if let tab = indexOfTab(from: start) {
            position = tab + 1
            return start..<tab
        }
        position = bytes.count + 1
        return start..<bytes.count
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
        var value: UInt64 = 0
        var overflow = false
        for index in digits {
            let byte = bytes[index]
            guard byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") else {
                return .failure(.parse(.parseError("invalid digit found in string")))
            }
            let (times10, o1) = value.multipliedReportingOverflow(by: 10)
            let (sum, o2) = times10.addingReportingOverflow(UInt64(byte - UInt8(ascii: "0")))
            overflow = overflow || o1 || o2
            value = sum
        }
        if overflow {
            return .failure(.parse(.parseError("number too large to fit in target type")))
        }
        return .success(value)
    }

    func parseBool(_ range: Range<Int>) -> Result<Bool, ExarError> {
        if equals(range, "true") { return .success(true) }
        if equals(range, "false") { return .success(false) }
        return .failure(.parse(.parseError("provided string was not `true` or `false`")))
    }
}

#if canImport(Glibc)
import Glibc
#endif

import ExarModel
import NIOCore

/// Writing protocol lines into a `ByteBuffer`, without building Strings on the hot paths.
extension ByteBuffer {
    // MARK: Server to client

    /// `Connected\n`
    public mutating func writeConnected() {
        writeStaticString("Connected\n")
    }

    /// `Published\t<id>\n`
    public mutating func writePublished(id: UInt64) {
        writeWithUnsafeMutableBytes(minimumWritableBytes: 10 + 20 + 1) { out in
            let base = out.baseAddress!
            var at = Self.store("Published\t", base)
            at += Self.storeDecimal(id, base + at)
            base.storeBytes(of: UInt8(ascii: "\n"), toByteOffset: at, as: UInt8.self)
            return at + 1
        }
    }

    /// `Located\t<offset>\n`
    public mutating func writeLocated(offset: UInt64) {
        writeStaticString("Located\t")
        writeDecimal(offset)
        writeInteger(UInt8(ascii: "\n"))
    }

    /// `Subscribed\n`
    public mutating func writeSubscribed() {
        writeStaticString("Subscribed\n")
    }

    /// `EndOfEventStream\n`
    public mutating func writeEndOfEventStream() {
        writeStaticString("EndOfEventStream\n")
    }

    /// `Event\t<id>\t<timestamp>\t<tags>\t<data>\n`, from the stored bytes: one capacity check,
    /// then plain stores (the streaming hot path: a scanner encodes every event it sends).
    public mutating func writeEvent(id: UInt64, timestamp: UInt64, tags: UnsafeRawBufferPointer, data: UnsafeRawBufferPointer) {
        writeWithUnsafeMutableBytes(minimumWritableBytes: 6 + 20 + 1 + 20 + 1 + tags.count + 1 + data.count + 1) { out in
            let base = out.baseAddress!
            var at = Self.store("Event\t", base)
            at += Self.storeDecimal(id, base + at)
            base.storeBytes(of: UInt8(ascii: "\t"), toByteOffset: at, as: UInt8.self)
            at += 1
            at += Self.storeDecimal(timestamp, base + at)
            base.storeBytes(of: UInt8(ascii: "\t"), toByteOffset: at, as: UInt8.self)
            at += 1
            if let source = tags.baseAddress { (base + at).copyMemory(from: source, byteCount: tags.count) }
            at += tags.count
            base.storeBytes(of: UInt8(ascii: "\t"), toByteOffset: at, as: UInt8.self)
            at += 1
            if let source = data.baseAddress { (base + at).copyMemory(from: source, byteCount: data.count) }
            at += data.count
            base.storeBytes(of: UInt8(ascii: "\n"), toByteOffset: at, as: UInt8.self)
            return at + 1
        }
    }

    /// Stores the bytes of `text` at `pointer`; returns how many.
    @inline(__always)
    static func store(_ text: StaticString, _ pointer: UnsafeMutableRawPointer) -> Int {
        pointer.copyMemory(from: text.utf8Start, byteCount: text.utf8CodeUnitCount)
        return text.utf8CodeUnitCount
    }

    /// Stores `value` in decimal ASCII at `pointer` (room for 20 digits); returns the digit count.
    @inline(__always)
    static func storeDecimal(_ value: UInt64, _ pointer: UnsafeMutableRawPointer) -> Int {
        var digits = 1
        var rest = value
        while rest >= 10 {
            rest /= 10
            digits += 1
        }
        var number = value
        var index = digits - 1
        while index >= 0 {
            pointer.storeBytes(of: UInt8(ascii: "0") &+ UInt8(truncatingIfNeeded: number % 10), toByteOffset: index, as: UInt8.self)
            number /= 10
            index -= 1
        }
        return digits
    }

    /// `Error\t<error>\n`
    public mutating func writeError(_ error: ExarError) {
        writeStaticString("Error\t")
        writeString(error.wireText)
        writeInteger(UInt8(ascii: "\n"))
    }

    // MARK: Client to server

    /// `Connect\t<collection>[\t<username>\t<password>]\n`
    public mutating func writeConnect(collection: String, username: String?, password: String?) {
        writeStaticString("Connect\t")
        writeString(collection)
        if let username, let password {
            writeInteger(UInt8(ascii: "\t"))
            writeString(username)
            writeInteger(UInt8(ascii: "\t"))
            writeString(password)
        }
        writeInteger(UInt8(ascii: "\n"))
    }

    /// `Publish\t<tags>\t<timestamp>\t<data>\n`
    public mutating func writePublish(tags: [String], timestamp: UInt64, data: String) {
        writeStaticString("Publish\t")
        for (index, tag) in tags.enumerated() {
            if index > 0 { writeInteger(UInt8(ascii: " ")) }
            writeString(tag)
        }
        writeInteger(UInt8(ascii: "\t"))
        writeDecimal(timestamp)
        writeInteger(UInt8(ascii: "\t"))
        writeString(data)
        writeInteger(UInt8(ascii: "\n"))
    }

    /// `PublishIf\t<tag>\t<expected id>\t<tags>\t<timestamp>\t<data>\n`
    public mutating func writePublishIf(tag: String, expectedId: UInt64, tags: [String], timestamp: UInt64, data: String) {
        writeStaticString("PublishIf\t")
        writeString(tag)
        writeInteger(UInt8(ascii: "\t"))
        writeDecimal(expectedId)
        writeInteger(UInt8(ascii: "\t"))
        for (index, tag) in tags.enumerated() {
            if index > 0 { writeInteger(UInt8(ascii: " ")) }
            writeString(tag)
        }
        writeInteger(UInt8(ascii: "\t"))
        writeDecimal(timestamp)
        writeInteger(UInt8(ascii: "\t"))
        writeString(data)
        writeInteger(UInt8(ascii: "\n"))
    }

    /// `Locate\t<timestamp ms>\n`
    public mutating func writeLocate(timestamp: UInt64) {
        writeStaticString("Locate\t")
        writeDecimal(timestamp)
        writeInteger(UInt8(ascii: "\n"))
    }

    /// `Subscribe\t<live>\t<offset>\t<limit>[\t<tag>]\n`
    public mutating func writeSubscribe(_ query: Query) {
        writeStaticString("Subscribe\t")
        writeStaticString(query.live ? "true" : "false")
        writeInteger(UInt8(ascii: "\t"))
        writeDecimal(query.offset)
        writeInteger(UInt8(ascii: "\t"))
        writeDecimal(query.limit ?? 0)
        if let tag = query.tag {
            writeInteger(UInt8(ascii: "\t"))
            writeString(tag)
        }
        writeInteger(UInt8(ascii: "\n"))
    }

    /// Writes `value` in decimal ASCII.
    public mutating func writeDecimal(_ value: UInt64) {
        writeWithUnsafeMutableBytes(minimumWritableBytes: 20) { Self.storeDecimal(value, $0.baseAddress!) }
    }
}

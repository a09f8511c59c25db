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
        writeStaticString("Published\t")
        writeDecimal(id)
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

    /// `Event\t<id>\t<timestamp>\t<tags>\t<data>\n`, from the stored bytes.
    public mutating func writeEvent(id: UInt64, timestamp: UInt64, tags: UnsafeRawBufferPointer, data: UnsafeRawBufferPointer) {
        reserveCapacity(minimumWritableBytes: 48 + tags.count + data.count)
        writeStaticString("Event\t")
        writeDecimal(id)
        writeInteger(UInt8(ascii: "\t"))
        writeDecimal(timestamp)
        writeInteger(UInt8(ascii: "\t"))
        writeBytes(tags)
        writeInteger(UInt8(ascii: "\t"))
        writeBytes(data)
        writeInteger(UInt8(ascii: "\n"))
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
        var digits = 1
        var rest = value
        while rest >= 10 {
            rest /= 10
            digits += 1
        }
        writeWithUnsafeMutableBytes(minimumWritableBytes: digits) { buffer in
            var number = value
            var index = digits - 1
            while index >= 0 {
                buffer[index] = UInt8(ascii: "0") + UInt8(number % 10)
                number /= 10
                index -= 1
            }
            return digits
        }
    }
}

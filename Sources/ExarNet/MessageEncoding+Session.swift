import NIOCore

/// Writing the client's session messages (PROTOCOL.md, "Extensions / Session").
extension ByteBuffer {
    /// `Authenticate\t<username>\t<password>\n`
    public mutating func writeAuthenticate(username: String, password: String) {
        writeStaticString("Authenticate\t")
        writeString(username)
        writeInteger(UInt8(ascii: "\t"))
        writeString(password)
        writeInteger(UInt8(ascii: "\n"))
    }

    /// `Select\t<collection>\n`
    public mutating func writeSelect(collection: String) {
        writeStaticString("Select\t")
        writeString(collection)
        writeInteger(UInt8(ascii: "\n"))
    }

    /// `Drop\t<collection>\n`
    public mutating func writeDrop(collection: String) {
        writeStaticString("Drop\t")
        writeString(collection)
        writeInteger(UInt8(ascii: "\n"))
    }

    /// `Unsubscribe\n`
    public mutating func writeUnsubscribe() {
        writeStaticString("Unsubscribe\n")
    }

    /// `Join\t<group>\t<offset>\t<max in flight>[\t<tag>]\n`
    public mutating func writeJoin(group: String, offset: UInt64, maxInFlight: UInt64, tag: String?) {
        writeStaticString("Join\t")
        writeString(group)
        writeInteger(UInt8(ascii: "\t"))
        writeDecimal(offset)
        writeInteger(UInt8(ascii: "\t"))
        writeDecimal(maxInFlight)
        if let tag {
            writeInteger(UInt8(ascii: "\t"))
            writeString(tag)
        }
        writeInteger(UInt8(ascii: "\n"))
    }

    /// `Ack\t<id>\n`
    public mutating func writeAck(_ id: UInt64) {
        writeStaticString("Ack\t")
        writeDecimal(id)
        writeInteger(UInt8(ascii: "\n"))
    }
}

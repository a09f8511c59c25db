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
}

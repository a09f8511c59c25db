import ExarCore
import NIOCore

/// Writes JSON straight into a `ByteBuffer`: events are the bulk of what the API sends (an export
/// can be millions of them), so they are written without building an object tree first.
struct JSONWriter {
    var buffer: ByteBuffer

    init(_ buffer: ByteBuffer) {
        self.buffer = buffer
    }

    mutating func raw(_ text: StaticString) {
        buffer.writeStaticString(text)
    }

    mutating func number(_ value: UInt64) {
        buffer.writeString(String(value))
    }

    mutating func number(_ value: Int) {
        buffer.writeString(String(value))
    }

    /// A finite double as JSON allows it (`null` for NaN or infinity).
    mutating func number(_ value: Double?) {
        guard let value, value.isFinite else {
            buffer.writeStaticString("null")
            return
        }
        buffer.writeString(value == value.rounded() && abs(value) < 1e15 ? String(Int64(value)) : String(value))
    }

    mutating func bool(_ value: Bool) {
        if value { buffer.writeStaticString("true") } else { buffer.writeStaticString("false") }
    }

    mutating func string(_ value: String) {
        var value = value
        value.withUTF8 { string(bytes: $0) }
    }

    /// A JSON string of UTF-8 bytes: `"` and `\` escaped, control characters as `\uXXXX` (or
    /// their short forms). Runs without escapes are copied whole.
    mutating func string<Bytes: Swift.Collection<UInt8>>(bytes: Bytes) {
        buffer.writeInteger(UInt8(ascii: "\""))
        var runStart = bytes.startIndex
        var index = bytes.startIndex
        while index != bytes.endIndex {
            let byte = bytes[index]
            if byte >= 0x20 && byte != UInt8(ascii: "\"") && byte != UInt8(ascii: "\\") {
                bytes.formIndex(after: &index)
                continue
            }
            buffer.writeBytes(bytes[runStart..<index])
            switch byte {
            case UInt8(ascii: "\""): buffer.writeStaticString("\\\"")
            case UInt8(ascii: "\\"): buffer.writeStaticString("\\\\")
            case UInt8(ascii: "\n"): buffer.writeStaticString("\\n")
            case UInt8(ascii: "\r"): buffer.writeStaticString("\\r")
            case UInt8(ascii: "\t"): buffer.writeStaticString("\\t")
            default:
                let hex: [UInt8] = Array("0123456789abcdef".utf8)
                buffer.writeStaticString("\\u00")
                buffer.writeInteger(hex[Int(byte >> 4)])
                buffer.writeInteger(hex[Int(byte & 0xF)])
            }
            bytes.formIndex(after: &index)
            runStart = index
        }
        buffer.writeBytes(bytes[runStart..<index])
        buffer.writeInteger(UInt8(ascii: "\""))
    }

    /// `{"id":..,"timestamp":..,"tags":[..],"data":".."}`: tags are stored as one
    /// space-separated field and sent as an array.
    mutating func event(_ event: EventView) {
        raw("{\"id\":")
        number(event.id)
        raw(",\"timestamp\":")
        number(event.timestamp)
        raw(",\"tags\":[")
        var first = true
        for tag in event.tags.split(separator: UInt8(ascii: " "), omittingEmptySubsequences: true) {
            if !first { raw(",") }
            first = false
            string(bytes: tag)
        }
        raw("],\"data\":")
        string(bytes: event.data)
        raw("}")
    }

    /// A key and `:` (keys are ours: plain ASCII).
    mutating func key(_ name: StaticString) {
        buffer.writeInteger(UInt8(ascii: "\""))
        buffer.writeStaticString(name)
        buffer.writeStaticString("\":")
    }
}

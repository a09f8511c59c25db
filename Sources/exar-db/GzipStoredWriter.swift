#if canImport(Glibc)
import Glibc
#endif

/// Writes a file as a gzip file (RFC 1952) whose deflate stream (RFC 1951) is made of stored,
/// uncompressed blocks: `gunzip`, `zcat` and every gzip reader read it, but it is not smaller. The
/// server has no deflate compressor (no zlib among its dependencies), and a `.gz` archive that is
/// not gzip would break the tools an operator points at it.
enum GzipStoredWriter {
    /// The largest stored block (its length field is 16 bits).
    private static let blockSize = 65_535

    static func write(contentsOf source: String, to destination: String) throws(LogFileError) {
        let input = open(source, O_RDONLY | O_CLOEXEC)
        guard input >= 0 else { throw LogFileError(operation: "open", path: source, code: errno) }
        defer { close(input) }
        let output = open(destination, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard output >= 0 else { throw LogFileError(operation: "create", path: destination, code: errno) }
        defer { close(output) }

        // Header: magic, deflate, no flags, no modification time, no extra flags, OS 3 (Unix).
        try put([0x1F, 0x8B, 8, 0, 0, 0, 0, 0, 0, 3], output, destination)
        var crc = CRC32()
        var total: UInt32 = 0
        var block = [UInt8](repeating: 0, count: blockSize)
        while true {
            let count = try fill(&block, from: input, source)
            // A block shorter than the maximum means the end of the file: mark it final.
            let final = count < blockSize
            let length = UInt16(count)
            try put([final ? 1 : 0, UInt8(length & 0xFF), UInt8(length >> 8), UInt8(~length & 0xFF), UInt8(~length >> 8)],
                    output, destination)
            try put(Array(block[..<count]), output, destination)
            crc.update(block[..<count])
            total = total &+ UInt32(truncatingIfNeeded: count)
            if final { break }
        }
        // Trailer: CRC-32 and length modulo 2^32 of the uncompressed data, little-endian.
        try put(littleEndian(crc.value) + littleEndian(total), output, destination)
    }

    private static func littleEndian(_ value: UInt32) -> [UInt8] {
        (0..<4).map { UInt8(truncatingIfNeeded: value >> ($0 * 8)) }
    }

    /// Reads until `buffer` is full or the file ends; returns the bytes read.
    private static func fill(_ buffer: inout [UInt8], from descriptor: Int32, _ path: String) throws(LogFileError) -> Int {
        var filled = 0
        while filled < buffer.count {
            let count = buffer.withUnsafeMutableBytes { read(descriptor, $0.baseAddress! + filled, $0.count - filled) }
            if count < 0 && errno == EINTR { continue }
            guard count >= 0 else { throw LogFileError(operation: "read", path: path, code: errno) }
            if count == 0 { break }
            filled += count
        }
        return filled
    }

    private static func put(_ bytes: [UInt8], _ descriptor: Int32, _ path: String) throws(LogFileError) {
        var offset = 0
        while offset < bytes.count {
            let count = bytes.withUnsafeBytes { Glibc.write(descriptor, $0.baseAddress! + offset, $0.count - offset) }
            if count < 0 && errno == EINTR { continue }
            guard count > 0 else { throw LogFileError(operation: "write", path: path, code: errno) }
            offset += count
        }
    }
}

/// CRC-32 as gzip uses it (ISO-HDLC: reflected polynomial 0xEDB88320, inverted in and out).
struct CRC32 {
    private static let table: [UInt32] = (0..<256).map { index in
        var value = UInt32(index)
        for _ in 0..<8 { value = value & 1 == 1 ? (value >> 1) ^ 0xEDB8_8320 : value >> 1 }
        return value
    }

    private var state: UInt32 = 0xFFFF_FFFF

    var value: UInt32 { ~state }

    mutating func update<Bytes: Sequence<UInt8>>(_ bytes: Bytes) {
        for byte in bytes {
            state = Self.table[Int((state ^ UInt32(byte)) & 0xFF)] ^ (state >> 8)
        }
    }
}

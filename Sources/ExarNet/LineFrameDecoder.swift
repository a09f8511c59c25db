import NIOCore

/// Frames the inbound byte stream into lines: each `\n`-terminated line (without the `\n` and a
/// `\r` before it) is passed on as a slice of the read buffer, without copying.
///
/// A line longer than `maximumLineBytes` cannot be framed: the decoder throws
/// ``LineTooLongError`` and the connection is closed after the error answer.
public struct LineFrameDecoder: ByteToMessageDecoder, Sendable {
    public typealias InboundOut = ByteBuffer

    /// The longest accepted line, without its terminator.
    public let maximumLineBytes: Int
    /// Bytes already searched for a newline in the current buffer (so a long line is scanned once).
    private var searched = 0

    /// Creates a decoder.
    public init(maximumLineBytes: Int) {
        self.maximumLineBytes = maximumLineBytes
    }

    public mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        guard let line = try nextLine(&buffer) else { return .needMoreData }
        context.fireChannelRead(Self.wrapInboundOut(line))
        return .continue
    }

    public mutating func decodeLast(context: ChannelHandlerContext, buffer: inout ByteBuffer, seenEOF: Bool)
        throws -> DecodingState
    {
        // A last line without its newline is dropped: this decoder frames what a server sends
        // (the client library), and a server's line cut short by a close is not a message. The
        // server's own handler takes a client's last line without a newline (see ConnectionHandler).
        while let line = try nextLine(&buffer) {
            context.fireChannelRead(Self.wrapInboundOut(line))
        }
        return .needMoreData
    }

    /// Takes the next complete line off `buffer`, or returns `nil` when it holds none yet.
    public mutating func nextLine(_ buffer: inout ByteBuffer) throws(LineTooLongError) -> ByteBuffer? {
        let readable = buffer.readableBytes
        let alreadySearched = searched
        let newline: Int? = buffer.withUnsafeReadableBytes { bytes -> Int? in
            guard alreadySearched < bytes.count else { return nil }
            let start = bytes.baseAddress! + alreadySearched
            guard let found = memchr(start, 0x0A, bytes.count - alreadySearched) else { return nil }
            return UnsafeRawPointer(found) - bytes.baseAddress!
        }
        guard let newline else {
            searched = readable
            // Over the limit already, unless the one byte past it is a `\r` that the `\n` may follow.
            if readable > maximumLineBytes
                && !(readable == maximumLineBytes + 1
                     && buffer.getInteger(at: buffer.readerIndex + readable - 1, as: UInt8.self) == UInt8(ascii: "\r"))
            {
                throw LineTooLongError(maximumLineBytes: maximumLineBytes)
            }
            return nil
        }
        searched = 0
        var length = newline
        if length > 0, buffer.getInteger(at: buffer.readerIndex + length - 1, as: UInt8.self) == UInt8(ascii: "\r") {
            length -= 1
        }
        if length > maximumLineBytes {
            throw LineTooLongError(maximumLineBytes: maximumLineBytes)
        }
        let line = buffer.getSlice(at: buffer.readerIndex, length: length)!
        buffer.moveReaderIndex(forwardBy: newline + 1)
        return line
    }
}

/// A line longer than the server's limit: the input cannot be framed.
public struct LineTooLongError: Error, Sendable, Equatable {
    /// The limit that was exceeded.
    public let maximumLineBytes: Int

    /// The protocol error answered before the connection closes.
    public var protocolError: ExarError {
        .io(.invalidData, "line longer than the maximum of \(maximumLineBytes) bytes")
    }
}

#if canImport(Glibc)
import Glibc
#endif
import ExarModel

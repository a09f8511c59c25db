#if canImport(Glibc)
import Glibc
#endif
import Foundation

/// The lines of one blocking connection, read in 256 KiB chunks and found with `memchr` in
/// place: the catch-up readers of both sides, so that the client is not what limits them.
struct LineReader {
    let fd: Int32
    private var buffer = [UInt8](repeating: 0, count: 256 * 1024)
    private var start = 0
    private var end = 0

    init(fd: Int32) {
        self.fd = fd
    }

    /// Sends `bytes` whole.
    func send(_ bytes: [UInt8]) throws(BenchError) {
        var sent = 0
        while sent < bytes.count {
            let count = bytes.withUnsafeBytes { write(fd, $0.baseAddress! + sent, $0.count - sent) }
            if count < 0 {
                if errno == EINTR { continue }
                if errno == EAGAIN {  // a non-blocking socket whose buffer is full: wait for room
                    var waiting = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
                    _ = poll(&waiting, 1, 1000)
                    continue
                }
                throw BenchError("write: \(errnoText())")
            }
            sent += count
        }
    }

    /// Reads once what a non-blocking socket has, then calls `body` with each complete line.
    mutating func forEachAvailableLine(_ body: (UnsafeRawBufferPointer) throws(BenchError) -> Void) throws(BenchError) {
        compact()
        guard end < buffer.count else { throw BenchError("a line longer than \(buffer.count) bytes") }
        let (fd, filled, capacity) = (self.fd, end, buffer.count)
        let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress! + filled, capacity - filled) }
        if count < 0 {
            if errno == EAGAIN || errno == EINTR { return }
            throw BenchError("read: \(errnoText())")
        }
        if count == 0 { throw BenchError("the server closed the connection") }
        end += count
        while let (lineStart, lineEnd) = nextLine() {
            try buffer.withUnsafeBytes { bytes in
                Result { () throws(BenchError) in try body(UnsafeRawBufferPointer(rebasing: bytes[lineStart..<lineEnd])) }
            }.get()
        }
    }

    /// The bounds of the next complete line (its terminator dropped), consumed; `nil` if none.
    private mutating func nextLine() -> (Int, Int)? {
        guard start < end else { return nil }
        let (start, end) = (self.start, self.end)
        let found: (Int, Int)? = buffer.withUnsafeBytes { bytes in
            guard let newline = memchr(bytes.baseAddress! + start, Int32(UInt8(ascii: "\n")), end - start) else { return nil }
            let position = UnsafeRawPointer(newline) - bytes.baseAddress!
            let lineEnd = position > start && bytes[position - 1] == UInt8(ascii: "\r") ? position - 1 : position
            return (lineEnd, position + 1)
        }
        guard let (lineEnd, next) = found else { return nil }
        self.start = next
        return (start, lineEnd)
    }

    /// Moves an unfinished line to the front of the buffer.
    private mutating func compact() {
        guard start > 0 else { return }
        let (from, count) = (start, end - start)
        buffer.withUnsafeMutableBytes { bytes in
            if count > 0 { memmove(bytes.baseAddress!, bytes.baseAddress! + from, count) }
        }
        end = count
        start = 0
    }

    /// Calls `body` with each line (without its `\n` and a `\r` before it), reading as needed,
    /// until `body` returns `false`; the lines after that one stay for the next call.
    mutating func forEachLine(_ body: (UnsafeRawBufferPointer) throws(BenchError) -> Bool) throws(BenchError) {
        while true {
            while let (lineStart, lineEnd) = nextLine() {
                let keepGoing = try buffer.withUnsafeBytes { bytes in
                    Result { () throws(BenchError) in try body(UnsafeRawBufferPointer(rebasing: bytes[lineStart..<lineEnd])) }
                }.get()
                if !keepGoing { return }
            }
            compact()
            guard end < buffer.count else { throw BenchError("a line longer than \(buffer.count) bytes") }
            let (fd, filled, capacity) = (self.fd, end, buffer.count)
            let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress! + filled, capacity - filled) }
            if count < 0 {
                if errno == EINTR { continue }
                throw BenchError("read: \(errnoText())")
            }
            if count == 0 { throw BenchError("the server closed the connection") }
            end += count
        }
    }
}

/// Runs `body` on a thread of its own (blocking reads must not hold a Swift concurrency thread).
func onOwnThread<T: Sendable>(_ name: String, _ body: @escaping @Sendable () throws(BenchError) -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        let thread = Thread { continuation.resume(with: Result { () throws(BenchError) in try body() }) }
        thread.name = name
        thread.start()
    }
}

/// Reads a collection back with one non-live subscription: `Connect`, then `Subscribe`, then
/// every `Event` line to `EndOfEventStream`. Returns the events, their bytes and the time from
/// sending the subscription to the end of the stream.
func runExarCatchUp(host: String, port: Int, connect: [UInt8], subscribe: [UInt8], progress: ProgressMeter?)
    async throws -> (events: Int, bytes: Int, nanoseconds: UInt64)
{
    try await onOwnThread("exar-bench-catchup") { () throws(BenchError) in
        let fd = try connectSocket(host: host, port: port, blocking: true)
        defer { close(fd) }
        var reader = LineReader(fd: fd)
        try reader.send(connect)
        try reader.forEachLine { (line) throws(BenchError) in
            guard line.elementsEqual("Connected".utf8) else { throw BenchError("connect answered: \(excerpt(line))") }
            return false
        }
        let started = monotonicNanoseconds()
        try reader.send(subscribe)
        var subscribed = false
        var events = 0
        var bytes = 0
        try reader.forEachLine { (line) throws(BenchError) in
            if line.starts(with: "Event\t".utf8) {
                events += 1
                bytes += line.count + 1
                if events & 1023 == 0 { progress?.advance(1024) }
                return true
            }
            if !subscribed && line.elementsEqual("Subscribed".utf8) {
                subscribed = true
                return true
            }
            guard line.elementsEqual("EndOfEventStream".utf8) else { throw BenchError("subscription answered: \(excerpt(line))") }
            return false
        }
        return (events, bytes, monotonicNanoseconds() - started)
    }
}

/// Reads a stream back with `XRANGE` pages of 10,000 entries, each page asked for once the last
/// one is read. Returns the entries, the reply bytes and the time taken.
func runRedisXRange(port: Int, key: String) async throws -> (events: Int, bytes: Int, nanoseconds: UInt64) {
    try await onOwnThread("exar-bench-xrange") { () throws(BenchError) in
        let page = 10_000
        let fd = try connectSocket(host: "127.0.0.1", port: port, blocking: true)
        defer { close(fd) }
        var reader = LineReader(fd: fd)
        var events = 0
        var bytes = 0
        var walk = RespEntryWalk()
        let started = monotonicNanoseconds()
        while true {
            let from = walk.lastId.isEmpty ? "-" : "(" + String(decoding: walk.lastId, as: UTF8.self)
            try reader.send(Array(respCommand(["XRANGE", key, from, "+", "COUNT", String(page)]).readableBytesView))
            var entries = -1
            try reader.forEachLine { (line) throws(BenchError) in
                bytes += line.count + 2
                if entries < 0 {
                    guard line.first == UInt8(ascii: "*"), let count = Int(excerpt(line.dropFirst())) else {
                        throw BenchError("redis answered: \(excerpt(line))")
                    }
                    entries = count
                    walk.start(entries: count)
                    return !walk.isDone
                }
                if walk.take(line) == .payload { events += 1 }
                return !walk.isDone
            }
            if entries < page { break }
        }
        return (events, bytes, monotonicNanoseconds() - started)
    }
}

/// The start of a line received, for an error message.
func excerpt(_ bytes: some Collection<UInt8>) -> String {
    String(decoding: bytes.prefix(200), as: UTF8.self)
}

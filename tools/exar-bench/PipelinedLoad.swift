#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Histogram

/// How the answers of a pipelined publish load are told apart in what comes back.
enum AnswerFormat: Sendable {
    /// Exar DB: `Connected` for the `Connect` line, then a `Published\t<id>` line per `Publish`.
    case exar
    /// Redis: a bulk string (the new entry's id) per `XADD`.
    case redis
    /// NATS JetStream: `PONG` for the handshake's `PING` (after `INFO`), then a `MSG` with the
    /// stream's ack as its payload per `PUB`.
    case nats

    /// Counts the complete answers at the start of `bytes` (the handshake's first, when
    /// `connected` is false); returns them and the bytes they take. An answer that is not a
    /// success fails the run with its text.
    func scan(_ bytes: UnsafeRawBufferPointer, connected: inout Bool) throws(BenchError) -> (answers: Int, consumed: Int) {
        guard let base = bytes.baseAddress else { return (0, 0) }
        var position = 0
        var answers = 0
        while position < bytes.count,
            let found = memchr(base + position, Int32(UInt8(ascii: "\n")), bytes.count - position) {
            let lineEnd = UnsafeRawPointer(found) - base
            let line = UnsafeRawBufferPointer(rebasing: bytes[position..<lineEnd])
            switch self {
            case .exar:
                if !connected {
                    guard line.elementsEqual("Connected".utf8) else { throw BenchError("connect answered: \(excerpt(line))") }
                    connected = true
                } else {
                    guard line.starts(with: "Published\t".utf8) else { throw BenchError("publish answered: \(excerpt(line))") }
                    answers += 1
                }
                position = lineEnd + 1
            case .redis:
                // "$<length>\r\n<id>\r\n"; an error is "-<message>\r\n".
                guard line.first == UInt8(ascii: "$"), let length = Self.bulkLength(line) else {
                    throw BenchError("redis answered: \(excerpt(line))")
                }
                let end = lineEnd + 1 + length + 2
                guard end <= bytes.count else { return (answers, position) }
                answers += 1
                position = end
            case .nats:
                if !connected {
                    if line.starts(with: "-ERR".utf8) { throw BenchError("nats answered: \(excerpt(line))") }
                    if line.starts(with: "PONG".utf8) { connected = true }
                    position = lineEnd + 1
                    continue
                }
                guard let length = NatsWire.messageLength(line) else {
                    // The server's own PING (every two minutes) and INFO updates are not answers.
                    guard line.starts(with: "PING".utf8) || line.starts(with: "INFO".utf8) || line.starts(with: "+OK".utf8) else {
                        throw BenchError("nats answered: \(excerpt(line))")
                    }
                    position = lineEnd + 1
                    continue
                }
                let end = lineEnd + 1 + length + 2
                guard end <= bytes.count else { return (answers, position) }
                let payload = UnsafeRawBufferPointer(rebasing: bytes[(lineEnd + 1)..<(lineEnd + 1 + length)])
                if payload.starts(with: #"{"error""#.utf8) { throw BenchError("nats answered: \(excerpt(payload))") }
                answers += 1
                position = end
            }
        }
        return (answers, position)
    }

    /// The length of a bulk string header line (`$<digits>`, a `\r` after them), if it is one.
    private static func bulkLength(_ line: UnsafeRawBufferPointer) -> Int? {
        var length = 0
        var digits = 0
        for byte in line.dropFirst() {
            if byte == UInt8(ascii: "\r") { break }
            guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9"), digits < 12 else { return nil }
            length = length * 10 + Int(byte - UInt8(ascii: "0"))
            digits += 1
        }
        return digits > 0 ? length : nil
    }

}

/// A publish load driven like a C client: one thread, non-blocking sockets and `poll`, requests
/// written straight from a prepared byte pattern and answers counted in place, so the client
/// costs little of the CPU it shares with the server. Each plan is one connection; `pipeline`
/// requests are in flight on each. Returns every request's latency (send to answer) and the
/// seconds from the first bytes sent (once every connection is open) to the last answer.
func runPipelinedLoad(host: String, port: Int, format: AnswerFormat, plans: [ConnectionPlan], pipeline: Int,
                      progress: ProgressMeter?) async throws -> (Histogram<UInt64>, Double) {
    try await withCheckedThrowingContinuation { continuation in
        let thread = Thread {
            continuation.resume(with: Result { () throws(BenchError) in
                var load = try PipelinedLoad(host: host, port: port, format: format, plans: plans,
                                             pipeline: pipeline, progress: progress)
                defer { load.close() }
                return try load.run()
            })
        }
        thread.name = "exar-bench-load"
        thread.start()
    }
}

/// One connection of a pipelined load: sent `handshake` once (answered before the requests, when
/// not empty), then `count` times `request`.
struct ConnectionPlan: Sendable {
    var handshake: [UInt8] = []
    var request: [UInt8]
    var count: Int
}

private struct PipelinedLoad {
    private struct Connection {
        let fd: Int32
        let request: [UInt8]
        var window: PipelineWindow
        var connected: Bool
        var received: [UInt8] = Array(repeating: 0, count: 64 * 1024)
        var filled = 0
        var outgoing: [UInt8] = []
        var written = 0
        var open = true

        /// Reads once, and counts and drops the complete answers received; returns how many.
        mutating func receive(_ format: AnswerFormat) throws(BenchError) -> Int {
            let capacity = received.count
            let filled = self.filled
            let fd = self.fd
            let count = received.withUnsafeMutableBytes { read(fd, $0.baseAddress! + filled, capacity - filled) }
            if count < 0 {
                if errno == EAGAIN || errno == EINTR { return 0 }
                throw BenchError("read: \(errnoText()) after \(window.answered) answers")
            }
            if count == 0 {
                throw BenchError("the server closed a connection after \(window.answered) of \(window.total) answers")
            }
            self.filled += count
            let wasConnected = connected
            var connected = self.connected
            let end = self.filled
            let (answers, consumed) = try received.withUnsafeBytes { bytes in
                Result { () throws(BenchError) in
                    try format.scan(UnsafeRawBufferPointer(rebasing: bytes[0..<end]), connected: &connected)
                }
            }.get()
            self.connected = connected
            if consumed > 0 {
                received.withUnsafeMutableBytes { bytes in
                    if end > consumed { memmove(bytes.baseAddress!, bytes.baseAddress! + consumed, end - consumed) }
                }
                self.filled = end - consumed
            } else if end == capacity {
                throw BenchError("an answer longer than \(capacity) bytes")
            }
            if !wasConnected && connected { window.start() }
            let now = monotonicNanoseconds()
            for _ in 0..<answers { window.answer(at: now) }
            return answers
        }
    }

    private let format: AnswerFormat
    private let progress: ProgressMeter?
    private var polled: [pollfd] = []
    private var connections: [Connection] = []

    init(host: String, port: Int, format: AnswerFormat, plans: [ConnectionPlan], pipeline: Int,
         progress: ProgressMeter?) throws(BenchError) {
        self.format = format
        self.progress = progress
        for plan in plans where plan.count > 0 {
            let fd = try connectSocket(host: host, port: port)
            var connection = Connection(fd: fd, request: plan.request,
                                        window: PipelineWindow(total: plan.count, depth: pipeline),
                                        connected: plan.handshake.isEmpty)
            connection.outgoing = plan.handshake
            if connection.connected { connection.window.start() }
            connections.append(connection)
            polled.append(pollfd(fd: fd, events: Int16(POLLIN), revents: 0))
        }
    }

    mutating func close() {
        for connection in connections where connection.open { Glibc.close(connection.fd) }
    }

    mutating func run() throws(BenchError) -> (Histogram<UInt64>, Double) {
        let started = monotonicNanoseconds()
        for number in connections.indices { try sendDue(number) }
        var remaining = connections.count
        var idleSince = monotonicNanoseconds()
        while remaining > 0 {
            guard try pollOnce(&polled, idleSince: &idleSince,
                               stalled: "no answer for 30 s (\(remaining) connections unfinished)") else { continue }
            for number in polled.indices where polled[number].revents != 0 {
                let events = Int32(polled[number].revents)
                polled[number].revents = 0
                if events & Int32(POLLOUT) != 0 { try flush(number) }
                if events & Int32(POLLIN | POLLHUP | POLLERR) != 0 {
                    if try receive(number) { remaining -= 1 }
                }
            }
        }
        var merged = Histogram<UInt64>(highestTrackableValue: 60_000_000_000)
        for connection in connections { merged.add(connection.window.histogram) }
        return (merged, Double(monotonicNanoseconds() - started) / 1e9)
    }

    /// Reads what arrived on connection `number` and answers it with the requests now due;
    /// returns whether the connection got its last answer (it is then closed).
    private mutating func receive(_ number: Int) throws(BenchError) -> Bool {
        let answers = try connections[number].receive(format)
        if answers > 0 { progress?.advance(answers) }
        if connections[number].window.isComplete {
            polled[number].fd = -1  // poll skips it from now on
            Glibc.close(connections[number].fd)
            connections[number].open = false
            return true
        }
        try sendDue(number)
        return false
    }

    /// Queues the requests due on connection `number` and writes what the socket takes.
    private mutating func sendDue(_ number: Int) throws(BenchError) {
        let due = connections[number].window.takeDue(at: monotonicNanoseconds())
        if due > 0 {
            let request = connections[number].request
            connections[number].outgoing.reserveCapacity(connections[number].outgoing.count + due * request.count)
            for _ in 0..<due { connections[number].outgoing.append(contentsOf: request) }
        }
        try flush(number)
    }

    private mutating func flush(_ number: Int) throws(BenchError) {
        let fd = connections[number].fd
        while connections[number].written < connections[number].outgoing.count {
            let start = connections[number].written
            let count = connections[number].outgoing.withUnsafeBytes {
                write(fd, $0.baseAddress! + start, $0.count - start)
            }
            if count < 0 {
                if errno == EINTR { continue }
                guard errno == EAGAIN else { throw BenchError("write: \(errnoText())") }
                watchWritable(number, true)
                return
            }
            connections[number].written += count
        }
        connections[number].outgoing.removeAll(keepingCapacity: true)
        connections[number].written = 0
        watchWritable(number, false)
    }

    private mutating func watchWritable(_ number: Int, _ wanted: Bool) {
        polled[number].events = Int16(wanted ? POLLIN | POLLOUT : POLLIN)
    }
}

/// Waits up to a second for any of `polled` to be ready; returns whether one is. Throws on a
/// `poll` error, or when nothing was ready for 30 s since `idleSince` (`stalled` says what).
func pollOnce(_ polled: inout [pollfd], idleSince: inout UInt64, stalled: @autoclosure () -> String) throws(BenchError) -> Bool {
    let ready = poll(&polled, nfds_t(polled.count), 1000)
    if ready < 0 {
        if errno == EINTR { return false }
        throw BenchError("poll: \(errnoText())")
    }
    if ready == 0 {
        if monotonicNanoseconds() - idleSince > 30_000_000_000 { throw BenchError(stalled()) }
        return false
    }
    idleSince = monotonicNanoseconds()
    return true
}

/// A connected TCP socket with `TCP_NODELAY`, non-blocking unless asked.
func connectSocket(host: String, port: Int, blocking: Bool = false) throws(BenchError) -> Int32 {
    var hints = addrinfo()
    hints.ai_family = AF_UNSPEC
    hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
    var list: UnsafeMutablePointer<addrinfo>?
    guard getaddrinfo(host, String(port), &hints, &list) == 0, let first = list else {
        throw BenchError("cannot resolve \(host)")
    }
    defer { freeaddrinfo(list) }
    var entry: UnsafeMutablePointer<addrinfo>? = first
    var lastError = "no address"
    while let address = entry {
        let fd = socket(address.pointee.ai_family, address.pointee.ai_socktype, address.pointee.ai_protocol)
        if fd >= 0 {
            if connect(fd, address.pointee.ai_addr, address.pointee.ai_addrlen) == 0 {
                var one: Int32 = 1
                setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
                if !blocking { _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) }
                return fd
            }
            lastError = errnoText()
            Glibc.close(fd)
        }
        entry = address.pointee.ai_next
    }
    throw BenchError("cannot connect to \(host):\(port): \(lastError)")
}

func errnoText() -> String {
    String(cString: strerror(errno))
}

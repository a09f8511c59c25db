#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Histogram

/// One live reader of the fan-out workload: what it sends first, what it does with each line it
/// receives, and when it is in place and when it is done.
protocol LiveSession: Sendable {
    /// Sent once connected.
    var opening: [UInt8] { get }
    /// The reader is in place: what is published from now on reaches it.
    var isReady: Bool { get }
    /// Every expected event arrived.
    var isComplete: Bool { get }
    /// Publish-to-delivery latencies so far.
    var latency: Histogram<UInt64> { get }
    /// Events received so far.
    var delivered: Int { get }
    /// Takes a line (without `\n` and a `\r` before it) received at `now`; returns what to send next (often nothing).
    mutating func take(_ line: UnsafeRawBufferPointer, at now: UInt64) throws(BenchError) -> [UInt8]
}

/// The send time (ns) at the start of `field`, as the paced publisher wrote it; 0 if none.
func sendTime(_ field: some Collection<UInt8>) -> UInt64 {
    var sent: UInt64 = 0
    for byte in field {
        guard byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") else { break }
        sent = sent &* 10 &+ UInt64(byte - UInt8(ascii: "0"))
    }
    return sent
}

/// An Exar DB live subscription: `Connect`, `Subscribe` (live, with the event count as limit),
/// then `Event` lines until `EndOfEventStream`.
struct ExarLiveSession: LiveSession {
    let opening: [UInt8]
    private var state = 0  // 0 waiting for Connected, 1 for Subscribed, 2 streaming, 3 ended
    private(set) var delivered = 0
    private(set) var latency = Histogram<UInt64>(highestTrackableValue: 60_000_000_000)

    init(connect: [UInt8], subscribe: [UInt8]) {
        opening = connect + subscribe
    }

    var isReady: Bool { state >= 2 }
    var isComplete: Bool { state == 3 }

    mutating func take(_ line: UnsafeRawBufferPointer, at now: UInt64) throws(BenchError) -> [UInt8] {
        switch state {
        case 0:
            guard line.elementsEqual("Connected".utf8) else { throw BenchError("connect answered: \(excerpt(line))") }
            state = 1
        case 1:
            guard line.elementsEqual("Subscribed".utf8) else { throw BenchError("subscribe answered: \(excerpt(line))") }
            state = 2
        default:
            if line.starts(with: "Event\t".utf8) {
                // Event\t<id>\t<timestamp>\t<tags>\t<data>: the data starts with the send time.
                var tabs = 0
                var dataStart = line.count
                for index in line.indices where line[index] == UInt8(ascii: "\t") {
                    tabs += 1
                    if tabs == 4 {
                        dataStart = index + 1
                        break
                    }
                }
                let sent = sendTime(line[dataStart...])
                if sent > 0 && now > sent { latency.record(now - sent) }
                delivered += 1
            } else if line.elementsEqual("EndOfEventStream".utf8) {
                state = 3
            } else {
                throw BenchError("subscription answered: \(excerpt(line))")
            }
        }
        return []
    }
}

/// A Redis reader: `XREAD COUNT 10000 BLOCK 0 STREAMS key <last id>`, again after each reply,
/// until `total` entries arrived.
struct RedisLiveSession: LiveSession {
    let key: String
    let total: Int
    let opening: [UInt8]
    private var headerLinesLeft = 5  // *1, *2, $<n>, <key>, *<count>
    private var walk = RespEntryWalk()
    private(set) var delivered = 0
    private(set) var latency = Histogram<UInt64>(highestTrackableValue: 60_000_000_000)

    init(key: String, total: Int) {
        self.key = key
        self.total = total
        // From 0-0 on a new stream: nothing published after this is sent can be missed.
        opening = Self.request(key: key, after: "0-0")
    }

    var isReady: Bool { true }
    var isComplete: Bool { delivered >= total }

    private static func request(key: String, after id: String) -> [UInt8] {
        Array(respCommand(["XREAD", "COUNT", "10000", "BLOCK", "0", "STREAMS", key, id]).readableBytesView)
    }

    mutating func take(_ line: UnsafeRawBufferPointer, at now: UInt64) throws(BenchError) -> [UInt8] {
        if headerLinesLeft > 0 {
            guard line.first != UInt8(ascii: "-") else { throw BenchError("redis answered: \(excerpt(line))") }
            headerLinesLeft -= 1
            if headerLinesLeft == 0 {
                walk.start(entries: Int(excerpt(line.dropFirst())) ?? 0)
                if walk.isDone { return nextRequest() }
            }
            return []
        }
        if walk.take(line) == .payload {
            delivered += 1
            let sent = sendTime(line)
            if sent > 0 && now > sent { latency.record(now - sent) }
        }
        return walk.isDone && !isComplete ? nextRequest() : []
    }

    private mutating func nextRequest() -> [UInt8] {
        headerLinesLeft = 5
        return Self.request(key: key, after: walk.lastId.isEmpty ? "0-0" : String(decoding: walk.lastId, as: UTF8.self))
    }
}

/// Runs live sessions, one connection each, on one thread with non-blocking sockets and `poll`
/// (like the publish driver: the readers must not be what limits the server). Returns once
/// every session is ready, with a task that ends when they are all complete.
func startLiveSessions<Session: LiveSession>(host: String, port: Int, sessions: [Session], progress: ProgressMeter?)
    async throws -> Task<[Session], any Error>
{
    let (ready, readyContinuation) = AsyncStream<Void>.makeStream()
    let task = Task {
        try await onOwnThread("exar-bench-readers") { () throws(BenchError) in
            defer { readyContinuation.finish() }
            return try runLiveSessions(host: host, port: port, sessions: sessions, progress: progress) {
                readyContinuation.finish()
            }
        }
    }
    for await _ in ready {}
    return task
}

private func runLiveSessions<Session: LiveSession>(
    host: String, port: Int, sessions initial: [Session], progress: ProgressMeter?, whenReady: () -> Void
) throws(BenchError) -> [Session] {
    var sessions = initial
    var readers: [LineReader] = []
    var polled: [pollfd] = []
    defer { for reader in readers { close(reader.fd) } }
    for session in sessions {
        let fd = try connectSocket(host: host, port: port, blocking: true)
        let reader = LineReader(fd: fd)
        try reader.send(session.opening)
        _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
        readers.append(reader)
        polled.append(pollfd(fd: fd, events: Int16(POLLIN), revents: 0))
    }
    var announced = false
    var idleSince = monotonicNanoseconds()
    while !sessions.allSatisfy(\.isComplete) {
        if !announced && sessions.allSatisfy(\.isReady) {
            announced = true
            whenReady()
        }
        guard try pollOnce(&polled, idleSince: &idleSince, stalled: "no event for 30 s") else { continue }
        for number in polled.indices where polled[number].revents != 0 {
            polled[number].revents = 0
            let now = monotonicNanoseconds()
            let before = sessions[number].delivered
            var replies: [[UInt8]] = []
            try readers[number].forEachAvailableLine { (line) throws(BenchError) in
                let reply = try sessions[number].take(line, at: now)
                if !reply.isEmpty { replies.append(reply) }
            }
            progress?.advance(sessions[number].delivered - before)
            for reply in replies { try readers[number].send(reply) }
            if sessions[number].isComplete { polled[number].fd = -1 }
        }
    }
    return sessions
}


#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Histogram

/// A `nats-server` with JetStream started on a free loopback port and a temporary store folder,
/// and one stream, `bench`, with file storage on subject `bench`. nats-server 2.9 (Debian's)
/// syncs its block files on a timer of its own: it has no setting to sync before an
/// acknowledgement, so its durability is stated, not matched, in `--durable` runs.
final class NatsProcess {
    let port: Int
    private let folder: String
    private let process: Process
    static let stream = "bench"
    static let durability = "nats: JetStream file storage (acknowledged before any fsync: nats-server 2.9 syncs its files on a timer and has no setting to sync before an ack)"

    init() throws {
        guard let binary = findExecutable(["/usr/sbin/nats-server", "/usr/bin/nats-server", "/usr/local/bin/nats-server"]) else {
            throw BenchError("nats-server not found: install it (apt-get install -y nats-server) or run Benchmarks/compare-nats.sh")
        }
        folder = NSTemporaryDirectory() + "exar-bench-nats-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        port = try ServerProcess.freePort()
        process = Process()
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = ["-a", "127.0.0.1", "-p", String(port), "-js", "-sd", folder]
        process.standardOutput = FileHandle(forWritingAtPath: "/dev/null")
        process.standardError = FileHandle(forWritingAtPath: "/dev/null")
        try process.run()
        for _ in 0..<200 where !ServerProcess.canConnect(port: port) { usleep(25_000) }
        guard ServerProcess.canConnect(port: port) else { throw BenchError("nats-server did not start") }
        try request(subject: "$JS.API.STREAM.CREATE.\(Self.stream)",
                    body: #"{"name":"\#(Self.stream)","subjects":["\#(Self.stream)"],"storage":"file","retention":"limits","discard":"old"}"#)
    }

    func stop() {
        killPeer(process, folder: folder)
    }

    /// Sends one JetStream API request and waits for its answer; throws if it names an error.
    func request(subject: String, body: String) throws(BenchError) {
        let fd = try connectSocket(host: "127.0.0.1", port: port, blocking: true)
        defer { close(fd) }
        var reader = LineReader(fd: fd)
        try reader.send(Array((NatsWire.connect + "SUB _INBOX.api 1\r\n" + NatsWire.publish(subject, reply: "_INBOX.api", body)).utf8))
        var payloadNext = false
        try reader.forEachLine { (line) throws(BenchError) in
            if payloadNext {
                let text = excerpt(line)
                if text.contains("\"error\"") { throw BenchError("nats answered \(subject): \(text)") }
                return false
            }
            if line.starts(with: "MSG ".utf8) { payloadNext = true }
            if line.starts(with: "-ERR".utf8) { throw BenchError("nats answered: \(excerpt(line))") }
            return true
        }
    }
}

/// The few NATS protocol lines the peer needs.
enum NatsWire {
    /// The client's first line: no `+OK` per message, no headers.
    static let connect = #"CONNECT {"verbose":false,"pedantic":false,"headers":false,"name":"exar-bench"}"# + "\r\n"

    static func publish(_ subject: String, reply: String, _ body: String) -> String {
        "PUB \(subject) \(reply) \(body.utf8.count)\r\n\(body)\r\n"
    }

    /// The payload length of a `MSG <subject> <sid> [reply] <length>` line, if it is one.
    static func messageLength(_ line: UnsafeRawBufferPointer) -> Int? {
        guard line.count > 4, line.starts(with: "MSG ".utf8) else { return nil }
        var end = line.count
        if line[end - 1] == UInt8(ascii: "\r") { end -= 1 }
        var start = end
        while start > 0, line[start - 1] >= UInt8(ascii: "0"), line[start - 1] <= UInt8(ascii: "9") { start -= 1 }
        guard start < end, end - start < 12, start > 0, line[start - 1] == UInt8(ascii: " ") else { return nil }
        var length = 0
        for index in start..<end { length = length * 10 + Int(line[index] - UInt8(ascii: "0")) }
        return length
    }
}

/// Publishes with acknowledgements: C connections, P publishes in flight each, every answer a
/// JetStream ack (`MSG` on the connection's inbox, `{"stream":...,"seq":N}`), through the same
/// driver as the other sides.
func runNatsPublish(port: Int, events: Int, size: Int, connections: Int, pipeline: Int,
                    progress: ProgressMeter? = nil) async throws -> (Histogram<UInt64>, Double) {
    let payload = String(repeating: "x", count: size)
    let plans = splitEvenly(events, over: connections).enumerated().map { number, count in
        let inbox = "_INBOX.ack\(number)"
        // The PING's PONG says the CONNECT and SUB were taken, before the first publish.
        let handshake = Array((NatsWire.connect + "SUB \(inbox) 1\r\nPING\r\n").utf8)
        let request = Array(NatsWire.publish(NatsProcess.stream, reply: inbox, payload).utf8)
        return ConnectionPlan(handshake: handshake, request: request, count: count)
    }
    return try await runPipelinedLoad(host: "127.0.0.1", port: port, format: .nats, plans: plans, pipeline: pipeline,
                                      progress: progress)
}

/// Reads the stream back through a push consumer (deliver all, no acks, instant replay) on a
/// blocking connection; returns the messages, their bytes and the time from the consumer's
/// creation request to the last message.
func runNatsCatchUp(port: Int, events: Int) async throws -> (events: Int, bytes: Int, nanoseconds: UInt64) {
    try await onOwnThread("exar-bench-nats-read") { () throws(BenchError) in
        let fd = try connectSocket(host: "127.0.0.1", port: port, blocking: true)
        defer { close(fd) }
        var reader = LineReader(fd: fd)
        try reader.send(Array((NatsWire.connect + "SUB _INBOX.read 1\r\nSUB _INBOX.api 2\r\nPING\r\n").utf8))
        try reader.forEachLine { (line) throws(BenchError) in
            if line.starts(with: "-ERR".utf8) { throw BenchError("nats answered: \(excerpt(line))") }
            return !line.elementsEqual("PONG".utf8)
        }
        let config = #"{"stream_name":"\#(NatsProcess.stream)","config":{"deliver_subject":"_INBOX.read","#
            + #""ack_policy":"none","deliver_policy":"all","replay_policy":"instant"}}"#
        let started = monotonicNanoseconds()
        try reader.send(Array(NatsWire.publish("$JS.API.CONSUMER.CREATE.\(NatsProcess.stream)", reply: "_INBOX.api", config).utf8))
        var read = 0
        var bytes = 0
        var payloadOf: UInt8 = 0  // the sid whose payload line comes next: 1 a message, 2 the API's answer
        try reader.forEachLine { (line) throws(BenchError) in
            bytes += line.count + 2
            switch payloadOf {
            case 1:
                payloadOf = 0
                read += 1
                return read < events
            case 2:
                payloadOf = 0
                if excerpt(line).contains("\"error\"") { throw BenchError("nats consumer: \(excerpt(line))") }
                return true
            default:
                if NatsWire.messageLength(line) != nil {
                    payloadOf = line.starts(with: "MSG _INBOX.api ".utf8) ? 2 : 1
                } else if line.starts(with: "-ERR".utf8) {
                    throw BenchError("nats answered: \(excerpt(line))")
                } else if line.elementsEqual("PING".utf8) {
                    _ = write(fd, "PONG\r\n", 6)
                }
                return true
            }
        }
        return (read, bytes, monotonicNanoseconds() - started)
    }
}

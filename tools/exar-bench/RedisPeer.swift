import ExarNet
import Foundation
import Histogram
import NIOCore
import NIOPosix

/// A `redis-server` started on a free loopback port for the side-by-side runs, with persistence
/// off (`--save ""`, `--appendonly no`): it keeps streams in memory only, which the report states.
/// Durable, it appends to a file in a temporary folder and syncs it before every answer
/// (`--appendonly yes --appendfsync always`).
final class RedisProcess {
    let port: Int
    private let process: Process
    private let folder: String

    init(durable: Bool = false) throws {
        guard let binary = findExecutable(["/usr/bin/redis-server", "/usr/local/bin/redis-server"]) else {
            throw BenchError("redis-server not found: install it (apt-get install -y redis-server) or run Benchmarks/compare-redis.sh")
        }
        port = try ServerProcess.freePort()
        folder = NSTemporaryDirectory() + "exar-bench-redis-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        process = Process()
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--dir", folder,
                             "--daemonize", "no", "--protected-mode", "no"]
            + (durable ? ["--appendonly", "yes", "--appendfsync", "always"] : ["--appendonly", "no"])
        process.standardOutput = FileHandle(forWritingAtPath: "/dev/null")
        process.standardError = FileHandle(forWritingAtPath: "/dev/null")
        try process.run()
        for _ in 0..<200 where !ServerProcess.canConnect(port: port) { usleep(25_000) }
        guard ServerProcess.canConnect(port: port) else { throw BenchError("redis-server did not start") }
    }

    func stop() {
        killPeer(process, folder: folder)
    }
}

/// RESP encoding of a command.
func respCommand(_ parts: [String]) -> ByteBuffer {
    var buffer = ByteBuffer()
    buffer.writeString("*\(parts.count)\r\n")
    for part in parts {
        buffer.writeString("$\(part.utf8.count)\r\n\(part)\r\n")
    }
    return buffer
}

/// Walks the stream entries of an `XRANGE` or `XREAD` reply line by line: each entry is 8 RESP
/// lines (`*2`, `$<n>`, `<id>`, `*2`, `$4`, `data`, `$<n>`, `<payload>`). Keeps the id of the last
/// entry seen, where the next page or read starts.
struct RespEntryWalk {
    enum Line { case other, id, payload }
    private(set) var linesLeft = 0
    private var lineInEntry = 0
    /// The id of the last entry taken (empty before the first); kept across `start`s.
    private(set) var lastId: [UInt8] = []

    /// Starts on the lines of `entries` entries (the count of the `*<count>` header line).
    mutating func start(entries: Int) {
        linesLeft = entries * 8
        lineInEntry = 0
    }

    /// Every line of the announced entries was taken.
    var isDone: Bool { linesLeft == 0 }

    /// Takes the next line: an entry's id (then kept as `lastId`), its payload (the entry's last
    /// line) or another line.
    mutating func take(_ line: UnsafeRawBufferPointer) -> Line {
        linesLeft -= 1
        lineInEntry += 1
        switch lineInEntry {
        case 3:
            lastId.removeAll(keepingCapacity: true)
            lastId.append(contentsOf: line)
            return .id
        case 8:
            lineInEntry = 0
            return .payload
        default: return .other
        }
    }
}

/// Connects a RESP driver (lines split at `\\n`, the `\\r` dropped by the same framing).
func connectRedisDriver(port: Int, group: any EventLoopGroup, handler: @escaping @Sendable () -> any ChannelHandler) async throws {
    try await connectDriver(host: "127.0.0.1", port: port, group: group, handler: handler)
}

/// XADD with C connections x P in flight, through the same driver as `publish`; returns latencies and seconds.
func runRedisXAdd(port: Int, key: String, events: Int, size: Int, connections: Int, pipeline: Int,
                  progress: ProgressMeter? = nil) async throws -> (Histogram<UInt64>, Double)
{
    let command = Array(respCommand(["XADD", key, "*", "data", String(repeating: "x", count: size)]).readableBytesView)
    let plans = splitEvenly(events, over: connections).map { ConnectionPlan(request: command, count: $0) }
    return try await runPipelinedLoad(host: "127.0.0.1", port: port, format: .redis, plans: plans, pipeline: pipeline,
                                      progress: progress)
}

import ArgumentParser
import ExarModel
import ExarNet
import Foundation
import Histogram
import NIOCore
import NIOPosix

/// `exar-bench`: load for an Exar DB server, with throughput and latency percentiles.
@main
struct ExarBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "exar-bench",
        abstract: "Load an Exar DB server: publish and catch-up workloads, throughput and latency percentiles.",
        discussion: "Without --port it starts its own exar-db (found beside exar-bench) on a temporary folder and a free port.",
        version: "0.1.0",
        subcommands: [PublishWorkload.self, CatchUpWorkload.self, FanOutWorkload.self, GroupWorkload.self, MixedWorkload.self]
    )
}

/// Where to send the load.
struct Target: ParsableArguments {
    @Option(help: "The server's host (with --port).") var host = "127.0.0.1"
    @Option(help: "The server's port; without it a private exar-db is started.") var port: Int?
    @Option(help: "Username, when the server has credentials.") var username: String?
    @Option(help: "Password, when the server has credentials.") var password: String?
    @Option(help: "The collection (default: a new one per run).") var collection: String?
    @Flag(help: "Print one JSON object instead of the table.") var json = false

    func connectLine(_ name: String) -> ByteBuffer {
        var line = ByteBuffer()
        line.writeConnect(collection: name, username: username, password: password)
        return line
    }
}

/// Runs `body` against the target (starting a private server with `sync` if asked).
func withServer<T>(_ target: Target, sync: String = "none", _ body: (String, Int) async throws -> T) async throws -> T {
    if let port = target.port {
        return try await body(target.host, port)
    }
    let server = try ServerProcess(sync: sync)
    defer { server.stop() }
    return try await body("127.0.0.1", server.port)
}

func connectDriver(host: String, port: Int, group: any EventLoopGroup, handler: @escaping @Sendable () -> any ChannelHandler)
    async throws
{
    _ = try await ClientBootstrap(group: group)
        .channelOption(.socketOption(.tcp_nodelay), value: 1)
        .channelInitializer { channel in
            channel.eventLoop.makeCompletedFuture {
                try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(LineFrameDecoder(maximumLineBytes: 1 << 26)))
                try channel.pipeline.syncOperations.addHandler(handler())
            }
        }
        .connect(host: host, port: port).get()
}

/// Publishes `events` over `connections`, each keeping `pipeline` in flight; returns the merged latencies and seconds.
func runPublish(host: String, port: Int, target: Target, collection: String, events: Int, size: Int,
                connections: Int, pipeline: Int, tags: Int, progress: ProgressMeter? = nil) async throws -> (Histogram<UInt64>, Double) {
    let connect = Array(target.connectLine(collection).readableBytesView)
    let plans = splitEvenly(events, over: connections).enumerated().map { number, count in
        var line = ByteBuffer()
        line.writePublish(tags: ["tag\(number % max(1, tags))"], timestamp: 0, data: String(repeating: "x", count: size))
        return ConnectionPlan(handshake: connect, request: Array(line.readableBytesView), count: count)
    }
    return try await runPipelinedLoad(host: host, port: port, format: .exar, plans: plans, pipeline: pipeline,
                                      progress: progress)
}

/// `total` split over `parts` as evenly as possible.
func splitEvenly(_ total: Int, over parts: Int) -> [Int] {
    (0..<parts).map { total / parts + ($0 < total % parts ? 1 : 0) }
}

/// One run's figures, as printed in the table and in the JSON.
struct Summary {
    let system: String
    let workload: String
    let parameters: [String: Int]
    let events: Int
    let seconds: Double
    let bytesPerEvent: Double
    let latency: Histogram<UInt64>?

    var rate: Double { seconds > 0 ? Double(events) / seconds : 0 }

    var percentiles: [(String, Double)] {
        guard let latency else { return [] }
        var values = [("p50", 50.0), ("p90", 90.0), ("p99", 99.0), ("p99.9", 99.9)].map { name, percentile in
            (name, Double(latency.valueAtPercentile(percentile)) / 1000)
        }
        values.append(("max", Double(latency.max) / 1000))
        return values
    }

    var json: [String: Any] {
        var object: [String: Any] = ["system": system, "workload": workload, "parameters": parameters, "events": events,
                                     "seconds": seconds, "events_per_second": rate,
                                     "megabytes_per_second": rate * bytesPerEvent / 1e6]
        if !percentiles.isEmpty { object["latency_us"] = Dictionary(uniqueKeysWithValues: percentiles) }
        return object
    }

    func printTable() {
        print("system       \(system)")
        print("workload     \(workload) \(parameters.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " "))")
        print("events       \(events) in \(String(format: "%.3f", seconds)) s")
        print("throughput   \(String(format: "%.0f", rate)) events/s, \(String(format: "%.1f", rate * bytesPerEvent / 1e6)) MB/s")
        if !percentiles.isEmpty {
            print("latency (us) " + percentiles.map { "\($0.0) \(String(format: "%.0f", $0.1))" }.joined(separator: "  "))
        }
    }
}

/// The durability settings each side ran with, stated with every comparison.
enum Durability {
    static func exar(sync: String, external: Bool) -> String {
        if external { return "exar-db: as the server at --port is configured" }
        return sync == "always"
            ? "exar-db: sync = always (synced before each acknowledgement, group-committed)"
            : "exar-db: sync = none (page cache; survives a crash of the process)"
    }

    static func redis(durable: Bool) -> String {
        durable ? "redis: appendonly yes, appendfsync always (fsync before it answers)"
            : "redis: appendonly no, save \"\" (memory only)"
    }
}

/// The peer's result in a comparison: its name (the JSON key) and the durability it ran with.
struct PeerResult {
    let name: String
    let summary: Summary
    let durability: String
}

/// Prints one result, or a result and its peer with the ratio, as a table or one JSON object.
func output(_ exar: Summary, peer: PeerResult?, exarDurability: String = Durability.exar(sync: "none", external: false),
            json: Bool) {
    let durability = peer.map { exarDurability + "; " + $0.durability } ?? exarDurability
    if json {
        var object = exar.json
        if let peer {
            object = ["exar": exar.json, peer.name: peer.summary.json,
                      "ratio_events_per_second": exar.rate / max(peer.summary.rate, 1), "durability": durability]
        }
        let data = try! JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
        print(String(decoding: data, as: UTF8.self))
        return
    }
    exar.printTable()
    if let peer {
        print("")
        peer.summary.printTable()
        print("")
        print("ratio        exar-db / \(peer.name) = \(String(format: "%.2f", exar.rate / max(peer.summary.rate, 1)))x events/s")
        if let exarLatency = exar.latency, let peerLatency = peer.summary.latency {
            let exarPercentiles = [50.0, 99].map { Double(exarLatency.valueAtPercentile($0)) / 1000 }
            let peerPercentiles = [50.0, 99].map { Double(peerLatency.valueAtPercentile($0)) / 1000 }
            print("latency (us) exar-db p50 \(String(format: "%.0f", exarPercentiles[0])) p99 \(String(format: "%.0f", exarPercentiles[1])), "
                + "\(peer.name) p50 \(String(format: "%.0f", peerPercentiles[0])) p99 \(String(format: "%.0f", peerPercentiles[1]))")
        }
        print("durability   \(durability)")
    }
}

/// Prints the result as a table or one JSON object.
func report(workload: String, parameters: [String: Int], events: Int, seconds: Double, bytesPerEvent: Double,
            latency: Histogram<UInt64>?, json: Bool) {
    output(Summary(system: "exar-db", workload: workload, parameters: parameters, events: events, seconds: seconds,
                   bytesPerEvent: bytesPerEvent, latency: latency), peer: nil, json: json)
}

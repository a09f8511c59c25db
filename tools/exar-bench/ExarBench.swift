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
        subcommands: [PublishWorkload.self, CatchUpWorkload.self, FanOutWorkload.self]
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

/// Runs `body` against the target (starting a private server if asked).
func withServer<T>(_ target: Target, _ body: (String, Int) async throws -> T) async throws -> T {
    if let port = target.port {
        return try await body(target.host, port)
    }
    let server = try ServerProcess()
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
                connections: Int, pipeline: Int, tags: Int) async throws -> (Histogram<UInt64>, Double) {
    let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    do {
        let result = try await publishLoad(group: group, host: host, port: port, target: target, collection: collection,
                                           events: events, size: size, connections: connections, pipeline: pipeline, tags: tags)
        try? await group.shutdownGracefully()
        return result
    } catch {
        try? await group.shutdownGracefully()
        throw error
    }
}

private func publishLoad(group: MultiThreadedEventLoopGroup, host: String, port: Int, target: Target, collection: String,
                         events: Int, size: Int, connections: Int, pipeline: Int, tags: Int)
    async throws -> (Histogram<UInt64>, Double)
{
    let perConnection = (events + connections - 1) / connections
    var promises: [EventLoopFuture<Histogram<UInt64>>] = []
    let started = monotonicNanoseconds()
    for number in 0..<connections {
        let count = min(perConnection, events - number * perConnection)
        guard count > 0 else { break }
        var line = ByteBuffer()
        let tag = "tag\(number % max(1, tags))"
        line.writePublish(tags: [tag], timestamp: 0, data: String(repeating: "x", count: size))
        let promise = group.next().makePromise(of: Histogram<UInt64>.self)
        promises.append(promise.futureResult)
        let connect = target.connectLine(collection)
        let publishLine = line
        try await connectDriver(host: host, port: port, group: group) {
            PublishDriver(connectLine: connect, publishLine: publishLine, total: count, pipeline: pipeline, done: promise)
        }
    }
    var merged = Histogram<UInt64>(highestTrackableValue: 60_000_000_000)
    for future in promises {
        merged.add(try await future.get())
    }
    return (merged, Double(monotonicNanoseconds() - started) / 1e9)
}

struct PublishWorkload: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "publish", abstract: "Publish N events of S bytes over C connections, P in flight each.")

    @OptionGroup var target: Target
    @Option(name: .customShort("n"), help: "Events in all.") var events = 200_000
    @Option(name: .customShort("s"), help: "Data bytes per event.") var size = 100
    @Option(name: .customShort("c"), help: "Connections.") var connections = 50
    @Option(name: .customShort("p"), help: "Publishes in flight per connection.") var pipeline = 16
    @Option(help: "Tags are drawn from this many (one per connection, round robin).") var tags = 4
    @Option(help: "Also run the same load against a peer started on loopback and print the ratio (redis: XADD).")
    var peer: String?

    func validate() throws {
        guard events > 0, size >= 0, connections > 0, pipeline > 0 else { throw ValidationError("counts must be positive") }
    }

    func run() async throws {
        let collection = target.collection ?? "bench-\(UUID().uuidString.prefix(8))"
        let (histogram, seconds) = try await withServer(target) { host, port in
            try await runPublish(host: host, port: port, target: target, collection: collection, events: events,
                                 size: size, connections: connections, pipeline: pipeline, tags: tags)
        }
        let parameters = ["events": events, "size": size, "connections": connections, "pipeline": pipeline]
        let exar = Summary(system: "exar-db", workload: "publish", parameters: parameters, events: events, seconds: seconds,
                           bytesPerEvent: Double(size + 30), latency: histogram)
        var redis: Summary?
        if peer == "redis" {
            let server = try RedisProcess()
            defer { server.stop() }
            let (latency, redisSeconds) = try await runRedisXAdd(port: server.port, key: "bench", events: events, size: size,
                                                                 connections: connections, pipeline: pipeline)
            redis = Summary(system: "redis (XADD)", workload: "publish", parameters: parameters, events: events,
                            seconds: redisSeconds, bytesPerEvent: Double(size + 30), latency: latency)
        } else if let peer {
            throw ValidationError("unknown peer \(peer): only redis")
        }
        output(exar, peer: redis, json: target.json)
    }
}

struct CatchUpWorkload: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "catchup", abstract: "Publish M events, then read them back with one non-live subscription.")

    @OptionGroup var target: Target
    @Option(name: .customShort("n"), help: "Events to publish, then read.") var events = 1_000_000
    @Option(name: .customShort("s"), help: "Data bytes per event.") var size = 100
    @Option(help: "Read only events with this tag (tags are tag0...tag3, so about a quarter match).") var tag: String?
    @Option(help: "Also read the same number of entries from a peer and print the ratio (redis: XRANGE pages).")
    var peer: String?

    func run() async throws {
        let collection = target.collection ?? "bench-\(UUID().uuidString.prefix(8))"
        let result = try await withServer(target) { host, port in
            _ = try await runPublish(host: host, port: port, target: target, collection: collection, events: events,
                                     size: size, connections: 4, pipeline: 64, tags: 4)
            let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
            defer { group.shutdownGracefully { _ in } }
            let promise = group.next().makePromise(of: (events: Int, bytes: Int, nanoseconds: UInt64).self)
            var subscribe = ByteBuffer()
            subscribe.writeSubscribe(Query(live: false, offset: 0, tag: tag))
            let connect = target.connectLine(collection)
            let subscribeLine = subscribe
            try await connectDriver(host: host, port: port, group: group) {
                CatchUpDriver(connectLine: connect, subscribeLine: subscribeLine, done: promise)
            }
            return try await promise.futureResult.get()
        }
        let seconds = Double(result.nanoseconds) / 1e9
        let parameters = ["events": events, "size": size, "tagged": tag == nil ? 0 : 1]
        let exar = Summary(system: "exar-db", workload: "catchup", parameters: parameters, events: result.events,
                           seconds: seconds, bytesPerEvent: result.events > 0 ? Double(result.bytes) / Double(result.events) : 0,
                           latency: nil)
        var redis: Summary?
        if peer == "redis" {
            let server = try RedisProcess()
            defer { server.stop() }
            _ = try await runRedisXAdd(port: server.port, key: "bench", events: events, size: size, connections: 4, pipeline: 64)
            let read = try await runRedisXRange(port: server.port, key: "bench")
            redis = Summary(system: "redis (XRANGE)", workload: "catchup", parameters: parameters, events: read.events,
                            seconds: Double(read.nanoseconds) / 1e9,
                            bytesPerEvent: read.events > 0 ? Double(read.bytes) / Double(read.events) : 0, latency: nil)
        } else if let peer {
            throw ValidationError("unknown peer \(peer): only redis")
        }
        output(exar, peer: redis, json: target.json)
    }
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
let durabilityNote = "exar-db: sync = none (page cache; survives a crash of the process); redis: appendonly no, save \"\" (memory only)"

/// Prints one result, or a result and its peer with the ratio, as a table or one JSON object.
func output(_ exar: Summary, peer: Summary?, json: Bool) {
    if json {
        var object = exar.json
        if let peer {
            object = ["exar": exar.json, "redis": peer.json, "ratio_events_per_second": exar.rate / max(peer.rate, 1),
                      "durability": durabilityNote]
        }
        let data = try! JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
        print(String(decoding: data, as: UTF8.self))
        return
    }
    exar.printTable()
    if let peer {
        print("")
        peer.printTable()
        print("")
        print("ratio        exar-db / redis = \(String(format: "%.2f", exar.rate / max(peer.rate, 1)))x events/s")
        print("durability   \(durabilityNote)")
    }
}

/// Prints the result as a table or one JSON object.
func report(workload: String, parameters: [String: Int], events: Int, seconds: Double, bytesPerEvent: Double,
            latency: Histogram<UInt64>?, json: Bool) {
    output(Summary(system: "exar-db", workload: workload, parameters: parameters, events: events, seconds: seconds,
                   bytesPerEvent: bytesPerEvent, latency: latency), peer: nil, json: json)
}

struct FanOutWorkload: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fanout",
        abstract: "K live subscribers, one publisher at a target rate: latency from publishing to delivery.")

    @OptionGroup var target: Target
    @Option(name: .customShort("k"), help: "Live subscribers.") var subscribers = 16
    @Option(name: .customShort("r"), help: "Events per second published.") var rate = 50_000
    @Option(name: .customShort("n"), help: "Events in all.") var events = 200_000
    @Option(name: .customShort("s"), help: "Data bytes per event.") var size = 100

    func run() async throws {
        let collection = target.collection ?? "bench-\(UUID().uuidString.prefix(8))"
        let (latency, seconds) = try await withServer(target) { host, port in
            let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
            defer { group.shutdownGracefully { _ in } }
            var subscribedFutures: [EventLoopFuture<Void>] = []
            var doneFutures: [EventLoopFuture<Histogram<UInt64>>] = []
            let connect = target.connectLine(collection)
            var subscribe = ByteBuffer()
            subscribe.writeSubscribe(Query(live: true, offset: 0, limit: UInt64(events)))
            let subscribeLine = subscribe
            for _ in 0..<subscribers {
                let subscribed = group.next().makePromise(of: Void.self)
                let done = group.next().makePromise(of: Histogram<UInt64>.self)
                subscribedFutures.append(subscribed.futureResult)
                doneFutures.append(done.futureResult)
                try await connectDriver(host: host, port: port, group: group) {
                    LiveSubscriberDriver(connectLine: connect, subscribeLine: subscribeLine, subscribed: subscribed, done: done)
                }
            }
            for future in subscribedFutures { try await future.get() }
            let started = monotonicNanoseconds()
            let published = group.next().makePromise(of: Void.self)
            try await connectDriver(host: host, port: port, group: group) {
                PacedPublisherDriver(connectLine: connect, total: events, rate: rate, size: size, done: published)
            }
            try await published.futureResult.get()
            var merged = Histogram<UInt64>(highestTrackableValue: 60_000_000_000)
            for future in doneFutures { merged.add(try await future.get()) }
            return (merged, Double(monotonicNanoseconds() - started) / 1e9)
        }
        report(workload: "fanout", parameters: ["subscribers": subscribers, "rate": rate, "events": events, "size": size],
               events: events * subscribers, seconds: seconds, bytesPerEvent: Double(size + 40), latency: latency,
               json: target.json)
    }
}

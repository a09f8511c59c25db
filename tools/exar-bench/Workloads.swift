import ArgumentParser
import ExarModel
import ExarNet
import Foundation
import Histogram
import NIOCore
import NIOPosix

struct PublishWorkload: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "publish", abstract: "Publish N events of S bytes over C connections, P in flight each.")

    @OptionGroup var target: Target
    @Option(name: .customShort("n"), help: "Events in all.") var events = 200_000
    @Option(name: .customShort("s"), help: "Data bytes per event.") var size = 100
    @Option(name: .customShort("c"), help: "Connections.") var connections = 50
    @Option(name: .customShort("p"), help: "Publishes in flight per connection.") var pipeline = 16
    @Option(help: "Tags are drawn from this many (one per connection, round robin).") var tags = 4
    @Option(help: "Also run the same load against a peer started on loopback and print the ratio (redis: XADD; nats: JetStream publish with acks).")
    var peer: String?
    @Flag(help: "Sync before acknowledging: the private exar-db with sync = always, redis with appendfsync always.")
    var durable = false

    func validate() throws {
        guard events > 0, size >= 0, connections > 0, pipeline > 0 else { throw ValidationError("counts must be positive") }
        if let peer, peer != "redis", peer != "nats" { throw ValidationError("unknown peer \(peer): redis or nats") }
    }

    func run() async throws {
        let collection = target.collection ?? "bench-\(UUID().uuidString.prefix(8))"
        let meter = ProgressMeter.make("exar-db publish", total: events, enabled: !target.json)
        let sync = durable ? "always" : "none"
        let (histogram, seconds) = try await withServer(target, sync: sync) { host, port in
            try await runPublish(host: host, port: port, target: target, collection: collection, events: events,
                                 size: size, connections: connections, pipeline: pipeline, tags: tags, progress: meter)
        }
        meter?.finish()
        let parameters = ["events": events, "size": size, "connections": connections, "pipeline": pipeline]
        let exar = Summary(system: "exar-db", workload: "publish", parameters: parameters, events: events, seconds: seconds,
                           bytesPerEvent: Double(size + 30), latency: histogram)
        var result: PeerResult?
        if peer == "redis" {
            let server = try RedisProcess(durable: durable)
            defer { server.stop() }
            let redisMeter = ProgressMeter.make("redis XADD     ", total: events, enabled: !target.json)
            let (latency, redisSeconds) = try await runRedisXAdd(port: server.port, key: "bench", events: events, size: size,
                                                                 connections: connections, pipeline: pipeline, progress: redisMeter)
            redisMeter?.finish()
            result = PeerResult(name: "redis", summary: Summary(
                system: "redis (XADD)", workload: "publish", parameters: parameters, events: events,
                seconds: redisSeconds, bytesPerEvent: Double(size + 30), latency: latency), durability: Durability.redis(durable: durable))
        } else if peer == "nats" {
            let server = try NatsProcess()
            defer { server.stop() }
            let natsMeter = ProgressMeter.make("nats publish   ", total: events, enabled: !target.json)
            let (latency, natsSeconds) = try await runNatsPublish(port: server.port, events: events, size: size,
                                                                  connections: connections, pipeline: pipeline, progress: natsMeter)
            natsMeter?.finish()
            result = PeerResult(name: "nats", summary: Summary(
                system: "nats (JetStream PUB, acked)", workload: "publish", parameters: parameters, events: events,
                seconds: natsSeconds, bytesPerEvent: Double(size + 30), latency: latency), durability: NatsProcess.durability)
        }
        output(exar, peer: result, exarDurability: Durability.exar(sync: sync, external: target.port != nil), json: target.json)
    }
}

struct CatchUpWorkload: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "catchup", abstract: "Publish M events, then read them back with one non-live subscription.")

    @OptionGroup var target: Target
    @Option(name: .customShort("n"), help: "Events to publish, then read.") var events = 1_000_000
    @Option(name: .customShort("s"), help: "Data bytes per event.") var size = 100
    @Option(help: "Read only events with this tag (tags are tag0...tag3, so about a quarter match).") var tag: String?
    @Option(help: "Also read the same number of entries from a peer and print the ratio (redis: XRANGE pages; nats: a JetStream push consumer).")
    var peer: String?

    func validate() throws {
        if let peer, peer != "redis", peer != "nats" { throw ValidationError("unknown peer \(peer): redis or nats") }
        if peer == "nats", tag != nil { throw ValidationError("--tag is for exar-db and redis alone") }
    }

    func run() async throws {
        let collection = target.collection ?? "bench-\(UUID().uuidString.prefix(8))"
        let result = try await withServer(target) { host, port in
            let loading = ProgressMeter.make("exar-db load   ", total: events, enabled: !target.json)
            _ = try await runPublish(host: host, port: port, target: target, collection: collection, events: events,
                                     size: size, connections: 4, pipeline: 64, tags: 4, progress: loading)
            loading?.finish()
            let reading = ProgressMeter.make("exar-db read   ", total: tag == nil ? events : events / 4, enabled: !target.json)
            defer { reading?.finish() }
            var subscribe = ByteBuffer()
            subscribe.writeSubscribe(Query(live: false, offset: 0, tag: tag))
            return try await runExarCatchUp(host: host, port: port, connect: Array(target.connectLine(collection).readableBytesView),
                                            subscribe: Array(subscribe.readableBytesView), progress: reading)
        }
        let seconds = Double(result.nanoseconds) / 1e9
        let parameters = ["events": events, "size": size, "tagged": tag == nil ? 0 : 1]
        let exar = Summary(system: "exar-db", workload: "catchup", parameters: parameters, events: result.events,
                           seconds: seconds, bytesPerEvent: result.events > 0 ? Double(result.bytes) / Double(result.events) : 0,
                           latency: nil)
        var peerResult: PeerResult?
        if peer == "redis" {
            let server = try RedisProcess()
            defer { server.stop() }
            _ = try await runRedisXAdd(port: server.port, key: "bench", events: events, size: size, connections: 4, pipeline: 64)
            let read = try await runRedisXRange(port: server.port, key: "bench")
            peerResult = PeerResult(name: "redis", summary: Summary(
                system: "redis (XRANGE)", workload: "catchup", parameters: parameters, events: read.events,
                seconds: Double(read.nanoseconds) / 1e9,
                bytesPerEvent: read.events > 0 ? Double(read.bytes) / Double(read.events) : 0, latency: nil),
                durability: Durability.redis(durable: false))
        } else if peer == "nats" {
            let server = try NatsProcess()
            defer { server.stop() }
            _ = try await runNatsPublish(port: server.port, events: events, size: size, connections: 4, pipeline: 64)
            let read = try await runNatsCatchUp(port: server.port, events: events)
            peerResult = PeerResult(name: "nats", summary: Summary(
                system: "nats (push consumer)", workload: "catchup", parameters: parameters, events: read.events,
                seconds: Double(read.nanoseconds) / 1e9,
                bytesPerEvent: read.events > 0 ? Double(read.bytes) / Double(read.events) : 0, latency: nil),
                durability: NatsProcess.durability)
        }
        output(exar, peer: peerResult, exarDurability: Durability.exar(sync: "none", external: target.port != nil), json: target.json)
    }
}

import ArgumentParser
import ExarModel
import ExarNet
import Foundation
import Histogram
import NIOCore
import NIOPosix

struct FanOutWorkload: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fanout",
        abstract: "K live subscribers, one publisher at a target rate: latency from publishing to delivery.",
        discussion: """
            With --collections M the subscribers are spread over M collections (subscriber i on \
            collection i mod M) and the publisher sends its events to them in turn: each subscriber \
            gets N/M events, and -r is the total rate over all of them.
            """)

    @OptionGroup var target: Target
    @Option(name: .customShort("k"), help: "Live subscribers.") var subscribers = 16
    @Option(name: .customShort("r"), help: "Events per second published.") var rate = 50_000
    @Option(name: .customShort("n"), help: "Events in all.") var events = 200_000
    @Option(name: .customShort("s"), help: "Data bytes per event.") var size = 100
    @Option(help: "Collections the subscribers are spread over (exar-db only).") var collections = 1
    @Option(help: "Also run the same fan-out against a peer started on loopback (redis: XREAD BLOCK readers, XADD publisher).")
    var peer: String?

    func validate() throws {
        guard subscribers > 0, rate > 0, events > 0, size >= 0 else { throw ValidationError("counts must be positive") }
        if let peer, peer != "redis" { throw ValidationError("unknown peer \(peer): only redis") }
        guard collections > 0, events % collections == 0 else {
            throw ValidationError("--collections must be positive and divide -n")
        }
        if collections > 1, peer != nil { throw ValidationError("--collections is for exar-db alone, not with --peer") }
    }

    func run() async throws {
        let collection = target.collection ?? "bench-\(UUID().uuidString.prefix(8))"
        let names = collections == 1 ? [collection] : (0..<collections).map { "\(collection)-\($0)" }
        let perSubscriber = events / collections
        let delivered = perSubscriber * subscribers
        let meter = ProgressMeter.make("exar-db fan-out", total: delivered, enabled: !target.json)
        let (latency, seconds) = try await withServer(target) { host, port in
            var subscribe = ByteBuffer()
            subscribe.writeSubscribe(Query(live: true, offset: 0, limit: UInt64(perSubscriber)))
            let sessions = (0..<subscribers).map { number in
                ExarLiveSession(connect: Array(target.connectLine(names[number % names.count]).readableBytesView),
                                subscribe: Array(subscribe.readableBytesView))
            }
            let connect = target.connectLine(names[0])
            let readers = try await startLiveSessions(host: host, port: port, sessions: sessions, progress: meter)
            let started = monotonicNanoseconds()
            let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
            defer { group.shutdownGracefully { _ in } }
            let published = group.next().makePromise(of: Void.self)
            try await connectDriver(host: host, port: port, group: group) {
                PacedPublisherDriver(peer: .exar(connectLine: connect), total: events, rate: rate, size: size,
                                     collections: names, done: published)
            }
            try await published.futureResult.get()
            var merged = Histogram<UInt64>(highestTrackableValue: 60_000_000_000)
            for session in try await readers.value { merged.add(session.latency) }
            return (merged, Double(monotonicNanoseconds() - started) / 1e9)
        }
        meter?.finish()
        var parameters = ["subscribers": subscribers, "rate": rate, "events": events, "size": size]
        if collections > 1 { parameters["collections"] = collections }
        let exar = Summary(system: "exar-db", workload: "fanout", parameters: parameters, events: delivered,
                           seconds: seconds, bytesPerEvent: Double(size + 40), latency: latency)
        var redis: PeerResult?
        if peer == "redis" {
            let server = try RedisProcess()
            defer { server.stop() }
            let redisMeter = ProgressMeter.make("redis fan-out  ", total: events * subscribers, enabled: !target.json)
            let (redisLatency, redisSeconds) = try await runRedisFanOut(
                port: server.port, key: "fanout", subscribers: subscribers, rate: rate, events: events, size: size,
                progress: redisMeter)
            redisMeter?.finish()
            redis = PeerResult(name: "redis", summary: Summary(
                system: "redis (XREAD BLOCK)", workload: "fanout", parameters: parameters,
                events: events * subscribers, seconds: redisSeconds, bytesPerEvent: Double(size + 40),
                latency: redisLatency), durability: Durability.redis(durable: false))
        }
        output(exar, peer: redis, exarDurability: Durability.exar(sync: "none", external: target.port != nil),
               json: target.json)
    }
}

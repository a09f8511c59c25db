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
        abstract: "K live subscribers, one publisher at a target rate: latency from publishing to delivery.")

    @OptionGroup var target: Target
    @Option(name: .customShort("k"), help: "Live subscribers.") var subscribers = 16
    @Option(name: .customShort("r"), help: "Events per second published.") var rate = 50_000
    @Option(name: .customShort("n"), help: "Events in all.") var events = 200_000
    @Option(name: .customShort("s"), help: "Data bytes per event.") var size = 100
    @Option(help: "Also run the same fan-out against a peer started on loopback (redis: XREAD BLOCK readers, XADD publisher).")
    var peer: String?

    func validate() throws {
        guard subscribers > 0, rate > 0, events > 0, size >= 0 else { throw ValidationError("counts must be positive") }
        if let peer, peer != "redis" { throw ValidationError("unknown peer \(peer): only redis") }
    }

    func run() async throws {
        let collection = target.collection ?? "bench-\(UUID().uuidString.prefix(8))"
        let meter = ProgressMeter.make("exar-db fan-out", total: events * subscribers, enabled: !target.json)
        let (latency, seconds) = try await withServer(target) { host, port in
            var subscribe = ByteBuffer()
            subscribe.writeSubscribe(Query(live: true, offset: 0, limit: UInt64(events)))
            let connect = target.connectLine(collection)
            let session = ExarLiveSession(connect: Array(connect.readableBytesView), subscribe: Array(subscribe.readableBytesView))
            let readers = try await startLiveSessions(host: host, port: port, sessions: Array(repeating: session, count: subscribers),
                                                      progress: meter)
            let started = monotonicNanoseconds()
            let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
            defer { group.shutdownGracefully { _ in } }
            let published = group.next().makePromise(of: Void.self)
            try await connectDriver(host: host, port: port, group: group) {
                PacedPublisherDriver(peer: .exar(connectLine: connect), total: events, rate: rate, size: size, done: published)
            }
            try await published.futureResult.get()
            var merged = Histogram<UInt64>(highestTrackableValue: 60_000_000_000)
            for session in try await readers.value { merged.add(session.latency) }
            return (merged, Double(monotonicNanoseconds() - started) / 1e9)
        }
        meter?.finish()
        let parameters = ["subscribers": subscribers, "rate": rate, "events": events, "size": size]
        let exar = Summary(system: "exar-db", workload: "fanout", parameters: parameters, events: events * subscribers,
                           seconds: seconds, bytesPerEvent: Double(size + 40), latency: latency)
        var redis: Summary?
        if peer == "redis" {
            let server = try RedisProcess()
            defer { server.stop() }
            let redisMeter = ProgressMeter.make("redis fan-out  ", total: events * subscribers, enabled: !target.json)
            let (redisLatency, redisSeconds) = try await runRedisFanOut(
                port: server.port, key: "fanout", subscribers: subscribers, rate: rate, events: events, size: size,
                progress: redisMeter)
            redisMeter?.finish()
            redis = Summary(system: "redis (XREAD BLOCK)", workload: "fanout", parameters: parameters,
                            events: events * subscribers, seconds: redisSeconds, bytesPerEvent: Double(size + 40),
                            latency: redisLatency)
        }
        output(exar, peer: redis, json: target.json)
    }
}

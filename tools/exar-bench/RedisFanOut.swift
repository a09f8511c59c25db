import ExarNet
import Histogram
import NIOCore
import NIOPosix

/// The fan-out workload against Redis: K `XREAD BLOCK` readers, one paced `XADD` publisher.
func runRedisFanOut(port: Int, key: String, subscribers: Int, rate: Int, events: Int, size: Int,
                    progress: ProgressMeter?) async throws -> (Histogram<UInt64>, Double) {
    let readers = try await startLiveSessions(
        host: "127.0.0.1", port: port, sessions: Array(repeating: RedisLiveSession(key: key, total: events), count: subscribers),
        progress: progress)
    let started = monotonicNanoseconds()
    let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    defer { group.shutdownGracefully { _ in } }
    let published = group.next().makePromise(of: Void.self)
    try await connectRedisDriver(port: port, group: group) {
        PacedPublisherDriver(peer: .redis(key: key), total: events, rate: rate, size: size, done: published)
    }
    try await published.futureResult.get()
    var merged = Histogram<UInt64>(highestTrackableValue: 60_000_000_000)
    for session in try await readers.value { merged.add(session.latency) }
    return (merged, Double(monotonicNanoseconds() - started) / 1e9)
}

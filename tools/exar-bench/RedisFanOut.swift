import ExarNet
import Histogram
import NIOCore
import NIOPosix

/// A live reader of the Redis side of the fan-out workload: `XREAD BLOCK 0` from the last id it
/// saw, recording per entry the time from the publisher's send (carried in the payload) to here.
final class RedisXReadSubscriberDriver: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let key: String
    private let total: Int
    private let subscribed: EventLoopPromise<Void>
    private let done: EventLoopPromise<Histogram<UInt64>>
    private let progress: ProgressMeter?
    private var histogram = Histogram<UInt64>(highestTrackableValue: 60_000_000_000)
    private var lastId = "0-0"
    private var received = 0
    private var headerLinesLeft = 0
    private var walk = RespEntryWalk()

    init(key: String, total: Int, subscribed: EventLoopPromise<Void>, done: EventLoopPromise<Histogram<UInt64>>,
         progress: ProgressMeter?) {
        self.key = key
        self.total = total
        self.subscribed = subscribed
        self.done = done
        self.progress = progress
    }

    func channelActive(context: ChannelHandlerContext) {
        // From 0-0 on a new stream: nothing published after this can be missed.
        request(context)
        subscribed.succeed(())
    }

    private func request(_ context: ChannelHandlerContext) {
        headerLinesLeft = 5  // *1, *2, $<n>, <key>, *<count>
        context.writeAndFlush(wrapOutboundOut(respCommand(["XREAD", "COUNT", "10000", "BLOCK", "0", "STREAMS", key, lastId])),
                              promise: nil)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let line = unwrapInboundIn(data)
        let now = monotonicNanoseconds()
        if headerLinesLeft > 0 {
            if line.readableBytesView.first == UInt8(ascii: "-") {
                done.fail(BenchError("redis answered \(String(buffer: line))"))
                context.close(promise: nil)
                return
            }
            headerLinesLeft -= 1
            if headerLinesLeft == 0 {
                walk.start(entries: Int(String(buffer: line).dropFirst()) ?? 0)
                if walk.isDone { request(context) }
            }
            return
        }
        switch walk.take() {
        case .id:
            lastId = String(buffer: line)
        case .payload:
            received += 1
            progress?.advance()
            var sent: UInt64 = 0
            for byte in line.readableBytesView {
                guard byte >= 48 && byte <= 57 else { break }
                sent = sent * 10 + UInt64(byte - 48)
            }
            if sent > 0 && now > sent { histogram.record(now - sent) }
        case .other:
            break
        }
        if walk.isDone {
            if received >= total {
                done.succeed(histogram)
                context.close(promise: nil)
            } else {
                request(context)
            }
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        subscribed.fail(BenchError("redis subscriber closed early"))
        done.fail(BenchError("redis subscriber closed after \(received) of \(total) entries"))
    }
}

/// The fan-out workload against Redis: K `XREAD BLOCK` readers, one paced `XADD` publisher.
func runRedisFanOut(port: Int, key: String, subscribers: Int, rate: Int, events: Int, size: Int,
                    progress: ProgressMeter?) async throws -> (Histogram<UInt64>, Double) {
    let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    defer { group.shutdownGracefully { _ in } }
    var subscribedFutures: [EventLoopFuture<Void>] = []
    var doneFutures: [EventLoopFuture<Histogram<UInt64>>] = []
    for _ in 0..<subscribers {
        let subscribed = group.next().makePromise(of: Void.self)
        let done = group.next().makePromise(of: Histogram<UInt64>.self)
        subscribedFutures.append(subscribed.futureResult)
        doneFutures.append(done.futureResult)
        try await connectRedisDriver(port: port, group: group) {
            RedisXReadSubscriberDriver(key: key, total: events, subscribed: subscribed, done: done, progress: progress)
        }
    }
    for future in subscribedFutures { try await future.get() }
    let started = monotonicNanoseconds()
    let published = group.next().makePromise(of: Void.self)
    try await connectRedisDriver(port: port, group: group) {
        PacedPublisherDriver(peer: .redis(key: key), total: events, rate: rate, size: size, done: published)
    }
    try await published.futureResult.get()
    var merged = Histogram<UInt64>(highestTrackableValue: 60_000_000_000)
    for future in doneFutures { merged.add(try await future.get()) }
    return (merged, Double(monotonicNanoseconds() - started) / 1e9)
}

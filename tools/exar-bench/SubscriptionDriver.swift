import ExarNet
import Histogram
import NIOCore

/// What a subscription driver keeps of the events it reads.
protocol StreamTally {
    associatedtype Result: Sendable
    init()
    /// One `Event` line, read at `now` (monotonic ns).
    mutating func record(_ line: ByteBuffer, at now: UInt64)
    /// The figures once the stream ended, `nanoseconds` after the subscription was sent.
    func result(nanoseconds: UInt64) -> Result
}

/// Counts the events and their bytes (catch-up reads, live delivery in the mixed workload).
struct EventCount: StreamTally {
    private var events = 0
    private var bytes = 0

    mutating func record(_ line: ByteBuffer, at now: UInt64) {
        events += 1
        bytes += line.readableBytes + 1
    }

    func result(nanoseconds: UInt64) -> (events: Int, bytes: Int, nanoseconds: UInt64) {
        (events, bytes, nanoseconds)
    }
}

/// Connects, subscribes, and tallies the events until the stream ends (`EndOfEventStream`, or
/// the limit of a live subscription reached).
final class SubscriptionDriver<Tally: StreamTally>: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let connectLine: ByteBuffer
    private let subscribeLine: ByteBuffer
    private let subscribed: EventLoopPromise<Void>?
    private let done: EventLoopPromise<Tally.Result>
    private let progress: ProgressMeter?
    private var tally = Tally()
    private var state = 0  // 0 connecting, 1 subscribing, 2 streaming
    private var received = 0
    private var started: UInt64 = 0

    /// - Parameter subscribed: told once the server answered `Subscribed`.
    init(connectLine: ByteBuffer, subscribeLine: ByteBuffer, subscribed: EventLoopPromise<Void>? = nil,
         done: EventLoopPromise<Tally.Result>, progress: ProgressMeter? = nil) {
        self.connectLine = connectLine
        self.subscribeLine = subscribeLine
        self.subscribed = subscribed
        self.done = done
        self.progress = progress
    }

    func channelActive(context: ChannelHandlerContext) {
        context.writeAndFlush(wrapOutboundOut(connectLine), promise: nil)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let line = unwrapInboundIn(data)
        switch state {
        case 0:
            state = 1
            started = monotonicNanoseconds()
            context.writeAndFlush(wrapOutboundOut(subscribeLine), promise: nil)
        case 1:
            state = 2
            subscribed?.succeed(())
        default:
            let now = monotonicNanoseconds()
            guard line.readableBytesView.starts(with: "Event\t".utf8) else {
                done.succeed(tally.result(nanoseconds: now - started))
                context.close(promise: nil)
                return
            }
            tally.record(line, at: now)
            received += 1
            progress?.advance()
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        subscribed?.fail(BenchError("subscriber closed before subscribing"))
        done.fail(BenchError("connection closed after \(received) events"))
    }
}

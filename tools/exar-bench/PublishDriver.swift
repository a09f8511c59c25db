import ExarNet
import Histogram
import NIOCore
import NIOPosix

/// One connection of the publish workload: connects, keeps `pipeline` Publish lines in flight
/// until `total` are answered, and records each one's latency (send to `Published`).
final class PublishDriver: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let connectLine: ByteBuffer
    private let publishLine: ByteBuffer
    private let total: Int
    private let pipeline: Int
    private let done: EventLoopPromise<Histogram<UInt64>>
    private var histogram = Histogram<UInt64>(highestTrackableValue: 60_000_000_000)
    private var sendTimes: [UInt64]
    private var head = 0
    private var sent = 0
    private var answered = 0
    private var connected = false
    private var owed = 0

    init(connectLine: ByteBuffer, publishLine: ByteBuffer, total: Int, pipeline: Int,
         done: EventLoopPromise<Histogram<UInt64>>) {
        self.connectLine = connectLine
        self.publishLine = publishLine
        self.total = total
        self.pipeline = max(1, pipeline)
        self.done = done
        sendTimes = Array(repeating: 0, count: self.pipeline)
    }

    func channelActive(context: ChannelHandlerContext) {
        context.writeAndFlush(wrapOutboundOut(connectLine), promise: nil)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let line = unwrapInboundIn(data)
        let now = monotonicNanoseconds()
        guard connected else {
            guard line.readableBytesView.elementsEqual("Connected".utf8) else {
                fail(context, "connect answered: \(String(buffer: line))")
                return
            }
            connected = true
            owed = min(pipeline, total)
            return
        }
        guard line.readableBytesView.starts(with: "Published\t".utf8) else {
            fail(context, "publish answered: \(String(buffer: line))")
            return
        }
        // Answers come in order: the oldest send time is this answer's.
        let started = sendTimes[head % pipeline]
        head += 1
        histogram.record(now - started)
        answered += 1
        if sent + owed < total { owed += 1 }
        if answered == total {
            done.succeed(histogram)
            context.close(promise: nil)
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        guard owed > 0 else { return }
        var out = context.channel.allocator.buffer(capacity: owed * publishLine.readableBytes)
        let now = monotonicNanoseconds()
        for _ in 0..<owed {
            sendTimes[sent % pipeline] = now
            out.writeImmutableBuffer(publishLine)
            sent += 1
        }
        owed = 0
        context.writeAndFlush(wrapOutboundOut(out), promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        done.fail(BenchError("connection closed after \(answered) of \(total) answers"))
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        fail(context, "\(error)")
    }

    private func fail(_ context: ChannelHandlerContext, _ message: String) {
        done.fail(BenchError(message))
        context.close(promise: nil)
    }
}

/// A benchmark failure, said plainly.
struct BenchError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

func monotonicNanoseconds() -> UInt64 {
    var spec = timespec()
    clock_gettime(CLOCK_MONOTONIC, &spec)
    return UInt64(spec.tv_sec) * 1_000_000_000 + UInt64(spec.tv_nsec)
}

#if canImport(Glibc)
import Glibc
#endif

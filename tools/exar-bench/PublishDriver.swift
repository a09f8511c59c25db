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
    private let done: EventLoopPromise<Histogram<UInt64>>
    private var window: PipelineWindow
    private var connected = false
    private let progress: ProgressMeter?

    init(connectLine: ByteBuffer, publishLine: ByteBuffer, total: Int, pipeline: Int,
         done: EventLoopPromise<Histogram<UInt64>>, progress: ProgressMeter? = nil) {
        self.connectLine = connectLine
        self.publishLine = publishLine
        self.done = done
        self.progress = progress
        window = PipelineWindow(total: total, depth: pipeline)
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
            window.start()
            return
        }
        guard line.readableBytesView.starts(with: "Published\t".utf8) else {
            fail(context, "publish answered: \(String(buffer: line))")
            return
        }
        progress?.advance()
        if window.answer(at: now) {
            done.succeed(window.histogram)
            context.close(promise: nil)
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        if let out = window.due(publishLine, allocator: context.channel.allocator) {
            context.writeAndFlush(wrapOutboundOut(out), promise: nil)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        done.fail(BenchError("connection closed after \(window.answered) of \(window.total) answers"))
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

import ExarNet
import NIOCore

/// Subscribes non-live and counts the events until `EndOfEventStream`.
final class CatchUpDriver: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let connectLine: ByteBuffer
    private let subscribeLine: ByteBuffer
    private let done: EventLoopPromise<(events: Int, bytes: Int, nanoseconds: UInt64)>
    private var state = 0  // 0 connecting, 1 subscribing, 2 streaming
    private var events = 0
    private var bytes = 0
    private var started: UInt64 = 0
    private let progress: ProgressMeter?

    init(connectLine: ByteBuffer, subscribeLine: ByteBuffer,
         done: EventLoopPromise<(events: Int, bytes: Int, nanoseconds: UInt64)>, progress: ProgressMeter? = nil) {
        self.progress = progress
        self.connectLine = connectLine
        self.subscribeLine = subscribeLine
        self.done = done
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
        default:
            if line.readableBytesView.starts(with: "Event\t".utf8) {
                events += 1
                bytes += line.readableBytes + 1
                progress?.advance()
            } else {
                done.succeed((events, bytes, monotonicNanoseconds() - started))
                context.close(promise: nil)
            }
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        done.fail(BenchError("connection closed after \(events) events"))
    }
}

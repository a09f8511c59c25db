import ExarModel
import ExarNet
import Logging
import NIOCore

/// Serves a connection over `max_connections`: answers
/// `Error\tIoError\tConnectionRefused\t...` at once and closes once the client's first bytes are
/// read (so the close does not reset the answer away), or after a short grace period.
final class RefusingHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let limit: Int
    private let logger: Logger
    private var answered: EventLoopFuture<Void>?

    /// How long a refused client may take to send its first line before the close.
    static let gracePeriod = TimeAmount.seconds(2)

    init(limit: Int, logger: Logger) {
        self.limit = limit
        self.logger = logger
    }

    func channelActive(context: ChannelHandlerContext) {
        logger.warning("refusing a connection from \(context.remoteAddress.map { "\($0)" } ?? "?"): max_connections (\(limit)) reached")
        var out = context.channel.allocator.buffer(capacity: 96)
        out.writeError(.io(.connectionRefused, "too many connections (max_connections = \(limit))"))
        answered = context.writeAndFlush(wrapOutboundOut(out))
        let channel = context.channel
        context.eventLoop.scheduleTask(in: Self.gracePeriod) { channel.close(promise: nil) }
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        // Whatever the client sent is dropped; it has its answer.
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        let channel = context.channel
        if let answered {
            answered.whenComplete { _ in channel.close(promise: nil) }
        } else {
            channel.close(promise: nil)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}

import ExarModel
import ExarNet
import NIOCore

/// Matches answers to requests, in order, feeds a running subscription's buffer, and withholds
/// reads from the socket while that buffer is full.
final class ClientHandler: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    enum Expectation {
        /// This many answers, handed over together.
        case answers(Int)
        /// `Subscribed`, after which the events go to this buffer.
        case subscription(SubscriptionBuffer)
    }

    private enum Waiting {
        case request(expectation: Expectation, promise: EventLoopPromise<[ServerMessage]>)
        /// An `Unsubscribe` that reached the server after its stream had ended on its own: then, and
        /// only then, it is answered `unexpected TCP message`, at this place in the order.
        case lateUnsubscribe
    }

    private enum Stream {
        case none
        case running(SubscriptionBuffer)
        /// Unsubscribed: the events still coming are dropped up to the stream's end.
        case draining
    }

    private var waiting = CircularBuffer<Waiting>()
    /// The answers so far of the first waiting request (kept apart, so that appending does not copy).
    private var answers: [ServerMessage] = []
    private var stream = Stream.none
    private var readWithheld = false
    private var context: ChannelHandlerContext?
    private var failure: (any Error)?

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil  // the context holds this handler
    }

    // MARK: Requests

    func send(_ lines: ByteBuffer, expecting expectation: Expectation, promise: EventLoopPromise<[ServerMessage]>) {
        guard let context, failure == nil else {
            promise.fail(failure ?? ExarError.io(.notConnected, "connection closed"))
            return
        }
        waiting.append(.request(expectation: expectation, promise: promise))
        context.writeAndFlush(wrapOutboundOut(lines), promise: nil)
    }

    /// The consumer of `buffer` went away: unsubscribe if its stream still runs.
    func subscriptionAbandoned(_ buffer: SubscriptionBuffer) {
        guard case .running(let running) = stream, running === buffer, let context, failure == nil else { return }
        stream = .draining
        waiting.append(.lateUnsubscribe)
        var line = context.channel.allocator.buffer(capacity: 12)
        line.writeUnsubscribe()
        context.writeAndFlush(wrapOutboundOut(line), promise: nil)
        readIfWithheld(context)
    }

    /// An `Ack` of the group stream feeding `buffer`, while it runs (the server answers nothing).
    func acknowledge(upTo id: UInt64, _ buffer: SubscriptionBuffer) {
        guard case .running(let running) = stream, running === buffer, let context, failure == nil else { return }
        var line = context.channel.allocator.buffer(capacity: 28)
        line.writeAck(id)
        context.writeAndFlush(wrapOutboundOut(line), promise: nil)
    }

    /// The consumer of `buffer` took it below its low watermark.
    func subscriptionHasRoom(_ buffer: SubscriptionBuffer) {
        guard case .running(let running) = stream, running === buffer, let context else { return }
        readIfWithheld(context)
    }

    // MARK: Reading

    func read(context: ChannelHandlerContext) {
        if case .running(let buffer) = stream, !buffer.wantsMore {
            readWithheld = true
            return
        }
        context.read()
    }

    private func readIfWithheld(_ context: ChannelHandlerContext) {
        guard readWithheld else { return }
        if case .running(let buffer) = stream, !buffer.wantsMore { return }
        readWithheld = false
        context.read()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let line = unwrapInboundIn(data)
        let message: ServerMessage
        do {
            message = try ServerMessage.parse(line)
        } catch {
            fail(error)
            context.close(promise: nil)
            return
        }
        switch stream {
        case .running(let buffer):
            switch message {
            case .event(let event):
                // A read that is under way still delivers its lines; `read` withholds the next one.
                buffer.yield(event, size: line.readableBytes + Self.eventOverhead)
                return
            case .endOfEventStream:
                endStream(context)
                buffer.finish()
                return
            case .error(let error):
                endStream(context)
                buffer.finish(throwing: error)
                return
            default:
                break
            }
        case .draining:
            switch message {
            case .event:
                return
            case .endOfEventStream, .error:
                endStream(context)
                return
            default:
                break
            }
        case .none:
            break
        }
        answer(message)
    }

    /// About what an `Event` costs in memory beyond its line's bytes (its strings and array).
    private static let eventOverhead = 64

    private func endStream(_ context: ChannelHandlerContext) {
        stream = .none
        readIfWithheld(context)
    }

    private func answer(_ message: ServerMessage) {
        while case .lateUnsubscribe = waiting.first {
            waiting.removeFirst()
            if message == Self.lateUnsubscribeAnswer { return }
        }
        guard case .request(let expectation, let promise) = waiting.first else { return }
        answers.append(message)
        switch expectation {
        case .answers(let count) where answers.count < count:
            return
        case .answers:
            break
        case .subscription(let buffer):
            if case .subscribed = message {
                stream = .running(buffer)
            } else {
                buffer.finish()
            }
        }
        waiting.removeFirst()
        let done = answers
        answers = []
        promise.succeed(done)
    }

    /// What the server answers an `Unsubscribe` without a running subscription. None of the
    /// requests this client sends on a connection that has subscribed gets this answer.
    private static let lateUnsubscribeAnswer = ServerMessage.error(.io(.invalidData, "unexpected TCP message"))

    // MARK: The end of the connection

    func channelInactive(context: ChannelHandlerContext) {
        fail(ExarError.io(.connectionReset, "connection closed"))
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        fail(error)
        context.close(promise: nil)
    }

    private func fail(_ error: any Error) {
        if failure == nil { failure = error }
        let requests = waiting
        waiting.removeAll()
        answers = []
        for case .request(let expectation, let promise) in requests {
            promise.fail(error)
            if case .subscription(let buffer) = expectation { buffer.finish(throwing: error) }
        }
        if case .running(let buffer) = stream { buffer.finish(throwing: error) }
        stream = .none
    }
}

import ExarModel
import ExarNet
import NIOCore
import NIOPosix

/// An async/await client of an Exar DB server, bound to one collection.
///
/// ```swift
/// let client = try await ExarClient.connect(collection: "orders")
/// let id = try await client.publish(Event(tags: ["created"], data: "{\"id\":7}"))
/// for try await event in try await client.subscribe(Query(live: true)) { print(event) }
/// ```
/// Requests may be issued from several tasks at once: they are pipelined on the one connection
/// and answered in order. While a subscription streams, the server handles no other request of
/// this connection (the protocol's rule): use a second client to publish meanwhile.
public final class ExarClient: Sendable {
    private let channel: any Channel
    private let handler: NIOLoopBound<ClientHandler>

    private init(channel: any Channel, handler: NIOLoopBound<ClientHandler>) {
        self.channel = channel
        self.handler = handler
    }

    /// Connects to a server and binds the connection to `collection`.
    /// - Throws: ``ExarError/authentication`` for wrong credentials, other ``ExarError``s as the
    ///   server answers, or the connection's error.
    public static func connect(
        host: String = "127.0.0.1", port: Int = 38580, collection: String, username: String? = nil,
        password: String? = nil, maxLineBytes: Int = 64 * 1024 * 1024
    ) async throws -> ExarClient {
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(
                        ByteToMessageHandler(LineFrameDecoder(maximumLineBytes: maxLineBytes)))
                    try channel.pipeline.syncOperations.addHandler(ClientHandler())
                }
            }
            .connect(host: host, port: port).get()
        let handler = try await channel.eventLoop.submit {
            NIOLoopBound(try channel.pipeline.syncOperations.handler(type: ClientHandler.self), eventLoop: channel.eventLoop)
        }.get()
        let client = ExarClient(channel: channel, handler: handler)
        var line = channel.allocator.buffer(capacity: 64)
        line.writeConnect(collection: collection, username: username, password: password)
        do {
            let answer = try await client.send(line, expecting: .single)
            guard case .connected = answer else { throw ExarError.connection("unexpected answer \(answer)") }
        } catch {
            try? await channel.close()
            throw error
        }
        return client
    }

    /// Publishes one event; returns its id.
    @discardableResult
    public func publish(_ event: Event) async throws -> UInt64 {
        var line = channel.allocator.buffer(capacity: 32 + event.data.utf8.count)
        line.writePublish(tags: event.tags, timestamp: event.timestamp, data: event.data)
        let answer = try await send(line, expecting: .single)
        guard case .published(let id) = answer else { throw ExarError.io(.invalidData, "unexpected answer \(answer)") }
        return id
    }

    /// Publishes events pipelined in one write; returns their ids in order.
    /// - Throws: the first error the server answered (events before it are stored).
    public func publish(_ events: [Event]) async throws -> [UInt64] {
        guard !events.isEmpty else { return [] }
        var line = channel.allocator.buffer(capacity: events.count * 64)
        for event in events {
            line.writePublish(tags: event.tags, timestamp: event.timestamp, data: event.data)
        }
        let answers = try await sendMany(line, count: events.count)
        var ids: [UInt64] = []
        ids.reserveCapacity(events.count)
        for answer in answers {
            switch answer {
            case .published(let id): ids.append(id)
            case .error(let error): throw error
            default: throw ExarError.io(.invalidData, "unexpected answer \(answer)")
            }
        }
        return ids
    }

    /// Subscribes; the events arrive through the returned sequence, which ends at the server's
    /// `EndOfEventStream`.
    public func subscribe(_ query: Query) async throws -> AsyncThrowingStream<Event, any Error> {
        var line = channel.allocator.buffer(capacity: 64)
        line.writeSubscribe(query)
        let (stream, continuation) = AsyncThrowingStream<Event, any Error>.makeStream()
        let answer = try await send(line, expecting: .stream(continuation))
        guard case .subscribed = answer else { throw ExarError.subscription("unexpected answer \(answer)") }
        return stream
    }

    /// Closes the connection.
    public func close() async {
        try? await channel.close()
    }

    private func send(_ line: ByteBuffer, expecting kind: ClientHandler.Expectation) async throws -> ServerMessage {
        let promise = channel.eventLoop.makePromise(of: [ServerMessage].self)
        let handler = self.handler
        channel.eventLoop.execute {
            handler.value.send(line, expecting: kind, count: 1, promise: promise)
        }
        let answers = try await promise.futureResult.get()
        if case .error(let error) = answers[0] { throw error }
        return answers[0]
    }

    private func sendMany(_ lines: ByteBuffer, count: Int) async throws -> [ServerMessage] {
        let promise = channel.eventLoop.makePromise(of: [ServerMessage].self)
        let handler = self.handler
        channel.eventLoop.execute {
            handler.value.send(lines, expecting: .single, count: count, promise: promise)
        }
        return try await promise.futureResult.get()
    }
}

/// Matches answers to requests, in order, and feeds a running subscription's events.
final class ClientHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    enum Expectation {
        case single
        case stream(AsyncThrowingStream<Event, any Error>.Continuation)
    }

    private struct Pending {
        let expectation: Expectation
        let count: Int
        var answers: [ServerMessage]
        let promise: EventLoopPromise<[ServerMessage]>
    }

    private var pending: [Pending] = []
    private var stream: AsyncThrowingStream<Event, any Error>.Continuation?
    private var context: ChannelHandlerContext?
    private var failure: (any Error)?

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil  // the context holds this handler
    }

    func send(_ line: ByteBuffer, expecting: Expectation, count: Int, promise: EventLoopPromise<[ServerMessage]>) {
        guard let context, failure == nil else {
            promise.fail(failure ?? ExarError.io(.notConnected, "connection closed"))
            return
        }
        pending.append(Pending(expectation: expecting, count: count, answers: [], promise: promise))
        context.writeAndFlush(wrapOutboundOut(line), promise: nil)
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
        if let stream {
            switch message {
            case .event(let event):
                stream.yield(event)
                return
            case .endOfEventStream:
                stream.finish()
                self.stream = nil
                return
            case .error(let error):
                stream.finish(throwing: error)
                self.stream = nil
                return
            default:
                break
            }
        }
        guard !pending.isEmpty else { return }
        pending[0].answers.append(message)
        if pending[0].answers.count == pending[0].count {
            let done = pending.removeFirst()
            if case .stream(let continuation) = done.expectation {
                if case .subscribed = message {
                    stream = continuation
                } else {
                    continuation.finish()
                }
            }
            done.promise.succeed(done.answers)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        fail(ExarError.io(.connectionReset, "connection closed by the server"))
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        fail(error)
        context.close(promise: nil)
    }

    private func fail(_ error: any Error) {
        if failure == nil { failure = error }
        let waiting = pending
        pending.removeAll()
        for request in waiting {
            request.promise.fail(error)
            if case .stream(let continuation) = request.expectation { continuation.finish(throwing: error) }
        }
        stream?.finish(throwing: error)
        stream = nil
    }
}

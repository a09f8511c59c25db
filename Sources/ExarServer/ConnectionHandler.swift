import ExarCore
import ExarModel
import ExarNet
import Dispatch
import Logging
import NIOCore

/// One client connection: frames the socket's bytes into lines and parses them in place, hands
/// each read burst of `Publish`es to the collection's writer in one call, answers in order,
/// flushes once per burst, and streams subscriptions with the channel's writability as demand.
///
/// The framing is done here rather than by a `ByteToMessageHandler` in front: one pass over each
/// read, with no pipeline hop per line.
final class ConnectionHandler: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    let database: Database
    let logger: Logger
    var decoder: LineFrameDecoder
    /// Bytes of an unfinished line, kept from earlier reads.
    var unframed: ByteBuffer?
    let batcher: PublishBatcher
    var machine: ConnectionStateMachine
    var collection: ExarCore.Collection?
    var context: ChannelHandlerContext?

    // The burst being gathered from the current read, and answered ones kept for reuse.
    var current = Burst()
    var spareBursts: [Burst] = []
    /// The buffer the answers are written into, reused (see `writeFinishedAnswers`).
    var answerBuffer: ByteBuffer?
    // Bursts handed over (or finished) whose answers are not written yet, oldest first.
    var bursts: [Burst] = []
    var burstsHead = 0
    // Lines that wait: behind a Connect/Subscribe that waits for earlier answers, or a stream.
    var waiting: [ByteBuffer] = []
    var waitingHead = 0
    var blocked = false
    var readPending = false
    var wroteSinceFlush = false
    var sink: StreamSink?
    /// Set when the input cannot be framed: close once every owed answer is written.
    var closingAfterAnswers = false
    /// A line over the limit, answered once the lines before it are handled.
    var framingError: LineTooLongError?
    var subscription: Subscription?

    /// Bursts in flight at once per connection before the server stops reading from it.
    static let maximumBurstsInFlight = 8

    init(database: Database, credentials: Credentials?, maxLineBytes: Int, maxLoginFailures: Int, logger: Logger,
         batcher: PublishBatcher) {
        self.database = database
        self.decoder = LineFrameDecoder(maximumLineBytes: maxLineBytes)
        self.logger = logger
        self.batcher = batcher
        self.machine = ConnectionStateMachine(credentials: credentials, maxLoginFailures: maxLoginFailures)
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
        // The subscription holds the sink, which holds this handler: end the cycle with the channel
        // (also when the stream's end could not reach this loop because it was shutting down).
        subscription?.cancel()
        subscription = nil
        sink = nil
    }

    func channelInactive(context: ChannelHandlerContext) {
        subscription?.cancel()
        subscription = nil
        context.fireChannelInactive()
    }

    // MARK: Inbound

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var buffer = unwrapInboundIn(data)
        // After a line that cannot be framed, the rest is dropped while the owed answers go out.
        guard framingError == nil && !closingAfterAnswers else { return }
        if var kept = unframed {
            unframed = nil
            kept.writeBuffer(&buffer)
            buffer = kept
        }
        while true {
            let line: ByteBuffer?
            do {
                line = try decoder.nextLine(&buffer)
            } catch {
                lineTooLong(error, context: context)
                return
            }
            guard let line else { break }
            if blocked || waitingHead < waiting.count {
                waiting.append(line)
            } else {
                handle(line, context: context)
            }
            if closingAfterAnswers { return }
        }
        if buffer.readableBytes > 0 {
            unframed = buffer
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        submitBurst()
        writeFinishedAnswers()
        flushIfNeeded(context)
    }

    /// The input cannot be framed: answered, then the connection closes.
    func lineTooLong(_ tooLong: LineTooLongError, context: ChannelHandlerContext) {
        unframed = nil
        if machine.isStreaming {
            closingAfterAnswers = true
            var out = context.channel.allocator.buffer(capacity: 96)
            out.writeError(tooLong.protocolError)
            let channel = context.channel
            context.writeAndFlush(wrapOutboundOut(out)).whenComplete { _ in channel.close(promise: nil) }
            return
        }
        // Answered in its place: after every line before it (some may still wait), then close.
        framingError = tooLong
        if !blocked && waitingHead == waiting.count {
            finishWithFramingError(context)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        logger.debug("connection error: \(error)")
        context.close(promise: nil)
    }

    /// Answers the unframable line after every owed answer; the connection closes once they are written.
    func finishWithFramingError(_ context: ChannelHandlerContext) {
        guard let error = framingError else { return }
        framingError = nil
        blocked = true
        closingAfterAnswers = true
        submitBurst()
        let final = Burst()
        final.slots = [.error(error.protocolError)]
        final.done = true
        bursts.append(final)
        writeFinishedAnswers()
        flushIfNeeded(context)
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        let writable = context.channel.isWritable
        if let sink {
            sink.writable.store(writable, ordering: .relaxed)
            if writable { resumeStreamIfPaused() }
        }
        context.fireChannelWritabilityChanged()
    }

    // MARK: Outbound: read pacing

    func read(context: ChannelHandlerContext) {
        if blocked || bursts.count - burstsHead >= Self.maximumBurstsInFlight {
            readPending = true
        } else {
            context.read()
        }
    }

    func resumeReading(_ context: ChannelHandlerContext) {
        if readPending && !blocked && bursts.count - burstsHead < Self.maximumBurstsInFlight {
            readPending = false
            context.read()
        }
    }

    // MARK: Handling one line

    func handle(_ line: ByteBuffer, context: ChannelHandlerContext) {
        let parsed = ClientRequest.parse(line)
        switch machine.receive(parsed) {
        case .publish(let publish):
            if let collection, publish.tags.count + publish.data.count > collection.configuration.maximumEventBytes {
                current.slots.append(.error(.validation("event of \(publish.tags.count + publish.data.count) bytes is larger than a segment can hold")))
                return
            }
            current.lines.append(line)
            current.fields.append(publish)
            current.slots.append(.published)
        case .answerError(let error):
            current.slots.append(.error(error))
        case .refuseLogin(let delay, let close):
            guard waitForEarlierAnswers(line) else { return }
            refuseLogin(afterMilliseconds: delay, close: close, context: context)
        case .connect(let name):
            guard waitForEarlierAnswers(line) else { return }
            if let open = database.openCollection(name) {
                connected(to: open, context: context)
                return
            }
            // Opening a collection may recover it from disk: do that off the event loop, and let
            // this connection's later lines wait meanwhile.
            blocked = true
            let database = self.database
            let handler = NIOLoopBound(self, eventLoop: context.eventLoop)
            let eventLoop = context.eventLoop
            DispatchQueue.global().async {
                let result = Result { () throws(ExarError) -> ExarCore.Collection in try database.collection(name) }
                eventLoop.execute {
                    handler.value.finishConnect(name, result)
                }
            }
        case .subscribe(let query):
            guard waitForEarlierAnswers(line), let collection else { return }
            var out = context.channel.allocator.buffer(capacity: 16)
            let sink = StreamSink(handler: self, eventLoop: context.eventLoop, allocator: context.channel.allocator)
            sink.writable.store(context.channel.isWritable, ordering: .relaxed)
            do {
                subscription = try collection.subscribe(query, sink: sink)
            } catch {
                out.writeError(clientFacing(error))
                write(out, context)
                return
            }
            self.sink = sink
            machine.streamStarted()
            blocked = true
            out.writeSubscribed()
            write(out, context)
            flushIfNeeded(context)
        }
    }

    func connected(to collection: ExarCore.Collection, context: ChannelHandlerContext) {
        self.collection = collection
        machine.connected()
        var out = context.channel.allocator.buffer(capacity: 16)
        out.writeConnected()
        write(out, context)
    }

    /// Answers wrong credentials late, reading nothing more from this connection meanwhile, and
    /// closes it after the last allowed failure: guessing costs time, and never another client's.
    func refuseLogin(afterMilliseconds delay: Int, close: Bool, context: ChannelHandlerContext) {
        blocked = true
        let handler = NIOLoopBound(self, eventLoop: context.eventLoop)
        context.eventLoop.scheduleTask(in: .milliseconds(Int64(delay))) {
            let handler = handler.value
            guard let context = handler.context else { return }
            var out = context.channel.allocator.buffer(capacity: 32)
            out.writeError(.authentication)
            if close {
                handler.logger.info("closing a connection after \(handler.machine.loginFailures) wrong logins")
                handler.closingAfterAnswers = true
                let channel = context.channel
                context.writeAndFlush(handler.wrapOutboundOut(out)).whenComplete { _ in channel.close(promise: nil) }
                return
            }
            handler.write(out, context)
            handler.blocked = false
            handler.processWaitingLines(context)
        }
    }

    func finishConnect(_ name: String, _ result: Result<ExarCore.Collection, ExarError>) {
        guard let context else { return }
        switch result {
        case .success(let collection):
            connected(to: collection, context: context)
        case .failure(let error):
            logger.info("connect to collection '\(name)' failed: \(error)")
            var out = context.channel.allocator.buffer(capacity: 32)
            out.writeError(clientFacing(error.wireKindOnlyForConnect))
            write(out, context)
        }
        blocked = false
        processWaitingLines(context)
    }

    /// A `Connect` or `Subscribe` is answered only after every earlier answer: if some are still
    /// owed, the line waits (and so do the lines after it).
    func waitForEarlierAnswers(_ line: ByteBuffer) -> Bool {
        submitBurst()
        writeFinishedAnswers()
        if burstsHead < bursts.count {
            blocked = true
            waiting.insert(line, at: waitingHead)
            return false
        }
        return true
    }

    /// Handles lines that waited, until one blocks again.
    func processWaitingLines(_ context: ChannelHandlerContext) {
        while !blocked && waitingHead < waiting.count {
            let line = waiting[waitingHead]
            waitingHead += 1
            handle(line, context: context)
        }
        if waitingHead == waiting.count {
            waiting.removeAll(keepingCapacity: true)
            waitingHead = 0
            if !blocked && framingError != nil {
                finishWithFramingError(context)
                return
            }
        }
        submitBurst()
        writeFinishedAnswers()
        flushIfNeeded(context)
        resumeReading(context)
    }
}

extension ConnectionStateMachine {
    var isStreaming: Bool { state == .streaming }
}

extension Error {
    /// The protocol's answer to a failed `Connect`: `ConnectionError` (details go to the log).
    fileprivate var wireKindOnlyForConnect: ExarError {
        if let error = self as? ExarError, case .io = error { return error }
        return .connection("")
    }
}

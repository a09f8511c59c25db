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
    /// The bound collection's lease: the database's cache keeps it open while the connection is bound.
    var lease: CollectionLease?
    var collection: ExarCore.Collection? { lease?.collection }
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
    /// The consumer group this connection is a member of, while its stream runs.
    var membership: GroupMembership?
    /// Bytes of the lines in `waiting` (each counted with a little overhead).
    var waitingBytes = 0
    /// The running stream was asked to end (`Unsubscribe`, or the input closed).
    var unsubscribeRequested = false
    /// The client closed its side (`shutdown(SHUT_WR)`): every line it sent is handled, every
    /// answer written, then the connection closes.
    var inputClosed = false

    /// Bursts in flight at once per connection before the server stops reading from it.
    static let maximumBurstsInFlight = 8
    /// Bytes of lines kept waiting behind a running stream before the server stops reading:
    /// reading goes on while a stream runs, so that an `Unsubscribe` is seen, but only this far.
    static let maximumWaitingBytes = 64 * 1024

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
        membership?.leave()
        membership = nil
        sink = nil
        lease = nil
    }

    func channelInactive(context: ChannelHandlerContext) {
        subscription?.cancel()
        subscription = nil
        membership?.leave()
        membership = nil
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
            receive(line, context: context)
            if closingAfterAnswers { return }
        }
        if buffer.readableBytes > 0 {
            unframed = buffer
        }
    }

    /// One framed line: handled now, or kept waiting in order. Behind a running stream an
    /// `Unsubscribe` ends it at once; the other lines are copied (so they do not hold on to whole
    /// read buffers) and wait, up to ``maximumWaitingBytes``.
    func receive(_ line: ByteBuffer, context: ChannelHandlerContext) {
        if machine.isStreaming {
            if !unsubscribeRequested && ClientRequest.isUnsubscribe(line) {
                unsubscribe()
                return
            }
            if let membership, ClientRequest.isAck(line) {
                acknowledge(line, membership, context: context)
                return
            }
            appendWaiting(context.channel.allocator.buffer(buffer: line))
        } else if blocked || waitingHead < waiting.count {
            appendWaiting(line)
        } else {
            handle(line, context: context)
        }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        guard let event = event as? ChannelEvent, event == .inputClosed else {
            context.fireUserInboundEventTriggered(event)
            return
        }
        // The client half-closed (or closed): a last line without its newline still counts; a
        // live stream ends once it has delivered what is stored now; then the owed answers go
        // out and the connection closes.
        inputClosed = true
        if framingError == nil && !closingAfterAnswers, let last = unframed.take(), last.readableBytes > 0 {
            receive(last, context: context)
        }
        if machine.isStreaming { endStreamForClosedInput() }
        submitBurst()
        writeFinishedAnswers()
        flushIfNeeded(context)
        closeIfInputDone(context)
    }

    /// After the client's input ended: closes once every line is handled and answered.
    func closeIfInputDone(_ context: ChannelHandlerContext) {
        guard inputClosed, !closingAfterAnswers, !blocked, !machine.isStreaming, waitingHead == waiting.count,
              burstsHead == bursts.count, current.slots.isEmpty, framingError == nil else { return }
        closingAfterAnswers = true
        wroteSinceFlush = false
        let channel = context.channel
        context.writeAndFlush(wrapOutboundOut(context.channel.allocator.buffer(capacity: 0)))
            .whenComplete { _ in channel.close(promise: nil) }
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
        if mayRead {
            context.read()
        } else {
            readPending = true
        }
    }

    func resumeReading(_ context: ChannelHandlerContext) {
        if readPending && mayRead {
            readPending = false
            context.read()
        }
    }

    /// Reading pauses while too many bursts are in flight, and while lines wait (for a `Connect`,
    /// a login delay, earlier answers), except behind a stream, where it goes on up to a bound.
    private var mayRead: Bool {
        guard bursts.count - burstsHead < Self.maximumBurstsInFlight else { return false }
        if !blocked { return true }
        return machine.isStreaming && waitingBytes < Self.maximumWaitingBytes
    }

    // MARK: Handling one line

    func handle(_ line: ByteBuffer, context: ChannelHandlerContext) {
        let parsed = ClientRequest.parse(line)
        // The common case first: a valid `Publish` on a bound connection.
        if case .success(.publish(let publish)) = parsed, machine.state == .bound, publish.tagsAreValid {
            addToBurst(publish, line)
            return
        }
        // These act on the collection or answer out of the publish bursts: only after every
        // earlier answer (the line waits meanwhile, and so do the lines after it).
        if case .success(let request) = parsed, request.waitsForEarlierAnswers, !waitForEarlierAnswers(line) {
            return
        }
        switch machine.receive(parsed) {
        case .publish(let publish):
            do {
                try publish.validateTags(in: line)
            } catch {
                database.publishCounters.rejected(.validation)
                current.slots.append(.error(error))
                return
            }
            addToBurst(publish, line)
        case .publishIf(let tag, let expectedId, let publish, let tagIsValid):
            let condition: PublishCondition
            do throws(ExarError) {
                if !tagIsValid { throw ExarError.validation(Self.badConditionTag) }
                condition = try PublishCondition(tag: Array(tag.utf8), expectedId: expectedId)
                try publish.validateTags(in: line)
            } catch {
                database.publishCounters.rejected(.validation)
                current.slots.append(.error(error))
                return
            }
            // A burst of its own, after the earlier ones: its check sees every event they carry.
            submitBurst()
            addToBurst(publish, line)
            if !current.lines.isEmpty { current.condition = condition }
            submitBurst()
        case .answerError(let error):
            countRejectedPublish(parsed, line)
            current.slots.append(.error(error))
        case .refuseLogin(let delay, let close):
            refuseLogin(afterMilliseconds: delay, close: close, context: context)
        case .connect(let name):
            bind(to: name, answer: .connected, context: context)
        case .select(let name):
            bind(to: name, answer: .selected, context: context)
        case .drop(let name):
            drop(name, context: context)
        case .authenticated:
            var out = context.channel.allocator.buffer(capacity: 16)
            out.writeStaticString("Authenticated\n")
            write(out, context)
        case .subscribe(let query):
            startStream(query, context: context)
        case .join(let group, let offset, let maxInFlight, let tag):
            startGroupStream(group: group, offset: offset, maxInFlight: maxInFlight, tag: tag, context: context)
        case .locate(let timestamp):
            locate(timestamp, context: context)
        }
    }

    /// The answer to a `PublishIf` whose tag is empty or holds a space.
    static let badConditionTag = "the tag of a PublishIf must be one tag, not empty and without spaces"

    /// A valid `Publish` of a bound connection joins the current burst (or is answered with the
    /// error of a dropped collection or an event too large).
    func addToBurst(_ publish: PublishFields, _ line: ByteBuffer) {
        guard let collection, !collection.isDropped else {
            database.publishCounters.rejected(.dropped)
            current.slots.append(.error(.connection("")))
            return
        }
        let size = publish.tags.count + publish.data.count
        if size > collection.configuration.maximumEventBytes {
            database.publishCounters.rejected(.tooLarge)
            current.slots.append(.error(.validation("event of \(size) bytes is larger than a segment can hold")))
            return
        }
        if current.lines.isEmpty { current.receivedAt = MonotonicClock.nanoseconds() }
        current.lines.append(line)
        current.fields.append(publish)
        current.slots.append(.published)
    }

    /// Counts a refused `Publish` line (one the state machine answered with an error).
    func countRejectedPublish(_ parsed: Result<ClientRequest, ExarError>, _ line: ByteBuffer) {
        switch parsed {
        case .success(.publish), .success(.publishIf):
            database.publishCounters.rejected(.notConnected)
        case .failure where line.readableBytesView.starts(with: "Publish".utf8):
            database.publishCounters.rejected(.parse)
        default:
            break
        }
    }

    /// A line that must wait for the earlier answers is answered only after them: if some are
    /// still owed, the line waits (and so do the lines after it).
    func waitForEarlierAnswers(_ line: ByteBuffer) -> Bool {
        submitBurst()
        writeFinishedAnswers()
        if burstsHead < bursts.count {
            blocked = true
            waitingHead -= 1
            if waitingHead >= 0 {
                waiting[waitingHead] = line
            } else {
                waitingHead = 0
                waiting.insert(line, at: 0)
            }
            waitingBytes += Self.waitingCost(line)
            return false
        }
        return true
    }

    func appendWaiting(_ line: ByteBuffer) {
        waiting.append(line)
        waitingBytes += Self.waitingCost(line)
    }

    static func waitingCost(_ line: ByteBuffer) -> Int { line.readableBytes + 64 }

    /// Handles lines that waited, until one blocks again.
    func processWaitingLines(_ context: ChannelHandlerContext) {
        while !blocked && waitingHead < waiting.count {
            let line = waiting[waitingHead]
            waitingHead += 1
            waitingBytes -= Self.waitingCost(line)
            handle(line, context: context)
        }
        if waitingHead == waiting.count {
            waiting.removeAll(keepingCapacity: true)
            waitingHead = 0
            waitingBytes = 0
            if !blocked && framingError != nil {
                finishWithFramingError(context)
                return
            }
        }
        submitBurst()
        writeFinishedAnswers()
        flushIfNeeded(context)
        resumeReading(context)
        closeIfInputDone(context)
    }
}

extension ClientRequest {
    /// Whether the message is answered only after every earlier answer of its connection.
    var waitsForEarlierAnswers: Bool {
        switch self {
        case .connect, .select, .drop, .subscribe, .join, .authenticate, .locate: true
        case .publish, .publishIf, .unsubscribe, .ack, .serverMessage: false
        }
    }
}

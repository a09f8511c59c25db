import ExarCore
import ExarModel
import ExarNet
import Dispatch
import Foundation
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

    /// An answer owed to the client, in request order.
    enum Slot {
        case published
        case error(ExarError)
    }

    /// The answers of one read burst, and its `Publish` lines until they are stored; done once
    /// they are. Reused once answered, with the capacity of its arrays.
    final class Burst {
        var slots: [Slot] = []
        /// The lines of the burst's publishes (slices of the read buffers) and their fields.
        var lines: [ByteBuffer] = []
        var fields: [PublishFields] = []
        var result: PublishResult?
        var done = false

        func reset() {
            slots.removeAll(keepingCapacity: true)
            lines.removeAll(keepingCapacity: true)
            fields.removeAll(keepingCapacity: true)
            result = nil
            done = false
        }
    }

    private let database: Database
    private let logger: Logger
    private var decoder: LineFrameDecoder
    /// Bytes of an unfinished line, kept from earlier reads.
    private var unframed: ByteBuffer?
    private let batcher: PublishBatcher
    private var machine: ConnectionStateMachine
    private var collection: ExarCore.Collection?
    private var context: ChannelHandlerContext?

    // The burst being gathered from the current read, and answered ones kept for reuse.
    private var current = Burst()
    private var spareBursts: [Burst] = []
    /// The buffer the answers are written into, reused (see `writeFinishedAnswers`).
    private var answerBuffer: ByteBuffer?
    // Bursts handed over (or finished) whose answers are not written yet, oldest first.
    private var bursts: [Burst] = []
    private var burstsHead = 0
    // Lines that wait: behind a Connect/Subscribe that waits for earlier answers, or a stream.
    private var waiting: [ByteBuffer] = []
    private var waitingHead = 0
    private var blocked = false
    private var readPending = false
    private var wroteSinceFlush = false
    private var sink: StreamSink?
    /// Set when the input cannot be framed: close once every owed answer is written.
    private var closingAfterAnswers = false
    /// A line over the limit, answered once the lines before it are handled.
    private var framingError: LineTooLongError?
    private var subscription: Subscription?

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
    private func lineTooLong(_ tooLong: LineTooLongError, context: ChannelHandlerContext) {
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
    private func finishWithFramingError(_ context: ChannelHandlerContext) {
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

    private func resumeReading(_ context: ChannelHandlerContext) {
        if readPending && !blocked && bursts.count - burstsHead < Self.maximumBurstsInFlight {
            readPending = false
            context.read()
        }
    }

    // MARK: Handling one line

    private func handle(_ line: ByteBuffer, context: ChannelHandlerContext) {
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

    private func connected(to collection: ExarCore.Collection, context: ChannelHandlerContext) {
        self.collection = collection
        machine.connected()
        var out = context.channel.allocator.buffer(capacity: 16)
        out.writeConnected()
        write(out, context)
    }

    /// Answers wrong credentials late, reading nothing more from this connection meanwhile, and
    /// closes it after the last allowed failure: guessing costs time, and never another client's.
    private func refuseLogin(afterMilliseconds delay: Int, close: Bool, context: ChannelHandlerContext) {
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

    private func finishConnect(_ name: String, _ result: Result<ExarCore.Collection, ExarError>) {
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
    private func waitForEarlierAnswers(_ line: ByteBuffer) -> Bool {
        submitBurst()
        writeFinishedAnswers()
        if burstsHead < bursts.count {
            blocked = true
            waiting.insert(line, at: waitingHead)
            return false
        }
        return true
    }

    /// Hands the gathered `Publish`es to the collection writer in one call.
    private func submitBurst() {
        guard !current.slots.isEmpty else { return }
        let burst = current
        current = spareBursts.popLast() ?? Burst()
        bursts.append(burst)
        guard !burst.lines.isEmpty, let collection else {
            burst.done = true
            return
        }
        batcher.add(burst, from: self, to: collection)
    }

    /// The events of `burst` are stored (or not, as `result` says): called by the batcher.
    func burstStored(_ burst: Burst, _ result: PublishResult) {
        burst.result = result
        burst.done = true
        // Let the read buffers go now, not when the answers are written.
        burst.lines.removeAll(keepingCapacity: true)
        burstFinished()
    }

    private func burstFinished() {
        guard let context else { return }
        writeFinishedAnswers()
        flushIfNeeded(context)
        if blocked && !closingAfterAnswers && !machine.isStreaming && burstsHead == bursts.count {
            blocked = false
            processWaitingLines(context)
        }
        resumeReading(context)
    }

    /// Writes the answers of finished bursts, oldest first, stopping at the first unfinished one.
    private func writeFinishedAnswers() {
        guard let context else { return }
        guard burstsHead < bursts.count, bursts[burstsHead].done else { return }
        // All finished bursts' answers in one buffer, kept for the next answers: once the socket
        // has taken it, the buffer is ours alone again and is reused without allocating.
        var out = answerBuffer.take() ?? context.channel.allocator.buffer(capacity: 256)
        out.clear()
        while burstsHead < bursts.count, bursts[burstsHead].done {
            let burst = bursts[burstsHead]
            var eventIndex = 0
            for slot in burst.slots {
                switch slot {
                case .published:
                    if let result = burst.result, eventIndex < result.storedCount {
                        out.writePublished(id: result.firstId + UInt64(eventIndex))
                    } else {
                        out.writeError(clientFacing(burst.result?.error ?? .io(.other, "not stored")))
                    }
                    eventIndex += 1
                case .error(let error):
                    out.writeError(error)
                }
            }
            burstsHead += 1
            if spareBursts.count < Self.maximumBurstsInFlight {
                burst.reset()
                spareBursts.append(burst)
            }
        }
        write(out, context)
        answerBuffer = out.capacity <= 16 * 1024 ? out : nil  // a large one is not kept per connection
        if burstsHead == bursts.count {
            bursts.removeAll(keepingCapacity: true)
            burstsHead = 0
            if closingAfterAnswers {
                let channel = context.channel
                wroteSinceFlush = false
                context.writeAndFlush(wrapOutboundOut(context.channel.allocator.buffer(capacity: 0)))
                    .whenComplete { _ in channel.close(promise: nil) }
            }
        }
    }

    /// Handles lines that waited, until one blocks again.
    private func processWaitingLines(_ context: ChannelHandlerContext) {
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

    private func write(_ buffer: ByteBuffer, _ context: ChannelHandlerContext) {
        context.write(wrapOutboundOut(buffer), promise: nil)
        wroteSinceFlush = true
    }

    private func flushIfNeeded(_ context: ChannelHandlerContext) {
        if wroteSinceFlush {
            wroteSinceFlush = false
            context.flush()
        }
    }

    // MARK: Streaming (called on the event loop by the sink)

    func writeStreamChunk(_ chunk: ByteBuffer) {
        guard let context, let sink else { return }
        let size = chunk.readableBytes
        context.writeAndFlush(wrapOutboundOut(chunk), promise: nil)
        sink.bytesInTransit.subtract(size, ordering: .relaxed)
        if context.channel.isWritable { resumeStreamIfPaused() }
    }

    private func resumeStreamIfPaused() {
        guard let sink, sink.pausedByDemand.exchange(false, ordering: .acquiringAndReleasing) else { return }
        subscription?.resume()
    }

    func streamEnded(_ end: SubscriptionEnd) {
        guard let context else { return }
        sink = nil
        subscription = nil
        machine.streamEnded()
        var out = context.channel.allocator.buffer(capacity: 32)
        switch end {
        case .endOfStream:
            out.writeEndOfEventStream()
            write(out, context)
            blocked = false
            flushIfNeeded(context)
            processWaitingLines(context)
        case .closed:
            out.writeError(.eventStream(.closed))
            let channel = context.channel
            context.writeAndFlush(wrapOutboundOut(out)).whenComplete { _ in channel.close(promise: nil) }
        }
    }
}

extension ConnectionHandler {
    /// `error` as a client may see it: an I/O error's file paths are given relative to the data
    /// folder (`orders/00000000000000000001.log`), so answers do not tell where the server keeps
    /// its data.
    func clientFacing(_ error: ExarError) -> ExarError {
        guard case .io(let kind, let message) = error else { return error }
        let folder = database.configuration.logsPath
        guard !folder.isEmpty, message.contains(folder) else { return error }
        let prefix = folder.hasSuffix("/") ? folder : folder + "/"
        return .io(kind, message.replacingOccurrences(of: prefix, with: "").replacingOccurrences(of: folder, with: "."))
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

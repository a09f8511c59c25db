import ExarCore
import ExarModel
import ExarNet
import NIOCore

/// A connection's subscription stream: starting it, chunks from the sink, demand, `Unsubscribe`
/// and the end of the stream. Called on the event loop (the sink hops there from its scanner
/// thread); what a sink sends is taken only while it is this connection's current sink.
extension ConnectionHandler {
    func startStream(_ query: Query, context: ChannelHandlerContext) {
        beginStream(context) { collection, sink throws(ExarError) in
            self.subscription = try collection.subscribe(query, sink: sink)
        }
    }

    /// Starts a stream: `open` creates the subscription or membership feeding `sink` (an error
    /// answers the client instead); then `Subscribed`, and an input already closed or an
    /// `Unsubscribe` already waiting takes effect.
    private func beginStream(_ context: ChannelHandlerContext,
                             _ open: (Collection, StreamSink) throws(ExarError) -> Void) {
        guard let collection else { return }
        var out = context.channel.allocator.buffer(capacity: 16)
        let sink = StreamSink(handler: self, eventLoop: context.eventLoop, allocator: context.channel.allocator)
        sink.writable.store(context.channel.isWritable, ordering: .relaxed)
        do throws(ExarError) {
            guard !collection.isDropped else { throw .connection("") }
            // Events handed over while it starts reach this loop after `Subscribed` (they hop here).
            try open(collection, sink)
        } catch {
            out.writeError(clientFacing(error))
            write(out, context)
            return
        }
        self.sink = sink
        unsubscribeRequested = false
        machine.streamStarted()
        blocked = true
        out.writeSubscribed()
        write(out, context)
        flushIfNeeded(context)
        if inputClosed { endStreamForClosedInput() }
        // An `Unsubscribe` read before the stream started (behind this line) takes effect now.
        if let index = waiting[waitingHead...].firstIndex(where: ClientRequest.isUnsubscribe) {
            waitingBytes -= Self.waitingCost(waiting[index])
            waiting.remove(at: index)
            unsubscribe()
        }
    }

    /// Nothing more can come from the client: a live stream ends once it has delivered what is
    /// stored now, and a group member, which can no longer acknowledge, leaves (its events go to
    /// the others).
    func endStreamForClosedInput() {
        guard let collection else { return }
        subscription?.end(after: collection.lastId)
        membership?.leave()
    }

    /// `Unsubscribe` while a stream runs: it ends after the events already handed over (a group
    /// member leaves, its unacknowledged events going to the others).
    func unsubscribe() {
        unsubscribeRequested = true
        subscription?.end(after: 0)
        membership?.leave()
    }

    /// Writes one chunk of encoded events and resumes the subscription if the channel has room.
    func writeStreamChunk(_ chunk: ByteBuffer, from sender: StreamSink) {
        guard let context, let sink, sink === sender else { return }
        let size = chunk.readableBytes
        context.writeAndFlush(wrapOutboundOut(chunk), promise: nil)
        sink.bytesInTransit.subtract(size, ordering: .relaxed)
        if context.channel.isWritable { resumeStreamIfPaused() }
    }

    /// Resumes a subscription that paused for lack of demand.
    func resumeStreamIfPaused() {
        guard let sink, sink.pausedByDemand.exchange(false, ordering: .acquiringAndReleasing) else { return }
        subscription?.resume()
        membership?.resume()
    }

    /// The stream ended: `EndOfEventStream` and the connection takes lines again, or
    /// `EventStreamError\tClosed` and it closes.
    func streamEnded(_ end: SubscriptionEnd, from sender: StreamSink) {
        guard let context, let sink, sink === sender else { return }
        self.sink = nil
        subscription = nil
        membership = nil
        unsubscribeRequested = false
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

/// Consumer groups: `Join` starts a member's stream, `Ack` lines are taken while it runs.
extension ConnectionHandler {
    func startGroupStream(group: String, offset: UInt64, maxInFlight: UInt64, tag: String?, context: ChannelHandlerContext) {
        beginStream(context) { collection, sink throws(ExarError) in
            self.membership = try collection.join(group: group, offset: offset,
                                                  maxInFlight: Int(clamping: min(maxInFlight, UInt64(Int.max))), tag: tag, sink: sink)
        }
    }

    /// An `Ack` during a group stream: no answer, unless it cannot be parsed.
    func acknowledge(_ line: ByteBuffer, _ membership: GroupMembership, context: ChannelHandlerContext) {
        switch ClientRequest.parse(line) {
        case .success(.ack(let id)):
            membership.ack(upTo: id)
        case .success:
            break
        case .failure(let error):
            var out = context.channel.allocator.buffer(capacity: 48)
            out.writeError(error)
            write(out, context)
            flushIfNeeded(context)
        }
    }
}

import ExarCore
import NIOCore

/// A connection's subscription stream: chunks from the sink, demand, and the end of the stream.
/// Called on the event loop (the sink hops there from its scanner thread).
extension ConnectionHandler {
    /// Writes one chunk of encoded events and resumes the subscription if the channel has room.
    func writeStreamChunk(_ chunk: ByteBuffer) {
        guard let context, let sink else { return }
        let size = chunk.readableBytes
        context.writeAndFlush(wrapOutboundOut(chunk), promise: nil)
        sink.bytesInTransit.subtract(size, ordering: .relaxed)
        if context.channel.isWritable { resumeStreamIfPaused() }
    }

    /// Resumes a subscription that paused for lack of demand.
    func resumeStreamIfPaused() {
        guard let sink, sink.pausedByDemand.exchange(false, ordering: .acquiringAndReleasing) else { return }
        subscription?.resume()
    }

    /// The stream ended: `EndOfEventStream` and the connection takes lines again, or
    /// `EventStreamError\tClosed` and it closes.
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

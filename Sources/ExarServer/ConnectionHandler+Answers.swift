import ExarCore
import ExarModel
import ExarNet
import Foundation
import NIOCore

/// A connection's answers: the bursts of publishes handed to the batcher, and the answers
/// written in request order once their events are stored.
extension ConnectionHandler {
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
        /// Set for a `PublishIf` (then the burst holds that one event).
        var condition: PublishCondition?
        var done = false
        /// When its first `Publish` was read (uptime nanoseconds), for the publish-duration histogram.
        var receivedAt: UInt64 = 0

        func reset() {
            slots.removeAll(keepingCapacity: true)
            lines.removeAll(keepingCapacity: true)
            fields.removeAll(keepingCapacity: true)
            result = nil
            condition = nil
            done = false
        }
    }

    /// Hands the gathered `Publish`es to the collection writer in one call.
    func submitBurst() {
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

    func burstFinished() {
        guard let context else { return }
        writeFinishedAnswers()
        flushIfNeeded(context)
        if blocked && !closingAfterAnswers && !machine.isStreaming && burstsHead == bursts.count {
            blocked = false
            processWaitingLines(context)
        }
        resumeReading(context)
        closeIfInputDone(context)
    }

    /// Writes the answers of finished bursts, oldest first, stopping at the first unfinished one.
    func writeFinishedAnswers() {
        guard let context else { return }
        guard burstsHead < bursts.count, bursts[burstsHead].done else { return }
        // All finished bursts' answers in one buffer, kept for the next answers: once the socket
        // has taken it, the buffer is ours alone again and is reused without allocating.
        var out = answerBuffer.take() ?? context.channel.allocator.buffer(capacity: 256)
        out.clear()
        var now: UInt64 = 0
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
            // Counted once per burst: its publishes were all read in one turn and answered now.
            if eventIndex > 0 {
                let stored = min(eventIndex, burst.result?.storedCount ?? 0)
                if stored > 0 {
                    if now == 0 { now = MonotonicClock.nanoseconds() }
                    database.publishCounters.durations.observe(nanoseconds: now &- burst.receivedAt, count: UInt64(stored))
                }
                if stored < eventIndex {
                    let reason: PublishRejection
                    if case .conflict = burst.result?.error { reason = .conflict } else { reason = .storage }
                    database.publishCounters.rejected(reason, count: UInt64(eventIndex - stored))
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

    func write(_ buffer: ByteBuffer, _ context: ChannelHandlerContext) {
        context.write(wrapOutboundOut(buffer), promise: nil)
        wroteSinceFlush = true
    }

    func flushIfNeeded(_ context: ChannelHandlerContext) {
        if wroteSinceFlush {
            wroteSinceFlush = false
            context.flush()
        }
    }

    /// `error` as a client may see it: an I/O error's file paths are given relative to the data
    /// folder (`orders/00000000000000000001.log`), so answers do not tell where the server keeps
    /// its data.
    func clientFacing(_ error: ExarError) -> ExarError {
        error.withPaths(relativeTo: database.configuration.logsPath)
    }
}

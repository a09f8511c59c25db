import ExarCore
import ExarModel
import ExarNet
import NIOCore

/// Gathers the `Publish` bursts of every connection of one event loop during one turn of the
/// loop and hands them to each collection in a single call: written in place when the
/// collection's writer is idle (answered without leaving the loop), else one hand-off and one
/// completion hop per loop turn and collection, instead of one per connection.
///
/// Its batches, like the connections' bursts, are reused: a loop turn allocates next to nothing.
final class PublishBatcher: @unchecked Sendable {  // used on its event loop only (checked in `add`)
    /// The bursts of one loop turn for one collection.
    final class Batch {
        var collection: ExarCore.Collection?
        /// A conditional burst's condition: then the batch holds that burst alone.
        var condition: PublishCondition?
        var bursts: [(burst: ConnectionHandler.Burst, handler: ConnectionHandler)] = []
    }

    private let eventLoop: any EventLoop
    private var pending: [Batch] = []
    private var handing: [Batch] = []
    private var spare: [Batch] = []
    private var scheduled = false

    init(eventLoop: any EventLoop) {
        self.eventLoop = eventLoop
    }

    /// Adds a burst; it is handed over after the connections ready in this loop turn have read.
    func add(_ burst: ConnectionHandler.Burst, from handler: ConnectionHandler, to collection: ExarCore.Collection) {
        eventLoop.preconditionInEventLoop()
        // A conditional burst is a call of its own, and the collection's later bursts go after
        // it: the calls reach the collection in the order the bursts came.
        if burst.condition == nil, let batch = pending.last(where: { $0.collection === collection }), batch.condition == nil {
            batch.bursts.append((burst, handler))
        } else {
            let batch = spare.popLast() ?? Batch()
            batch.collection = collection
            batch.condition = burst.condition
            batch.bursts.append((burst, handler))
            pending.append(batch)
        }
        if !scheduled {
            scheduled = true
            let bound = NIOLoopBound(self, eventLoop: eventLoop)
            eventLoop.execute { bound.value.handOver() }
        }
    }

    private func handOver() {
        scheduled = false
        swap(&pending, &handing)
        for batch in handing {
            guard let collection = batch.collection else { continue }
            let bound = NIOLoopBound(batch, eventLoop: eventLoop)
            let eventLoop = self.eventLoop
            let batcher = NIOLoopBound(self, eventLoop: eventLoop)
            // A local function, not a closure value: passed as a non-escaping argument, it needs no allocation.
            func fill(_ appender: inout PublishAppender) throws(ExarError) {
                for (burst, _) in batch.bursts {
                    for index in burst.lines.indices {
                        let publish = burst.fields[index]
                        try burst.lines[index].withUnsafeReadableBytes { (bytes) throws(ExarError) in
                            try appender.appendValidated(
                                timestamp: publish.timestamp,
                                tags: UnsafeRawBufferPointer(rebasing: bytes[publish.tags]),
                                data: UnsafeRawBufferPointer(rebasing: bytes[publish.data]))
                        }
                    }
                }
            }
            let completion = { @Sendable (result: PublishResult) in
                // Written in place (on this loop) or by the collection's writer thread.
                if eventLoop.inEventLoop {
                    batcher.value.distribute(result, bound.value)
                } else {
                    eventLoop.execute { batcher.value.distribute(result, bound.value) }
                }
            }
            do {
                // With `sync = always` the loop syncs the turn's group itself while the disk is
                // fast (Redis's model: no hop to the writer thread and back).
                if let condition = batch.condition {
                    try collection.publish(expecting: condition, fill, syncInPlace: true, completion: completion)
                } else {
                    try collection.publish(fill, syncInPlace: true, completion: completion)
                }
            } catch {
                distribute(PublishResult(firstId: 0, storedCount: 0, error: error), batch)
            }
        }
        handing.removeAll(keepingCapacity: true)
    }

    /// Splits the result of the combined call back into each burst (their ids are consecutive, in
    /// order), then keeps the batch for a later turn.
    private func distribute(_ result: PublishResult, _ batch: Batch) {
        var offset = 0
        for (burst, handler) in batch.bursts {
            let count = burst.lines.count
            let stored = min(count, max(0, result.storedCount - offset))
            handler.burstStored(burst, PublishResult(
                firstId: result.firstId + UInt64(offset), storedCount: stored,
                error: stored < count ? (result.error ?? .io(.other, "not stored")) : nil))
            offset += count
        }
        batch.bursts.removeAll(keepingCapacity: true)
        batch.collection = nil
        batch.condition = nil
        spare.append(batch)
    }
}

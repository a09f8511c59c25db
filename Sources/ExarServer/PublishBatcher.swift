import ExarCore
import ExarModel
import ExarNet
import NIOCore

/// Gathers the `Publish` bursts of every connection of one event loop during one turn of the
/// loop and hands them to each collection in a single call: written in place when the
/// collection's writer is idle (answered without leaving the loop), else one hand-off and one
/// completion hop per loop turn and collection, instead of one per connection.
final class PublishBatcher: @unchecked Sendable {  // used on its event loop only (checked in `add`)
    /// One connection's burst: its lines (kept alive until copied) and where to report.
    struct Entry {
        let lines: [ByteBuffer]
        let fields: [PublishFields]
        let finish: (PublishResult) -> Void
    }

    private let eventLoop: any EventLoop
    private var pending: [ObjectIdentifier: (collection: ExarCore.Collection, entries: [Entry])] = [:]
    private var scheduled = false

    init(eventLoop: any EventLoop) {
        self.eventLoop = eventLoop
    }


    /// Adds a burst; it is handed over after the connections ready in this loop turn have read.
    func add(_ entry: Entry, to collection: ExarCore.Collection) {
        eventLoop.preconditionInEventLoop()
        pending[ObjectIdentifier(collection), default: (collection, [])].entries.append(entry)
        if !scheduled {
            scheduled = true
            let bound = NIOLoopBound(self, eventLoop: eventLoop)
            eventLoop.execute { bound.value.handOver() }
        }
    }

    private func handOver() {
        scheduled = false
        let batches = pending
        pending.removeAll(keepingCapacity: true)
        for (_, batch) in batches {
            let entries = batch.entries
            let bound = NIOLoopBound(entries, eventLoop: eventLoop)
            let eventLoop = self.eventLoop
            do {
                try batch.collection.publish({ (appender: inout PublishAppender) throws(ExarError) in
                    for entry in entries {
                        for index in entry.lines.indices {
                            let publish = entry.fields[index]
                            try entry.lines[index].withUnsafeReadableBytes { (bytes) throws(ExarError) in
                                try appender.appendValidated(
                                    timestamp: publish.timestamp,
                                    tags: UnsafeRawBufferPointer(rebasing: bytes[publish.tags]),
                                    data: UnsafeRawBufferPointer(rebasing: bytes[publish.data]))
                            }
                        }
                    }
                }, completion: { result in
                    // Written in place (on this loop) or by the collection's writer thread.
                    if eventLoop.inEventLoop {
                        Self.distribute(result, to: bound.value)
                    } else {
                        eventLoop.execute { Self.distribute(result, to: bound.value) }
                    }
                })
            } catch {
                Self.distribute(PublishResult(firstId: 0, storedCount: 0, error: error), to: entries)
            }
        }
    }

    /// Splits the result of the combined call back into each burst's (their ids are consecutive, in order).
    private static func distribute(_ result: PublishResult, to entries: [Entry]) {
        var offset = 0
        for entry in entries {
            let count = entry.lines.count
            let stored = min(count, max(0, result.storedCount - offset))
            entry.finish(PublishResult(firstId: result.firstId + UInt64(offset), storedCount: stored,
                                       error: stored < count ? (result.error ?? .io(.other, "not stored")) : nil))
            offset += count
        }
    }
}

import ExarCore
import ExarNet
import NIOCore
import Synchronization

/// Carries a subscription's events from a scanner thread to one connection.
///
/// On the scanner thread events are encoded straight from storage into a buffer; each pass's
/// buffer is handed to the channel's event loop. Demand: it asks the scanner to pause when the
/// channel is not writable or too many bytes are on their way to the event loop, and the handler
/// resumes it when the channel drains.
final class StreamSink: SubscriptionSink, @unchecked Sendable {
    /// Bytes handed to the event loop but not yet written to the channel, above which it pauses.
    static let maximumBytesInTransit = 512 * 1024

    private let handler: NIOLoopBound<ConnectionHandler>
    private let eventLoop: any EventLoop
    private let allocator: ByteBufferAllocator
    let writable = Atomic<Bool>(true)
    let bytesInTransit = Atomic<Int>(0)
    let pausedByDemand = Atomic<Bool>(false)
    // Scanner thread only.
    private var buffer: ByteBuffer

    init(handler: ConnectionHandler, eventLoop: any EventLoop, allocator: ByteBufferAllocator) {
        self.handler = NIOLoopBound(handler, eventLoop: eventLoop)
        self.eventLoop = eventLoop
        self.allocator = allocator
        self.buffer = allocator.buffer(capacity: 16 * 1024)
    }

    func receive(_ event: EventView) -> Bool {
        buffer.writeEvent(id: event.id, timestamp: event.timestamp, tags: event.tags, data: event.data)
        if hasRoom { return true }
        pausedByDemand.store(true, ordering: .sequentiallyConsistent)
        // The channel may have drained between the check and the flag: look again, so a resume
        // that came in between is not lost. If the handler took the flag, its resume cancels the pause.
        if hasRoom && pausedByDemand.exchange(false, ordering: .sequentiallyConsistent) {
            return true
        }
        return false
    }

    private var hasRoom: Bool {
        writable.load(ordering: .sequentiallyConsistent)
            && bytesInTransit.load(ordering: .sequentiallyConsistent) + buffer.readableBytes < Self.maximumBytesInTransit
    }

    func flush() {
        guard buffer.readableBytes > 0 else { return }
        let chunk = buffer
        buffer = allocator.buffer(capacity: 16 * 1024)
        bytesInTransit.add(chunk.readableBytes, ordering: .relaxed)
        let handler = self.handler
        eventLoop.execute {
            handler.value.writeStreamChunk(chunk, from: self)
        }
    }

    func finish(_ end: SubscriptionEnd) {
        flush()
        let handler = self.handler
        eventLoop.execute {
            handler.value.streamEnded(end, from: self)
        }
    }
}

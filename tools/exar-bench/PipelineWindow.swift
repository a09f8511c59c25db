import Histogram
import NIOCore

/// The bookkeeping of one pipelined connection: requests in flight (answered in order), how many
/// to send next, and the latency of each, from its send to its answer.
struct PipelineWindow {
    let total: Int
    let depth: Int
    private var sendTimes: [UInt64]
    private var head = 0
    private(set) var sent = 0
    private(set) var answered = 0
    private var owed = 0
    private(set) var histogram = Histogram<UInt64>(highestTrackableValue: 60_000_000_000)

    init(total: Int, depth: Int) {
        self.total = total
        self.depth = max(1, depth)
        sendTimes = Array(repeating: 0, count: self.depth)
    }

    /// Opens the window: the first `depth` requests are due.
    mutating func start() {
        owed = min(depth, total)
    }

    /// The answer to the oldest request in flight came at `now`; returns whether all are answered.
    mutating func answer(at now: UInt64) -> Bool {
        histogram.record(now - sendTimes[head % depth])
        head += 1
        answered += 1
        if sent + owed < total { owed += 1 }
        return answered == total
    }

    /// The due requests, `request` each, stamped with the send time; `nil` when none is due.
    mutating func due(_ request: ByteBuffer, allocator: ByteBufferAllocator) -> ByteBuffer? {
        guard owed > 0 else { return nil }
        var out = allocator.buffer(capacity: owed * request.readableBytes)
        let now = monotonicNanoseconds()
        for _ in 0..<owed {
            sendTimes[sent % depth] = now
            out.writeImmutableBuffer(request)
            sent += 1
        }
        owed = 0
        return out
    }
}

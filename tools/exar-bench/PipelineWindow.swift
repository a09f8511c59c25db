#if canImport(Glibc)
import Glibc
#endif
import Histogram

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

    var isComplete: Bool { answered == total }

    /// Opens the window: the first `depth` requests are due.
    mutating func start() {
        owed = min(depth, total)
    }

    /// The answer to the oldest request in flight came at `now`.
    mutating func answer(at now: UInt64) {
        histogram.record(now - sendTimes[head % depth])
        head += 1
        answered += 1
        if sent + owed < total { owed += 1 }
    }

    /// How many requests are due now; they count as sent at `now`.
    mutating func takeDue(at now: UInt64) -> Int {
        let count = owed
        for _ in 0..<count {
            sendTimes[sent % depth] = now
            sent += 1
        }
        owed = 0
        return count
    }
}

func monotonicNanoseconds() -> UInt64 {
    var spec = timespec()
    clock_gettime(CLOCK_MONOTONIC, &spec)
    return UInt64(spec.tv_sec) * 1_000_000_000 + UInt64(spec.tv_nsec)
}

/// A benchmark failure, said plainly.
struct BenchError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

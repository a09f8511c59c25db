import ExarModel
import Foundation
import Synchronization

/// What a collection has done since it was opened, and what it holds: a snapshot of cheap
/// counters the engine keeps (added to once per write or scanner pass, never per event), for the
/// edges to report (`/metrics`, an HTTP API) without the engine importing a metrics library.
public struct CollectionStatistics: Sendable, Equatable {
    /// The collection's name.
    public var name: String
    /// The first stored (retained) id: `0` when the collection is empty, `lastId + 1` when
    /// retention deleted every event.
    public var firstId: UInt64
    /// The last stored id (`0` when the collection is empty).
    public var lastId: UInt64
    /// Stored events (`lastId - firstId + 1`, or `0`).
    public var events: UInt64 { lastId == 0 || firstId > lastId ? 0 : lastId - firstId + 1 }
    /// Segment files.
    public var segments: Int
    /// Bytes the collection's files take on disk (allocated blocks, preallocation included).
    public var bytesOnDisk: UInt64
    /// Events appended since the collection was opened.
    public var eventsAppended: UInt64
    /// Bytes of tags and data of those events.
    public var eventBytesAppended: UInt64
    /// Events handed to subscriptions since it was opened (each delivery counts).
    public var eventsDelivered: UInt64
    /// Subscriptions running now.
    public var subscriptionsActive: Int
    /// The syncs to the device since it was opened and how long they took.
    public var syncs: DurationHistogram
    /// Segments retention deleted since the collection was opened.
    public var retentionDeletedSegments: UInt64 = 0
    /// Bytes of the files of those segments.
    public var retentionDeletedBytes: UInt64 = 0
    /// The collection's consumer groups, by name.
    public var groups: [GroupStatistics] = []
}

/// A histogram of durations in fixed buckets (upper bounds in seconds, the last one open).
public struct DurationHistogram: Sendable, Equatable {
    /// The upper bounds of the buckets, in seconds: 50 us to about 3.3 s, doubling.
    public static let bounds: [Double] = (0..<17).map { 0.000_05 * Double(1 << $0) }

    /// Observations per bucket: `counts[i]` counts durations at most `bounds[i]` and above the
    /// bound before it; the last element counts those above every bound.
    public private(set) var counts: [UInt64] = Array(repeating: 0, count: bounds.count + 1)
    /// The number of observations.
    public private(set) var count: UInt64 = 0
    /// Their sum, in seconds.
    public private(set) var sum: Double = 0

    /// An empty histogram.
    public init() {}

    /// A histogram with these counts per bucket (one more than ``bounds``) and sum.
    public init(counts: [UInt64], sum: Double) {
        precondition(counts.count == Self.bounds.count + 1, "one count per bucket")
        self.counts = counts
        self.count = counts.reduce(0, +)
        self.sum = sum
    }

    /// Adds `count` observations of one duration.
    public mutating func observe(seconds: Double, count: UInt64 = 1) {
        counts[Self.bucket(of: seconds)] += count
        self.count += count
        sum += seconds * Double(count)
    }

    /// The bucket a duration falls in.
    static func bucket(of seconds: Double) -> Int {
        bounds.firstIndex { seconds <= $0 } ?? bounds.count
    }

    /// The upper bound of the bucket holding the `fraction` quantile (`0.99` for p99); `nil` when
    /// empty, `.infinity` when it lies above every bound.
    public func quantileUpperBound(_ fraction: Double) -> Double? {
        guard count > 0 else { return nil }
        let rank = UInt64((Double(count) * fraction).rounded(.up))
        var seen: UInt64 = 0
        for (bucket, n) in counts.enumerated() {
            seen += n
            if seen >= max(rank, 1) { return bucket < Self.bounds.count ? Self.bounds[bucket] : .infinity }
        }
        return .infinity
    }
}

/// A ``DurationHistogram`` that threads add to without a lock: one atomic add per bucket hit,
/// for figures counted on hot paths (a whole read burst of publishes is one call).
package final class AtomicDurationHistogram: Sendable {
    private let counts: [AtomicCounter]
    private let nanoseconds = AtomicCounter()

    package init() {
        counts = (0...DurationHistogram.bounds.count).map { _ in AtomicCounter() }
    }

    /// Adds `count` observations of `nanoseconds`.
    package func observe(nanoseconds duration: UInt64, count: UInt64 = 1) {
        counts[DurationHistogram.bucket(of: Double(duration) / 1e9)].add(count)
        nanoseconds.add(duration &* count)
    }

    /// What was added so far (buckets read one by one: a snapshot taken during adds may be off by
    /// those adds, never more).
    package var snapshot: DurationHistogram {
        DurationHistogram(counts: counts.map(\.value), sum: Double(nanoseconds.value) / 1e9)
    }
}

/// The monotonic clock in nanoseconds, read with one `clock_gettime` (vDSO, no system call):
/// `DispatchTime.now()` costs a wrapper call or two more, which showed in the publish path's
/// profile when taken twice per burst.
package enum MonotonicClock {
    @inline(__always)
    package static func nanoseconds() -> UInt64 {
        var time = timespec()
        clock_gettime(CLOCK_MONOTONIC, &time)
        return UInt64(time.tv_sec) &* 1_000_000_000 &+ UInt64(time.tv_nsec)
    }
}

/// One counter that threads add to (an `Atomic` cannot be an array's element itself).
package final class AtomicCounter: Sendable {
    private let atomic = Atomic<UInt64>(0)

    package init() {}

    /// Adds `amount` (relaxed: a figure to report, not a synchronisation point).
    package func add(_ amount: UInt64) { atomic.add(amount, ordering: .relaxed) }

    /// The sum so far.
    package var value: UInt64 { atomic.load(ordering: .relaxed) }
}

/// What the protocol server reports beside the collections' figures: its connections, how long
/// publishes take from receipt to answer, and the publishes it refused and why.
public struct ServerStatistics: Sendable, Equatable {
    /// Client connections open now.
    public var connectionsActive: Int
    /// Client connections accepted since the start.
    public var connectionsOpened: UInt64
    /// Receipt of a `Publish` to its answer, per event.
    public var publishDurations: DurationHistogram
    /// Publishes answered with an error, by reason (``PublishRejection``).
    public var publishRejected: [PublishRejection: UInt64]

    /// Creates the figures.
    public init(connectionsActive: Int = 0, connectionsOpened: UInt64 = 0,
                publishDurations: DurationHistogram = DurationHistogram(),
                publishRejected: [PublishRejection: UInt64] = [:]) {
        self.connectionsActive = connectionsActive
        self.connectionsOpened = connectionsOpened
        self.publishDurations = publishDurations
        self.publishRejected = publishRejected
    }
}

/// Why a publish was refused, as the `reason` label of `exar_publish_rejected_total`.
public enum PublishRejection: String, Sendable, Hashable, CaseIterable {
    /// The event failed validation (tags, data).
    case validation
    /// The event is larger than a segment can hold (or than the HTTP body limit).
    case tooLarge = "too_large"
    /// The line could not be parsed (a bad timestamp, a missing field).
    case parse
    /// The connection was not bound to a collection.
    case notConnected = "not_connected"
    /// The collection was dropped.
    case dropped
    /// The disk failed to store it.
    case storage
    /// A conditional publish (`PublishIf`, `expect`) found another last event of its tag.
    case conflict
}

/// Counters of publishes, shared by the protocol server and the HTTP API: counted per burst.
package final class PublishCounters: Sendable {
    /// Receipt to answer, per event.
    package let durations = AtomicDurationHistogram()
    private let refusals: [AtomicCounter] = PublishRejection.allCases.map { _ in AtomicCounter() }

    package init() {}

    /// Counts `count` publishes refused for `reason`.
    package func rejected(_ reason: PublishRejection, count: UInt64 = 1) {
        let index = PublishRejection.allCases.firstIndex(of: reason)!
        refusals[index].add(count)
    }

    /// The refusals so far, every reason present.
    package var rejections: [PublishRejection: UInt64] {
        var result: [PublishRejection: UInt64] = [:]
        for (index, reason) in PublishRejection.allCases.enumerated() {
            result[reason] = refusals[index].value
        }
        return result
    }
}

/// The counters behind ``CollectionStatistics``.
final class CollectionCounters: Sendable {
    let eventsAppended = Atomic<UInt64>(0)
    let eventBytesAppended = Atomic<UInt64>(0)
    let eventsDelivered = Atomic<UInt64>(0)
    let retentionDeletedSegments = Atomic<UInt64>(0)
    let retentionDeletedBytes = Atomic<UInt64>(0)
    /// A sync takes a fraction of a millisecond at best: a lock per sync costs nothing beside it.
    let syncs = Locked(DurationHistogram())

    /// Counts one write of `events` events with `bytes` bytes of tags and data.
    func appended(events: Int, bytes: Int) {
        eventsAppended.add(UInt64(events), ordering: .relaxed)
        eventBytesAppended.add(UInt64(bytes), ordering: .relaxed)
    }

    /// Runs `sync`, counting how long it took.
    func timingSync<Failure: Error>(_ sync: () throws(Failure) -> Void) throws(Failure) {
        let start = DispatchTime.now().uptimeNanoseconds
        defer {
            let seconds = Double(DispatchTime.now().uptimeNanoseconds &- start) / 1e9
            syncs.withLock { $0.observe(seconds: seconds) }
        }
        try sync()
    }
}

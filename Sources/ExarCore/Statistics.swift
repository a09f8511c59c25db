import ExarModel
import Foundation
import Synchronization

/// What a collection has done since it was opened, and what it holds: a snapshot of cheap
/// counters the engine keeps (added to once per write or scanner pass, never per event), for the
/// edges to report (`/metrics`, an HTTP API) without the engine importing a metrics library.
public struct CollectionStatistics: Sendable, Equatable {
    /// The collection's name.
    public var name: String
    /// The first stored id (`0` when the collection is empty).
    public var firstId: UInt64
    /// The last stored id (`0` when the collection is empty).
    public var lastId: UInt64
    /// Stored events (`lastId - firstId + 1`, or `0`).
    public var events: UInt64 { lastId == 0 ? 0 : lastId - firstId + 1 }
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

    /// Adds one duration.
    public mutating func observe(seconds: Double) {
        let bucket = Self.bounds.firstIndex { seconds <= $0 } ?? Self.bounds.count
        counts[bucket] += 1
        count += 1
        sum += seconds
    }
}

/// The counters behind ``CollectionStatistics``.
final class CollectionCounters: Sendable {
    let eventsAppended = Atomic<UInt64>(0)
    let eventBytesAppended = Atomic<UInt64>(0)
    let eventsDelivered = Atomic<UInt64>(0)
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

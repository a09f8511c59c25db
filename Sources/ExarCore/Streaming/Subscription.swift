import ExarModel
import Synchronization

/// A running subscription: the handle to resume it after a pause or to cancel it.
public final class Subscription: @unchecked Sendable {
    let sink: any SubscriptionSink
    /// Exclusive end id: `UInt64.max` for live queries, the first id not yet committed at the time
    /// of subscribing for the others; lowered by ``end(after:)``.
    var endId: UInt64 { min(queryEndId, requestedEndId.load(ordering: .relaxed)) }
    private let queryEndId: UInt64
    private let requestedEndId = Atomic<UInt64>(UInt64.max)
    let live: Bool
    let limit: UInt64?
    let tag: TagFilter?

    /// `running`, `paused`, or `resumed` (a resume that came before the pause it answers).
    private let demand = Atomic<UInt8>(Demand.running)
    private enum Demand {
        static let running: UInt8 = 0
        static let paused: UInt8 = 1
        static let resumed: UInt8 = 2
    }
    private let cancelled = Atomic<Bool>(false)
    private weak var scanner: Scanner?

    // Scanner thread only.
    var cursor: LogCursor
    var delivered: UInt64 = 0
    var finished = false
    var receivedInPass = false
    /// Set when it was found paused during a shared read: it missed an event, so it takes no more
    /// of that read, whatever its demand says by then.
    var leftPass = false

    init(query: Query, committedId: UInt64, sink: any SubscriptionSink, scanner: Scanner) {
        self.sink = sink
        self.live = query.live
        self.queryEndId = query.live ? UInt64.max : committedId + 1
        self.limit = query.limit
        self.tag = query.tag.map(TagFilter.init)
        self.cursor = LogCursor(after: query.offset)
        self.scanner = scanner
    }

    /// Resumes delivery after the sink's ``SubscriptionSink/receive(_:)`` returned `false`.
    public func resume() {
        var current = demand.load(ordering: .acquiring)
        while true {
            let desired = current == Demand.paused ? Demand.running : Demand.resumed
            let (exchanged, original) = demand.compareExchange(
                expected: current, desired: desired, ordering: .acquiringAndReleasing)
            if exchanged {
                if original == Demand.paused { scanner?.wake() }
                return
            }
            current = original
        }
    }

    /// Ends the subscription with ``SubscriptionEnd/endOfStream`` once it has delivered the
    /// events up to `lastId` that it matches (`0`: at once, after what it already delivered).
    /// The sink's `finish` comes after every event it was given, on the scanner thread as always.
    public func end(after lastId: UInt64) {
        let end = lastId == UInt64.max ? lastId : lastId + 1
        var current = requestedEndId.load(ordering: .relaxed)
        while end < current {
            let (exchanged, original) = requestedEndId.compareExchange(expected: current, desired: end, ordering: .relaxed)
            if exchanged { break }
            current = original
        }
        scanner?.wake()
    }

    /// Stops delivery; the sink is not called again (not even `finish`).
    public func cancel() {
        cancelled.store(true, ordering: .releasing)
        scanner?.wake()
    }

    var isPaused: Bool { demand.load(ordering: .acquiring) == Demand.paused }
    var isCancelled: Bool { cancelled.load(ordering: .acquiring) }

    /// Pauses after the sink declined more; a resume that already arrived cancels the pause.
    func pause() {
        if !demand.compareExchange(expected: Demand.running, desired: Demand.paused, ordering: .acquiringAndReleasing).exchanged {
            demand.store(Demand.running, ordering: .releasing)
        }
    }

    /// Whether the scanner should serve it now.
    var isReady: Bool { !finished && !isPaused && !isCancelled }
}

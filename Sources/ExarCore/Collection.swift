import ExarModel
import Synchronization

/// A named, append-only sequence of events with live subscriptions.
///
/// Get one from ``Database/collection(_:)``. Every method may be called from any thread.
public final class Collection: Sendable {
    /// The collection's name (its folder under `logs_path`).
    public let name: String
    /// The settings it was opened with.
    public let configuration: CollectionConfiguration
    let log: CollectionLog
    private let scanners: [Scanner]
    private let nextScanner = Atomic<Int>(0)
    private let dropped = Atomic<Bool>(false)
    let groupRegistry = Locked(GroupRegistry())
    /// Live ``CollectionLease``s: while any is held the database's cache keeps the collection open.
    let leaseCount = Atomic<Int>(0)
    /// Set once the collection was handed out without a lease (``Database/collection(_:)``):
    /// the caller may keep it, so the cache never closes it.
    let pinned = Atomic<Bool>(false)
    /// When a lease of it was last taken or given back (monotonic ms), for the cache's order.
    let lastUsed = Atomic<UInt64>(0)

    init(name: String, directory: String, configuration: CollectionConfiguration,
         logHandler: DatabaseLogHandler?, retention: RetentionService? = nil) throws(ExarError) {
        self.name = name
        self.configuration = configuration
        log = try CollectionLog(name: name, directory: directory, configuration: configuration, logHandler: logHandler,
                                retention: retention)
        let log = self.log
        scanners = (0..<configuration.scanners.count).map { _ in
            Scanner(log: log, sleepTimeMilliseconds: configuration.scanners.sleepTimeMilliseconds)
        }
        // A collection's scanners on consecutive lanes: each on its own thread while there are enough.
        let first = WorkLanes.scanners.assign().index
        for (number, scanner) in scanners.enumerated() {
            scanner.start(on: WorkLanes.scanners.lane(first + number))
        }
        let observers: [@Sendable () -> Void] = scanners.map { scanner in { scanner.commitHappened() } }
        log.start(commitObservers: observers)
        log.retention?.register(log)
    }

    /// What opening the collection found damaged and repaired.
    public var recoveryNotes: [RecoveryNote] { log.recoveryNotes }

    /// The id of the last stored event, `0` when the collection is empty.
    public var lastId: UInt64 { log.lastCommittedId.load(ordering: .acquiring) }

    /// The first stored id: `0` while the collection is empty; once retention has deleted old
    /// segments, the first retained id (`lastId + 1` when it deleted every event).
    public var firstId: UInt64 {
        Self.firstId(lastId: lastId, segments: log.segments)
    }

    private static func firstId(lastId: UInt64, segments: [Segment]) -> UInt64 {
        lastId == 0 ? 0 : segments.first?.baseId ?? 1
    }

    /// The offset to subscribe with to get the events from `timestamp` (ms) on: the id before
    /// the first event whose timestamp is at or after it, or the last id when no event is.
    ///
    /// Ids and timestamps need not rise together (clients may stamp events out of order): this is
    /// Kafka's `offsetsForTimes` over the running maximum of timestamps, the first event at or
    /// after the time in id order. Costs a look at each segment's largest timestamp, a binary
    /// search of one time index and a walk of one index block; never a scan.
    public func locate(timestamp: UInt64) -> UInt64 {
        // Loaded first: every event up to it lies below the ends the segments give next.
        let last = lastId
        guard last > 0 else { return 0 }
        let scratch = DecompressionBuffer()
        for segment in log.segments {
            if let id = segment.firstId(atOrAfter: timestamp, scratch: scratch) { return id - 1 }
        }
        return last
    }

    // MARK: Publishing

    /// Publishes a burst of events without waiting: `fill` appends them (it runs at once, on the
    /// caller's thread, holding the collection's hand-off lock, so keep it short), and `completion`
    /// is called on the writer thread once they are stored (and synced, as the policy says).
    ///
    /// The events of one call get consecutive ids.
    /// - Throws: what `fill` throws (then none of the call's events is published), or an I/O error
    ///   when the collection is closed.
    ///
    /// `syncInPlace`: with `sync = always`, lets this call write and sync on the caller's thread
    /// when the writer is idle and the collection's last sync took under a millisecond, instead
    /// of handing the burst to the writer thread and back (the server's event loops do, once per
    /// loop turn and collection); `completion` is then called before it returns.
    public func publish(
        _ fill: (inout PublishAppender) throws(ExarError) -> Void,
        syncInPlace: Bool = false,
        completion: @escaping @Sendable (PublishResult) -> Void
    ) throws(ExarError) {
        do {
            try log.publish(fill, syncInPlace: syncInPlace, completion: completion)
        } catch {
            throw explained(error)
        }
    }

    /// Publishes the one event `fill` appends only if the last retained event carrying
    /// `condition.tag` has id `condition.expectedId` (`0`: none) when it is appended: the check
    /// and the append are one step of the collection's writer, after every publish accepted
    /// before it. `completion` gets the id, or a ``PublishResult/error`` of
    /// ``ExarError/conflict(_:)`` with the actual last id (and nothing is stored).
    /// - Throws: ``ExarError/validation(_:)`` when `fill` appends no event or more than one.
    public func publish(
        expecting condition: PublishCondition,
        _ fill: (inout PublishAppender) throws(ExarError) -> Void,
        syncInPlace: Bool = false,
        completion: @escaping @Sendable (PublishResult) -> Void
    ) throws(ExarError) {
        do {
            try log.publish(fill, expecting: condition, syncInPlace: syncInPlace, completion: completion)
        } catch {
            throw explained(error)
        }
    }

    /// Publishes `event` if the last event carrying `condition.tag` is `condition.expectedId`;
    /// returns its id.
    /// - Throws: ``ExarError/conflict(_:)`` with the actual last id, ``ExarError/validation(_:)``
    ///   for an invalid event, an I/O error if it could not be stored.
    @discardableResult
    public func publish(_ event: Event, expecting condition: PublishCondition) async throws(ExarError) -> UInt64 {
        let result: PublishResult
        do {
            result = try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<PublishResult, any Error>) in
                do {
                    try publish(expecting: condition, { (appender: inout PublishAppender) throws(ExarError) in
                        try appender.append(event)
                    }, completion: { continuation.resume(returning: $0) })
                } catch {
                    continuation.resume(throwing: error)
                }
            }
        } catch let error as ExarError {
            throw error
        } catch {
            throw .io(.other, "\(error)")
        }
        if let error = result.error { throw error }
        return result.firstId
    }

    /// How many tags' last ids the collection remembers for conditional publishes (bounded by
    /// ``CollectionConfiguration/tagCacheCapacity``).
    package var cachedTagCount: Int {
        log.writeLock.lock()
        defer { log.writeLock.unlock() }
        return log.tagCache.count
    }

    /// The id of the last retained event carrying `tag` (`0`: none), as a conditional publish
    /// would find it now.
    public func lastId(ofTag tag: String) -> UInt64 {
        log.lastIdOfTagNow(Array(tag.utf8))
    }

    /// Publishes one event and returns its id.
    /// - Throws: ``ExarError/validation(_:)`` for an invalid event, an I/O error if it could not be stored.
    @discardableResult
    public func publish(_ event: Event) async throws(ExarError) -> UInt64 {
        try await publish([event]).lowerBound
    }

    /// Publishes events that get consecutive ids, and returns them.
    /// - Throws: ``ExarError/validation(_:)`` for an invalid event (then none is published), an I/O
    ///   error if they could not all be stored.
    @discardableResult
    public func publish(_ events: [Event]) async throws(ExarError) -> ClosedRange<UInt64> {
        let result: PublishResult
        do {
            result = try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<PublishResult, any Error>) in
                do {
                    try publish({ (appender: inout PublishAppender) throws(ExarError) in
                        for event in events { try appender.append(event) }
                    }, completion: { continuation.resume(returning: $0) })
                } catch {
                    continuation.resume(throwing: error)
                }
            }
        } catch let error as ExarError {
            throw error
        } catch {
            throw .io(.other, "\(error)")
        }
        if let error = result.error { throw error }
        guard let ids = result.ids else {
            throw .validation("no events to publish")
        }
        return ids
    }

    // MARK: Reading

    /// The events a non-live query matches now, read on the caller's thread.
    /// - Throws: ``ExarError/subscription(_:)`` for a live query (use ``subscribe(_:sink:)``).
    public func read(_ query: Query) throws(ExarError) -> [Event] {
        var events: [Event] = []
        try read(query) { events.append($0.makeEvent()) }
        return events
    }

    /// Visits the events a non-live query matches now, in id order, on the caller's thread.
    /// - Throws: ``ExarError/subscription(_:)`` for a live query.
    public func read(_ query: Query, _ visit: (EventView) -> Void) throws(ExarError) {
        try read(query, through: UInt64.max, visit)
    }

    /// Visits the events a non-live query matches now with ids up to `lastWanted`, in id order.
    /// - Throws: ``ExarError/subscription(_:)`` for a live query.
    public func read(_ query: Query, through lastWanted: UInt64, _ visit: (EventView) -> Void) throws(ExarError) {
        guard !query.live else {
            throw .subscription("a live query needs a subscription")
        }
        let endId = min(lastId, lastWanted) &+ 1
        var cursor = LogCursor(after: query.offset)
        let tag = query.tag.map(TagFilter.init)
        var remaining = query.limit ?? UInt64.max
        let reader = LogReader(report: { [log] in log.log(.error, $0) })
        let log = self.log
        var stop = ReadStop.budget
        while stop == .budget && remaining > 0 {
            stop = reader.read(
                segments: log.segments, refresh: { log.segments }, cursor: &cursor, endId: endId, tag: tag,
                maxEvents: Int(min(remaining, 1 << 20)), maxBatches: Int.max
            ) { event, _ in
                visit(event)
                remaining -= 1
                return remaining > 0
            }
        }
    }

    /// Starts a subscription served by one of the collection's scanners.
    ///
    /// - Parameters:
    ///   - query: where to start, how many, which tag, live or not.
    ///   - sink: receives the events on a scanner thread, with demand as its return value.
    /// - Returns: the handle to resume or cancel the subscription.
    /// - Throws: ``ExarError/eventStream(_:)`` `Closed` when the collection is closed.
    @discardableResult
    public func subscribe(_ query: Query, sink: any SubscriptionSink) throws(ExarError) -> Subscription {
        let index: Int
        switch configuration.routingStrategy {
        case .roundRobin:
            index = nextScanner.wrappingAdd(1, ordering: .relaxed).oldValue % scanners.count
        case .random:
            index = Int.random(in: 0..<scanners.count)
        }
        let scanner = scanners[(index + scanners.count) % scanners.count]
        let subscription = Subscription(query: query, committedId: lastId, sink: sink, scanner: scanner)
        do {
            try scanner.add(subscription)
        } catch {
            throw explained(error)
        }
        return subscription
    }

    /// The events of `query` as an `AsyncSequence`, buffering at most `bufferSize` events.
    public func events(_ query: Query, bufferSize: Int = 1024) throws(ExarError) -> EventStream {
        let stream = EventStream(capacity: bufferSize)
        let subscription = try subscribe(query, sink: stream)
        stream.attach(subscription)
        return stream
    }

    /// What the collection holds and has done since it was opened (counters kept per write and
    /// scanner pass; the size on disk is read from the file system).
    public var statistics: CollectionStatistics {
        let segments = log.segments
        let lastId = self.lastId
        var bytes: UInt64 = 0
        for name in (try? FileSystem.contents(of: log.directory)) ?? [] {
            bytes += FileSystem.allocatedSize(of: log.directory + "/" + name)
        }
        let counters = log.counters
        return CollectionStatistics(
            name: name, firstId: Self.firstId(lastId: lastId, segments: segments), lastId: lastId,
            segments: segments.count, bytesOnDisk: bytes,
            eventsAppended: counters.eventsAppended.load(ordering: .relaxed),
            eventBytesAppended: counters.eventBytesAppended.load(ordering: .relaxed),
            eventsDelivered: counters.eventsDelivered.load(ordering: .relaxed),
            subscriptionsActive: subscriptionsPerScanner.reduce(0, +),
            syncs: counters.syncs.withLock { $0 },
            retentionDeletedSegments: counters.retentionDeletedSegments.load(ordering: .relaxed),
            retentionDeletedBytes: counters.retentionDeletedBytes.load(ordering: .relaxed),
            groups: groups)
    }

    /// The number of subscriptions each scanner holds.
    public var subscriptionsPerScanner: [Int] { scanners.map(\.subscriptionCount) }

    // MARK: Lifecycle

    /// Forces every stored event to the device, whatever the sync policy.
    public func flush() throws(ExarError) {
        try log.flush()
    }

    /// Writes what is pending, seals the active segment, ends subscriptions with
    /// ``SubscriptionEnd/closed`` and stops the collection's threads. Later publishes fail.
    public func close() {
        close(syncing: true)
    }

    /// `close`, without the last sync when `syncing` is false (see ``CollectionLog/close(syncing:)``).
    func close(syncing: Bool) {
        closeGroups(persist: true, end: .closed)
        log.retention?.unregister(log)
        log.close(syncing: syncing)
        for scanner in scanners { scanner.stop(ending: .closed) }
    }

    /// Whether the collection was dropped (``Database/drop(_:)``): it takes no more publishes or
    /// subscriptions; they fail with ``ExarError/connection(_:)``.
    public var isDropped: Bool { dropped.load(ordering: .acquiring) }

    /// Stops the collection for ``Database/drop(_:)``: what is queued is written and answered,
    /// later publishes and subscriptions fail with ``ExarError/connection(_:)``, running
    /// subscriptions end with ``SubscriptionEnd/endOfStream``. Returns once its threads are done.
    func drop() {
        dropped.store(true, ordering: .releasing)
        closeGroups(persist: false, end: .endOfStream)
        log.retention?.unregister(log)
        log.close()
        for scanner in scanners { scanner.stop(ending: .endOfStream) }
    }

    /// `error` of a publish or subscribe call, or the dropped collection's `ConnectionError` that
    /// caused it (a dropped collection's log and scanners are closed).
    private func explained(_ error: ExarError) -> ExarError {
        isDropped ? .connection("collection \(name) was dropped") : error
    }

    /// Lets the folder's `.lock` go (after a drop has deleted the folder).
    func releaseFolderLock() {
        log.lock.release()
    }
}

import ExarModel
import Foundation
import Synchronization

/// One scanner (scan lane) of a collection: it catches its subscriptions up and then tails the log.
///
/// Each pass groups the ready subscriptions by their next id, so subscriptions at the same place
/// (every live one that has caught up) share one read of the new events. A pass reads a bounded
/// amount per group, so a long catch-up never holds back the tailing subscriptions for long.
/// Its passes run on one of the shared scanner lanes (``WorkLanes/scanners``): the next one
/// when a commit, a new subscription, a resume or a cancel wakes it, or (while it holds
/// subscriptions) once `sleep_time_in_ms` passes.
final class Scanner: LaneWork, @unchecked Sendable {
    private let log: CollectionLog
    private let reader: LogReader

    // Guarded by `condition`.
    private let condition = NSCondition()
    private var subscriptions: [Subscription] = []
    private var stopping = false
    /// How the subscriptions still running end when the scanner stops.
    private var stopEnd = SubscriptionEnd.closed
    private var running = false
    /// The lane its passes run on (set by `start`).
    private var lane: WorkLanes.Lane?
    /// How long a scanner holding subscriptions waits, when nothing wakes it, before it looks
    /// again on its own: `sleep_time_in_ms`, at least a second. Commits, new subscriptions,
    /// resumes and cancels wake it at once, so this is only a safety net; polling every 10 ms
    /// (the original's default) cost 27% of a core with 1,000 idle subscribed collections.
    private let sleepMilliseconds: UInt64
    static let minimumSleepMilliseconds = 1000
    /// Mirrors `subscriptions.count`, so a commit skips the lock of a scanner with nothing to serve.
    private let held = Atomic<Int>(0)
    /// The events of one read, copied, for delivery member by member (its passes only).
    private var gathered = GatheredEvents()

    /// Events handed to one group in one pass, and batches examined, before the next group's turn.
    static let eventsPerPass = 4096
    static let batchesPerPass = 512

    init(log: CollectionLog, sleepTimeMilliseconds: Int) {
        self.log = log
        self.sleepMilliseconds = UInt64(max(Self.minimumSleepMilliseconds, sleepTimeMilliseconds))
        self.reader = LogReader(report: { [weak log] message in log?.log(.error, message) })
    }

    func start(on lane: WorkLanes.Lane) {
        condition.lock()
        running = true
        self.lane = lane
        condition.unlock()
    }

    /// Adds a subscription; it is served from the next pass.
    func add(_ subscription: Subscription) throws(ExarError) {
        condition.lock()
        defer { condition.unlock() }
        if stopping {
            throw .eventStream(.closed)
        }
        subscriptions.append(subscription)
        held.store(subscriptions.count, ordering: .releasing)
        lane?.schedule(self)
    }

    /// Wakes the thread after a commit, unless it holds no subscription.
    func commitHappened() {
        if held.load(ordering: .acquiring) > 0 { wake() }
    }

    /// Asks for a pass for a commit, a resume or a cancel.
    func wake() {
        condition.lock()
        let lane = self.lane
        condition.unlock()
        lane?.schedule(self)
    }

    /// Ends every subscription with `end` and stops; returns once its last pass is done.
    func stop(ending end: SubscriptionEnd) {
        condition.lock()
        if !stopping { stopEnd = end }
        stopping = true
        lane?.schedule(self)
        while running { condition.wait() }
        condition.unlock()
    }

    /// The number of subscriptions held (finished ones leave at the end of a pass).
    var subscriptionCount: Int {
        condition.lock()
        defer { condition.unlock() }
        return subscriptions.count
    }

    /// One pass: serves every ready subscription once (or ends them all when stopping).
    func runPass() -> LaneNext {
        condition.lock()
        if stopping {
            guard running else {
                condition.unlock()
                return .idle
            }
            let remaining = subscriptions
            let end = stopEnd
            subscriptions.removeAll()
            held.store(0, ordering: .releasing)
            condition.unlock()
            for subscription in remaining where !subscription.finished && !subscription.isCancelled {
                subscription.sink.finish(end)
            }
            condition.lock()
            running = false
            condition.broadcast()
            condition.unlock()
            return .idle
        }
        let current = subscriptions
        condition.unlock()

        let moreReady = current.isEmpty ? false : servePass(current)

        condition.lock()
        subscriptions.removeAll { $0.finished || $0.isCancelled }
        held.store(subscriptions.count, ordering: .releasing)
        let holding = !subscriptions.isEmpty
        condition.unlock()
        if moreReady { return .again }
        return holding ? .at(WorkLanes.now + sleepMilliseconds) : .idle
    }

    /// Serves every ready subscription once; returns whether some may have more to read at once.
    private func servePass(_ subscriptions: [Subscription]) -> Bool {
        var groups: [UInt64: [Subscription]] = [:]
        for subscription in subscriptions where subscription.isReady {
            groups[subscription.cursor.nextId, default: []].append(subscription)
        }
        var moreReady = false
        let segments = log.segments
        for (_, members) in groups.sorted(by: { $0.key > $1.key }) {
            if serve(members, segments: segments) { moreReady = true }
        }
        return moreReady
    }

    /// Reads once for subscriptions that stand at the same id; returns whether more is ready.
    private func serve(_ members: [Subscription], segments: [Segment]) -> Bool {
        var cursor = members[0].cursor
        for member in members where member.cursor.segment >= 0 {
            cursor = member.cursor
            break
        }
        let endId = members.map(\.endId).max()!
        // The reader filters by tag (and may skip blocks) only when every member asks for the same one.
        let sharedTag: TagFilter? = members.allSatisfy({ $0.tag?.bytes == members[0].tag?.bytes }) ? members[0].tag : nil
        var active = members.count
        var delivered: UInt64 = 0
        defer { if delivered > 0 { log.counters.eventsDelivered.add(delivered, ordering: .relaxed) } }
        let stop: ReadStop
        if members.count < Self.gatherFrom {
            stop = reader.read(
                segments: segments, refresh: { log.segments }, cursor: &cursor, endId: endId, tag: sharedTag,
                maxEvents: Self.eventsPerPass, maxBatches: Self.batchesPerPass
            ) { event, _ in
                for member in members where !member.finished && !member.leftPass && !member.isCancelled {
                    _ = offer(event, to: member, sharedTag: sharedTag, active: &active, delivered: &delivered)
                }
                return active > 0
            }
        } else {
            // Many members: the pass's events are copied once, then handed to one member after
            // another, so each member's state and its sink's buffer stay in cache for its run
            // (event by event, every event touched every member: a 1,000-subscriber fan-out spent
            // most of its time in those cache misses).
            gathered.removeAll()
            stop = reader.read(
                segments: segments, refresh: { log.segments }, cursor: &cursor, endId: endId, tag: sharedTag,
                maxEvents: Self.eventsPerPass, maxBatches: Self.batchesPerPass
            ) { event, _ in
                gathered.append(event)
                // A read of large events stops at a few MiB copied; the next pass goes on.
                return gathered.byteCount < GatheredEvents.maximumBytes
            }
            gathered.withViews { events in
                for member in members {
                    for event in events {
                        guard !member.finished && !member.leftPass && !member.isCancelled else { break }
                        if !offer(event, to: member, sharedTag: sharedTag, active: &active, delivered: &delivered) {
                            // Paused (or finished): it leaves this read, and a paused one that did
                            // not get the read's later events is placed again when it is served next.
                            // Marked whether or not a resume has come since: resumed, it must not be
                            // moved past those events with the others.
                            if !member.finished && event.id != events.last?.id { member.leftPass = true }
                            break
                        }
                    }
                }
            }
            gathered.removeAll()
        }
        for member in members {
            if member.receivedInPass {
                member.receivedInPass = false
                member.sink.flush()
            }
            let left = member.leftPass
            member.leftPass = false
            guard !member.finished, !member.isCancelled, !member.isPaused, !left else { continue }
            // Members that stayed in the read saw every event it visited: they are where it stopped.
            if member.cursor.nextId <= cursor.nextId {
                member.cursor = cursor
            }
            // A live subscription without an end (`UInt64.max`) never ends here, even one whose
            // offset left no id after it: it waits, as every live one does, for its client.
            if (member.endId != UInt64.max && member.cursor.nextId >= member.endId) || (!member.live && stop == .caughtUp) {
                finish(member)
            }
        }
        return stop == .budget || (stop == .stopped && members.contains { $0.isReady })
            || members.contains { $0.isReady && $0.cursor.nextId < cursor.nextId }
    }

    /// Members from which a read gathers its events before delivering (fewer: event by event).
    static let gatherFrom = 8

    /// Hands `event` to `member` (which is still in the read) unless it is before its place or
    /// filtered out; returns whether it may take the read's next event.
    private func offer(_ event: EventView, to member: Subscription, sharedTag: TagFilter?,
                       active: inout Int, delivered: inout UInt64) -> Bool {
        if member.isPaused {
            // It misses this event: out of this read for good, even if resumed before the
            // next one. Its cursor stays at its own next id, relocated when it is served again.
            member.leftPass = true
            return false
        }
        if event.id < member.cursor.nextId { return true }
        if event.id >= member.endId {
            finish(member)
            active -= 1
            return false
        }
        // Its own place, in case it pauses here; relocated through the index when it resumes.
        member.cursor.nextId = event.id + 1
        member.cursor.segment = -1
        if let tag = member.tag, sharedTag == nil, !tag.matches(event.tags) { return true }
        let wantsMore = member.sink.receive(event)
        member.receivedInPass = true
        member.delivered += 1
        delivered += 1
        if let limit = member.limit, member.delivered >= limit {
            finish(member)
            active -= 1
            return false
        }
        if !wantsMore {
            member.pause()
            if member.isPaused {
                active -= 1
                return false
            }
        }
        return true
    }

    private func finish(_ member: Subscription) {
        guard !member.finished else { return }
        member.finished = true
        if member.receivedInPass {
            member.receivedInPass = false
            member.sink.flush()
        }
        member.sink.finish(.endOfStream)
    }
}

/// Copies of the events of one read (their tags and data in one buffer), reused from pass to pass.
struct GatheredEvents {
    private var bytes: [UInt8] = []
    private var entries: [(id: UInt64, timestamp: UInt64, tags: Range<Int>, data: Range<Int>)] = []

    /// Bytes a read copies at most (it stops after the event that passes this).
    static let maximumBytes = 4 << 20
    /// Capacity kept between passes; a larger buffer is given back (a scanner per collection
    /// lane, thousands of collections: each keeps little).
    static let keptCapacity = 64 << 10

    var byteCount: Int { bytes.count }

    /// Empties it for the next read.
    mutating func removeAll() {
        if bytes.capacity > Self.keptCapacity { bytes = [] } else { bytes.removeAll(keepingCapacity: true) }
        if entries.capacity > 1024 { entries = [] } else { entries.removeAll(keepingCapacity: true) }
    }

    mutating func append(_ event: EventView) {
        let tagsStart = bytes.count
        bytes.append(contentsOf: event.tags)
        let dataStart = bytes.count
        bytes.append(contentsOf: event.data)
        entries.append((event.id, event.timestamp, tagsStart..<dataStart, dataStart..<bytes.count))
    }

    /// Calls `body` with views of the events, valid during the call.
    func withViews(_ body: ([EventView]) -> Void) {
        bytes.withUnsafeBytes { buffer in
            let views = entries.map { entry in
                EventView(id: entry.id, timestamp: entry.timestamp,
                          tags: UnsafeRawBufferPointer(rebasing: buffer[entry.tags]),
                          data: UnsafeRawBufferPointer(rebasing: buffer[entry.data]))
            }
            body(views)
        }
    }
}

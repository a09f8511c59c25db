import ExarModel

/// The durable bookkeeping of one consumer group, without members, threads or files.
///
/// Every matching event below `readNext` was taken from the log at least once. Of those, the
/// ones in `pending` are not yet acknowledged (delivered and in flight, or waiting in `ready` to
/// be delivered again); the ones in `parked` went out `max_deliver` times without an
/// acknowledgement; every other one is acknowledged (or was lost to retention). So the
/// acknowledged floor is the id before the smallest pending one (or before `readNext`), and the
/// acknowledgements above it are exactly the ids between the floor and `readNext` that are not
/// pending: keeping the pending ones keeps the acknowledgements, in a size bounded by what the
/// members may hold in flight, however long the group runs.
struct GroupState {
    struct Pending: Equatable {
        /// How many times it was handed to a member.
        var deliveries: UInt32
        /// The member holding it (``ConsumerGroup`` numbers them), `-1` while it waits in `ready`.
        var member: Int = -1
        /// When its delivery times out (monotonic ms), meaningful while a member holds it.
        var deadline: UInt64 = 0
    }

    /// The tag the group reads (`nil`: every event).
    var tag: [UInt8]?
    /// The next id to take from the log.
    var readNext: UInt64
    var pending = PendingWindow()
    /// Pending ids waiting for a member, sorted descending (the smallest is taken first, from the end).
    private(set) var ready: [UInt64] = []
    /// Parked ids and their deliveries.
    var parked: [UInt64: UInt32] = [:]
    /// Counters, kept with the state: events lost to retention, deliveries after the first,
    /// events parked.
    var lost: UInt64 = 0
    var redelivered: UInt64 = 0
    var parkedTotal: UInt64 = 0
    /// At most this many parked events are kept; beyond it the oldest parked one is discarded.
    static let maximumParked = 100_000

    init(tag: [UInt8]?, readNext: UInt64) {
        self.tag = tag
        self.readNext = max(readNext, 1)
    }

    // MARK: Floor

    /// Every matching event up to it is acknowledged, parked or lost.
    func ackedFloor() -> UInt64 {
        (pending.first ?? readNext) - 1
    }

    // MARK: Changes

    /// `id`, just taken from the log (`readNext` moves past it), is pending: held by `member`
    /// (its first delivery), or, with `member < 0`, waiting in `ready`.
    mutating func took(_ id: UInt64, member: Int, deadline: UInt64) {
        readNext = max(readNext, id + 1)
        pending[id] = Pending(deliveries: member >= 0 ? 1 : 0, member: member, deadline: deadline)
        if member < 0 { insertReady(id) }
    }

    /// The smallest id waiting for a member, without taking it.
    var nextReady: UInt64? { ready.last }

    /// Takes the smallest waiting id and records its delivery to `member`.
    mutating func deliverReady(to member: Int, deadline: UInt64) -> UInt64? {
        guard let id = ready.popLast() else { return nil }
        guard var entry = pending[id] else { return deliverReady(to: member, deadline: deadline) }
        if entry.deliveries > 0 { redelivered += 1 }
        entry.deliveries += 1
        entry.member = member
        entry.deadline = deadline
        pending[id] = entry
        return id
    }

    /// A waiting id that can no longer be read (retention deleted it): counted as lost.
    mutating func dropReady(_ id: UInt64) {
        removeReady(id)
        if pending.remove(id) != nil { lost += 1 }
    }

    /// Acknowledges `id`; returns whether it was pending.
    @discardableResult
    mutating func acknowledge(_ id: UInt64) -> Bool {
        pending.remove(id) != nil
    }

    /// Acknowledges `id` after its delivery timed out: pending (held by another member, or
    /// waiting) or parked since. Returns the member that holds it now (`-1`: none), or `nil` if
    /// it was acknowledged already.
    mutating func acknowledgeLate(_ id: UInt64) -> Int? {
        if let entry = pending.remove(id) {
            if entry.member < 0 { removeReady(id) }
            return entry.member
        }
        return parked.removeValue(forKey: id) != nil ? -1 : nil
    }

    /// Takes `id` back from the member that held it (its delivery timed out, or the member left):
    /// parked if it went out `maxDeliver` times, else waiting for the next member.
    mutating func release(_ id: UInt64, maxDeliver: UInt32) {
        guard var entry = pending[id] else { return }
        if entry.deliveries >= maxDeliver {
            pending.remove(id)
            park(id, deliveries: entry.deliveries)
        } else {
            entry.member = -1
            pending[id] = entry
            insertReady(id)
        }
    }

    private mutating func park(_ id: UInt64, deliveries: UInt32) {
        parked[id] = deliveries
        parkedTotal += 1
        if parked.count > Self.maximumParked, let oldest = parked.keys.min() {
            parked.removeValue(forKey: oldest)
        }
    }

    /// Parked events back to the group, to be delivered again with a fresh count (`nil`: all).
    /// Returns how many.
    mutating func unpark(_ ids: [UInt64]?) -> Int {
        let chosen = (ids ?? Array(parked.keys)).filter { parked[$0] != nil }.sorted()
        for id in chosen {
            parked.removeValue(forKey: id)
            pending[id] = Pending(deliveries: 0)
            insertReady(id)
        }
        return chosen.count
    }

    /// Discards parked events (`nil`: all); returns how many.
    mutating func discardParked(_ ids: [UInt64]?) -> Int {
        guard let ids else {
            defer { parked.removeAll() }
            return parked.count
        }
        return ids.reduce(0) { count, id in count + (parked.removeValue(forKey: id) != nil ? 1 : 0) }
    }

    /// Retention deleted every id below `firstRetained`: what was not yet read is skipped, and
    /// pending ids below it are lost when their turn comes (``dropReady(_:)``).
    mutating func skip(to firstRetained: UInt64) {
        guard readNext < firstRetained else { return }
        lost += firstRetained - readNext
        readNext = firstRetained
    }

    /// After a restart: nothing is held by a member, every pending id waits.
    mutating func releaseAllForRestart() {
        ready = pending.sortedIds.reversed()
        pending.updateAll { $0.member = -1 }
    }

    private mutating func insertReady(_ id: UInt64) {
        let index = readyPosition(id)
        if index < ready.count && ready[index] == id { return }
        ready.insert(id, at: index)
    }

    private mutating func removeReady(_ id: UInt64) {
        let index = readyPosition(id)
        if index < ready.count && ready[index] == id { ready.remove(at: index) }
    }

    /// `ready` is descending: the first index whose id is not above `id`.
    private func readyPosition(_ id: UInt64) -> Int {
        var low = 0
        var high = ready.count
        while low < high {
            let mid = (low + high) / 2
            if ready[mid] > id { low = mid + 1 } else { high = mid }
        }
        return low
    }
}

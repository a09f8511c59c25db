import Dispatch
import ExarModel
import Foundation

/// A member's place in a consumer group, returned by ``Collection/join(group:offset:maxInFlight:tag:sink:)``.
///
/// Its sink gets the events handed to this member (called with the group's lock held, from the
/// collection's scanner thread or whichever thread acknowledged, left or timed out; one at a time
/// and never after `finish`). `false` from `receive` means the member's transport is full: no
/// more events until ``resume()``.
public final class GroupMembership: Sendable {
    let group: ConsumerGroup
    let number: Int

    init(group: ConsumerGroup, number: Int) {
        self.group = group
        self.number = number
    }

    /// Acknowledges every event up to `id` delivered to this member (others' are left alone).
    public func ack(upTo id: UInt64) { group.acknowledge(upTo: id, member: number) }

    /// The member's transport has room again.
    public func resume() { group.resume(member: number) }

    /// Leaves the group: its unacknowledged events go to the other members (or wait), and the
    /// sink's `finish(.endOfStream)` follows.
    public func leave() { group.leave(member: number, end: .endOfStream) }
}

/// One durable consumer group of a collection: its state, its members, the subscription (the
/// feed) that takes new events from the log, a timer for acknowledgement deadlines, and the
/// saving of its state. Every change happens with `lock` held; saves run on `queue`.
final class ConsumerGroup: @unchecked Sendable {
    let name: String
    /// Unowned: the collection holds its groups (a member that outlives it finds the group closed first).
    private unowned let collection: Collection
    private let settings: GroupSettings
    private let syncWrites: Bool
    private let saveDelay: DispatchTimeInterval
    private let queue: DispatchQueue
    private let reader: LogReader

    private let lock = NSLock()
    // Guarded by `lock`.
    private var state: GroupState
    private var members: [Member] = []
    private var nextNumber = 0
    private var turn = 0
    private var feed: Subscription?
    private var feedPaused = false
    private var closed = false
    private var saveScheduled = false
    /// The clock read once per pass of the feed (reading it per event cost 3% of delivery):
    /// deadlines of one pass's events are late by at most that pass's length.
    private var passNow: UInt64?
    private var timer: DispatchSourceTimer?
    // On `queue` only.
    private var file: GroupFile

    init(name: String, collection: Collection, state: GroupState, file: GroupFile) {
        self.name = name
        self.collection = collection
        self.settings = collection.configuration.groups
        self.state = state
        self.file = file
        switch collection.configuration.sync {
        case .always:
            syncWrites = true
            saveDelay = .never
        case .interval(let milliseconds):
            syncWrites = true
            saveDelay = .milliseconds(milliseconds)
        case .none:
            syncWrites = false
            saveDelay = .milliseconds(10)
        }
        queue = DispatchQueue(label: "exar-group-\(collection.name)-\(name)")
        let log = collection.log
        reader = LogReader(report: { [weak log] message in log?.log(.error, message) })
    }

    var tag: [UInt8]? { lock.withLock { state.tag } }

    // MARK: Members

    func join(maxInFlight: Int, sink: any SubscriptionSink) throws(ExarError) -> GroupMembership {
        lock.lock()
        defer { lock.unlock() }
        guard !closed else { throw .eventStream(.closed) }
        let member = Member(number: nextNumber, sink: sink, maxInFlight: maxInFlight)
        nextNumber += 1
        members.append(member)
        if feed == nil {
            startTimer()
            let first = collection.log.segments.first?.baseId ?? 1
            state.skip(to: first)
            let query = Query(live: true, offset: state.readNext - 1, tag: state.tag.map { String(decoding: $0, as: UTF8.self) })
            do {
                feed = try collection.subscribe(query, sink: GroupFeed(group: self))
            } catch {
                members.removeLast()
                throw error
            }
        }
        pump()
        return GroupMembership(group: self, number: member.number)
    }

    func acknowledge(upTo id: UInt64, member number: Int) {
        lock.lock()
        defer { lock.unlock() }
        guard let member = members.first(where: { $0.number == number }) else { return }
        let covered = member.acknowledge(upTo: id)
        var changed = !covered.held.isEmpty
        for acked in covered.held { state.acknowledge(acked) }
        for acked in covered.late {
            // Taken back from this member at its deadline, read all the same: acknowledged unless
            // the group had it acknowledged since (a member holding it now lets it go).
            guard let holder = state.acknowledgeLate(acked) else { continue }
            if holder >= 0 { members.first(where: { $0.number == holder })?.remove(acked, timedOut: false) }
            changed = true
        }
        guard changed else { return }
        scheduleSave()
        pump()
    }

    func resume(member number: Int) {
        lock.lock()
        defer { lock.unlock() }
        guard let member = members.first(where: { $0.number == number }), member.blocked else { return }
        member.blocked = false
        pump()
    }

    func leave(member number: Int, end: SubscriptionEnd) {
        lock.lock()
        defer { lock.unlock() }
        guard let index = members.firstIndex(where: { $0.number == number }) else { return }
        let member = members.remove(at: index)
        let held = member.releaseAll()
        if !held.isEmpty {
            for id in held { state.release(id, maxDeliver: UInt32(settings.maxDeliver)) }
            scheduleSave()
        }
        pump()
        member.sink.finish(end)
    }

    // MARK: Delivery (with `lock` held)

    /// A member that may take `id` (has room, holds nothing above it), in turn.
    private func pickMember(for id: UInt64) -> Member? {
        guard !members.isEmpty else { return nil }
        for step in 0..<members.count {
            let member = members[(turn + step) % members.count]
            if member.mayTake(id) {
                turn = (turn + step + 1) % members.count
                return member
            }
        }
        return nil
    }

    private var deadline: UInt64 { Self.nowMilliseconds() + UInt64(settings.ackWaitMilliseconds) }

    static func nowMilliseconds() -> UInt64 { DispatchTime.now().uptimeNanoseconds / 1_000_000 }

    private func hand(_ view: EventView, to member: Member) {
        member.hold(view.id)
        member.touched = true
        if !member.sink.receive(view) { member.blocked = true }
    }

    /// A new event from the feed (its scanner thread); returns whether the feed may go on.
    func offer(_ view: EventView) -> Bool {
        lock.lock()
        defer { lock.unlock() }
        guard !closed else { return true }
        if view.id > state.readNext && !collection.configuration.retention.keepsEverything {
            // The feed may have jumped over segments that retention deleted.
            state.skip(to: min(view.id, collection.log.segments.first?.baseId ?? 1))
        }
        if state.nextReady == nil, let member = pickMember(for: view.id) {
            let now = passNow ?? Self.nowMilliseconds()
            passNow = now
            state.took(view.id, member: member.number, deadline: now + UInt64(settings.ackWaitMilliseconds))
            hand(view, to: member)
        } else {
            state.took(view.id, member: -1, deadline: 0)
        }
        scheduleSave()
        if state.nextReady != nil || !members.contains(where: \.hasRoom) {
            feedPaused = true
            return false
        }
        return true
    }

    /// After a pass of the feed: hands the members their bytes.
    func flushMembers() {
        lock.lock()
        defer { lock.unlock() }
        passNow = nil
        flushTouched()
    }

    private func flushTouched() {
        for member in members where member.touched {
            member.touched = false
            member.sink.flush()
        }
    }

    /// Delivers waiting events to members with room (reading each from the log), then lets the
    /// feed go on if nothing waits and someone has room; flushes what it handed out.
    private func pump() {
        guard state.nextReady != nil else { return pumped() }
        let deadline = self.deadline
        while let id = state.nextReady, let member = pickMember(for: id) {
            var cursor = LogCursor(nextId: id)
            var found = false
            let log = collection.log
            _ = reader.read(segments: log.segments, refresh: { log.segments }, cursor: &cursor, endId: id + 1, tag: nil,
                            maxEvents: 1, maxBatches: 64) { view, _ in
                guard view.id == id else { return false }
                found = true
                _ = state.deliverReady(to: member.number, deadline: deadline)
                hand(view, to: member)
                return false
            }
            if !found { state.dropReady(id) }
            scheduleSave()
        }
        pumped()
    }

    /// The end of ``pump()``: flushes what it handed out, and lets the feed go on.
    private func pumped() {
        flushTouched()
        if feedPaused && state.nextReady == nil && hasRoomToResume {
            feedPaused = false
            feed?.resume()
        }
    }

    /// The paused feed goes on once the members together have room for a quarter of what they
    /// may hold (at least one event): resuming it at every acknowledgement cost a scanner pass per
    /// few events. Members that keep less room than that get the rest at the next timer tick.
    private var hasRoomToResume: Bool {
        var room = 0
        var capacity = 0
        for member in members where !member.blocked {
            room += max(0, member.maxInFlight - member.inFlight.count)
            capacity += member.maxInFlight
        }
        return room > 0 && room >= capacity / 4
    }

    // MARK: Deadlines

    private func startTimer() {
        let period = max(5, min(settings.ackWaitMilliseconds / 4, 1000))
        let timer = DispatchSource.makeTimerSource(queue: queue)
        timer.schedule(deadline: .now() + .milliseconds(period), repeating: .milliseconds(period), leeway: .milliseconds(period / 4 + 1))
        timer.setEventHandler { [weak self] in self?.expire() }
        timer.resume()
        self.timer = timer
    }

    /// Takes back the deliveries whose time is up.
    private func expire() {
        lock.lock()
        defer { lock.unlock() }
        guard !closed else { return }
        let now = Self.nowMilliseconds()
        var due: [(id: UInt64, member: Int)] = []
        state.pending.forEach { id, entry in
            if entry.member >= 0 && entry.deadline <= now { due.append((id, entry.member)) }
        }
        if !due.isEmpty {
            for (id, member) in due {
                members.first(where: { $0.number == member })?.remove(id, timedOut: true)
                state.release(id, maxDeliver: UInt32(settings.maxDeliver))
            }
            scheduleSave()
            pump()
        }
        // Room below the resume threshold still gets events, a tick later.
        if feedPaused && state.nextReady == nil && members.contains(where: \.hasRoom) {
            feedPaused = false
            feed?.resume()
        }
    }

    // MARK: Saving

    /// Saves soon, as the collection's sync policy says: at once with `always`, within the
    /// interval with `interval`, within 10 ms (to the page cache) with `none`.
    private func scheduleSave() {
        guard !saveScheduled, !closed else { return }
        saveScheduled = true
        let work: @Sendable () -> Void = { [weak self] in self?.saveNow() }
        if case .never = saveDelay {
            queue.async(execute: work)
        } else {
            queue.asyncAfter(deadline: .now() + saveDelay, execute: work)
        }
    }

    /// Writes the current state (on `queue`).
    private func saveNow() {
        lock.lock()
        saveScheduled = false
        guard !closed else {
            lock.unlock()
            return
        }
        let snapshot = state
        lock.unlock()
        write(snapshot, sync: syncWrites)
    }

    private func write(_ snapshot: GroupState, sync: Bool) {
        do {
            try file.save(snapshot, sync: sync)
        } catch {
            collection.log.log(.error, "group \(name): saving its state failed: \(error)")
        }
    }

    /// Saves at once, synced (on creation).
    func saveSynchronously() {
        let snapshot = lock.withLock { state }
        queue.sync { write(snapshot, sync: syncWrites) }
    }

    /// Reads the state with `lock` held (`inout` only for the floor's lazy bookkeeping).
    func readState<Result>(_ body: (inout GroupState, [Member]) -> Result) -> Result {
        lock.lock()
        defer { lock.unlock() }
        return body(&state, members)
    }

    /// Changes the state with `lock` held; `body` returns how many events it changed, and any
    /// change is saved and delivered.
    func changeState(_ body: (inout GroupState) -> Int) -> Int {
        lock.lock()
        defer { lock.unlock() }
        let changed = body(&state)
        if changed > 0 {
            scheduleSave()
            pump()
        }
        return changed
    }

    // MARK: Lifecycle

    /// Ends every member with `end` and stops; with `persist`, the state is saved and synced
    /// first (a clean shutdown), else nothing is written again (a drop or a delete).
    func close(persist: Bool, end: SubscriptionEnd) {
        lock.lock()
        let wasClosed = closed
        closed = true
        let ending = members
        members.removeAll()
        let feed = self.feed
        self.feed = nil
        timer?.cancel()
        timer = nil
        let snapshot = state
        for member in ending { member.sink.finish(end) }
        lock.unlock()
        feed?.cancel()
        guard !wasClosed else { return }
        queue.sync {
            if persist { write(snapshot, sync: true) }
        }
    }

    /// Deletes the group's files (after ``close(persist:end:)``).
    func removeFiles() {
        queue.sync { file.remove() }
    }
}

/// The feed's sink: new events of the log, from one of the collection's scanners, to the group.
final class GroupFeed: SubscriptionSink, @unchecked Sendable {
    private weak var group: ConsumerGroup?

    init(group: ConsumerGroup) {
        self.group = group
    }

    func receive(_ event: EventView) -> Bool { group?.offer(event) ?? true }
    func flush() { group?.flushMembers() }
    func finish(_ end: SubscriptionEnd) {
        // The collection closes its groups before its scanners; a feed ending otherwise ends them.
        group?.close(persist: end == .closed, end: end)
    }
}

import Dispatch
import Foundation
import Synchronization

/// Work a lane runs in passes: a collection's writer, or one of its scanners.
protocol LaneWork: AnyObject, Sendable {
    /// Runs one pass (never two at once: an item always runs on the same lane); returns when it
    /// wants its next one.
    func runPass() -> LaneNext
}

enum LaneNext {
    /// When something schedules it again.
    case idle
    /// At once (it has more to do).
    case again
    /// At this time (``WorkLanes/now``, ms), or earlier if something schedules it.
    case at(UInt64)
}

/// A fixed set of threads (lanes) that run the passes of many work items: the writers of every
/// collection on one set, their scanners on another. The threads are as many as the machine
/// has cores (at least 2), whatever the number of collections; an item is tied to one lane for
/// its life, so its passes run one after another on one thread, and items spread over the lanes
/// in turn. The threads live as long as the process.
final class WorkLanes: Sendable {
    static let writers = WorkLanes(name: "exar-w")
    static let scanners = WorkLanes(name: "exar-s")

    let lanes: [Lane]
    private let next = Atomic<Int>(0)

    init(name: String, count: Int = max(2, ProcessInfo.processInfo.activeProcessorCount)) {
        lanes = (0..<count).map { Lane(name: "\(name)\($0)") }
    }

    /// A lane for a new item (the lanes in turn), and the index it had.
    func assign() -> (lane: Lane, index: Int) {
        let index = next.wrappingAdd(1, ordering: .relaxed).oldValue
        return (lanes[index % lanes.count], index)
    }

    func lane(_ index: Int) -> Lane { lanes[index % lanes.count] }

    /// Monotonic milliseconds.
    static var now: UInt64 { DispatchTime.now().uptimeNanoseconds / 1_000_000 }

    final class Lane: @unchecked Sendable {  // guarded by `condition`
        private let condition = NSCondition()
        private var ready: [any LaneWork] = []
        private var readySet = Set<ObjectIdentifier>()
        private var timed: [ObjectIdentifier: (work: any LaneWork, at: UInt64)] = [:]
        /// The times in `timed`, earliest first; an entry whose item was rescheduled or has run
        /// is stale and skipped (`timed` says which is current). A lane with thousands of timed
        /// items finds the due ones without looking at the others.
        private var deadlines = DeadlineHeap()
        private var thread: JoinableThread?

        init(name: String) {
            thread = JoinableThread(name: name) { [unowned self] in run() }
        }

        /// Runs a pass of `work` soon (once, however often it is asked before the pass begins).
        func schedule(_ work: any LaneWork) {
            condition.lock()
            let id = ObjectIdentifier(work)
            if readySet.insert(id).inserted {
                ready.append(work)
                if ready.count == 1 { condition.signal() }
            }
            condition.unlock()
        }

        /// Runs a pass of `work` at `time` (``WorkLanes/now``) at the latest.
        func schedule(_ work: any LaneWork, at time: UInt64) {
            condition.lock()
            let id = ObjectIdentifier(work)
            if let existing = timed[id], existing.at <= time {
                condition.unlock()
                return
            }
            timed[id] = (work, time)
            deadlines.insert(Deadline(at: time, id: id))
            condition.signal()
            condition.unlock()
        }

        private func run() {
            var batch: [any LaneWork] = []
            while true {
                condition.lock()
                while true {
                    if let first = deadlines.first {
                        let now = WorkLanes.now
                        var earliest = first.at
                        while let due = deadlines.first {
                            guard due.at <= now else {
                                earliest = due.at
                                break
                            }
                            deadlines.removeFirst()
                            earliest = .max
                            guard let entry = timed[due.id], entry.at == due.at else { continue }  // stale
                            timed[due.id] = nil
                            if readySet.insert(due.id).inserted { ready.append(entry.work) }
                        }
                        if ready.isEmpty && earliest != .max {
                            _ = condition.wait(until: Date(timeIntervalSinceNow: Double(earliest - now) / 1000))
                            continue
                        }
                    }
                    if !ready.isEmpty { break }
                    condition.wait()
                }
                swap(&batch, &ready)
                readySet.removeAll(keepingCapacity: true)
                condition.unlock()
                for work in batch {
                    switch work.runPass() {
                    case .idle: break
                    case .again: schedule(work)
                    case .at(let time): schedule(work, at: time)
                    }
                }
                batch.removeAll(keepingCapacity: true)
            }
        }
    }
}

/// When a timed item is due, ordered by time.
struct Deadline: Comparable {
    let at: UInt64
    let id: ObjectIdentifier

    static func < (lhs: Deadline, rhs: Deadline) -> Bool {
        lhs.at < rhs.at
    }

    static func == (lhs: Deadline, rhs: Deadline) -> Bool {
        lhs.at == rhs.at && lhs.id == rhs.id
    }
}

/// A binary min-heap of deadlines.
struct DeadlineHeap {
    private var items: [Deadline] = []

    var first: Deadline? { items.first }
    var count: Int { items.count }

    mutating func insert(_ deadline: Deadline) {
        items.append(deadline)
        var child = items.count - 1
        while child > 0 {
            let parent = (child - 1) / 2
            guard items[child] < items[parent] else { break }
            items.swapAt(child, parent)
            child = parent
        }
    }

    @discardableResult
    mutating func removeFirst() -> Deadline {
        let first = items[0]
        let last = items.removeLast()
        guard !items.isEmpty else { return first }
        items[0] = last
        var parent = 0
        while true {
            let left = 2 * parent + 1
            guard left < items.count else { break }
            let right = left + 1
            let smaller = right < items.count && items[right] < items[left] ? right : left
            guard items[smaller] < items[parent] else { break }
            items.swapAt(smaller, parent)
            parent = smaller
        }
        return first
    }
}

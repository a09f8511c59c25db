@testable import ExarCore
import Foundation
import Synchronization
import Testing

@Suite struct WorkLanesTests {
    @Test func theDeadlineHeapGivesTimesInOrder() {
        var random = SplitMix64(state: 42)
        var heap = DeadlineHeap()
        var model: [UInt64] = []
        let owner = NSObject()
        for step in 0..<5000 {
            if model.isEmpty || random.next() % 3 != 0 {
                let at = random.next() % 1000
                heap.insert(Deadline(at: at, id: ObjectIdentifier(owner)))
                model.append(at)
            } else {
                let smallest = model.min()!
                #expect(heap.removeFirst().at == smallest, "step \(step)")
                model.remove(at: model.firstIndex(of: smallest)!)
            }
            #expect(heap.count == model.count)
        }
    }

    /// An item that asks for passes at times: each runs once it is due, not before, however many
    /// other items wait on the same lane.
    final class TimedWork: LaneWork, @unchecked Sendable {
        let runs = Mutex<[UInt64]>([])
        let wanted: UInt64

        init(wanted: UInt64) { self.wanted = wanted }

        func runPass() -> LaneNext {
            runs.withLock { $0.append(WorkLanes.now) }
            return .idle
        }
    }

    @Test func timedPassesRunWhenDueAmongThousandsWaiting() async throws {
        let lanes = WorkLanes(name: "test-lane", count: 1)
        let lane = lanes.lane(0)
        let start = WorkLanes.now
        // Two thousand far in the future, and a few soon.
        let far = (0..<2000).map { _ in TimedWork(wanted: start + 60_000) }
        for work in far { lane.schedule(work, at: work.wanted) }
        let soon = (1...5).map { TimedWork(wanted: start + 50 * UInt64($0)) }
        for work in soon.reversed() { lane.schedule(work, at: work.wanted) }
        // Rescheduling one earlier supersedes its later time (which is then stale).
        lane.schedule(far[0], at: start + 20)
        try await waitUntil(seconds: 10) { soon.allSatisfy { !$0.runs.withLock { $0 }.isEmpty } }
        for work in soon {
            let runs = work.runs.withLock { $0 }
            #expect(runs.count == 1)
            #expect(runs[0] >= work.wanted, "ran at \(runs[0]), due at \(work.wanted)")
        }
        #expect(far[0].runs.withLock { $0 }.count == 1)
        #expect(far.dropFirst().allSatisfy { $0.runs.withLock { $0 }.isEmpty })
    }
}

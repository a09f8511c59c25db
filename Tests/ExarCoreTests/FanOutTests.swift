@testable import ExarCore
import ExarModel
import Foundation
import Synchronization
import Testing

/// Many subscriptions at one place share each read, delivered member by member (from
/// `Scanner.gatherFrom` members): each still gets exactly its events, with limits, tags,
/// pauses and cancels.
@Suite struct FanOutTests {
    /// A sink that asks to pause every `every` events; `resume` is then called from outside.
    final class PausingSink: SubscriptionSink, @unchecked Sendable {
        private let lock = NSLock()
        private var received: [UInt64] = []
        private var ended: SubscriptionEnd?
        private let every: Int

        init(every: Int) { self.every = every }

        func receive(_ event: EventView) -> Bool {
            lock.withLock {
                received.append(event.id)
                return received.count % every != 0
            }
        }

        func flush() {}
        func finish(_ end: SubscriptionEnd) { lock.withLock { ended = end } }
        var ids: [UInt64] { lock.withLock { received } }
        var end: SubscriptionEnd? { lock.withLock { ended } }
    }

    @Test func manySubscribersAtOnePlaceEachGetTheirEvents() async throws {
        let folder = TemporaryFolder()
        let database = try makeDatabase(folder, segmentSize: 64 * 1024, scanners: 1)
        defer { database.close() }
        let collection = try database.collection("fan")
        _ = try await collection.publishNumbered(0, count: 300, tags: { ["t\($0 % 3)"] })
        let total = 3000
        // Plain live ones from the start, ones with a limit, ones with a tag, pausing ones and
        // ones cancelled on the way: more than enough to share reads.
        let plain = (0..<12).map { _ in CollectingSink() }
        let limited = (0..<4).map { _ in CollectingSink() }
        let tagged = (0..<4).map { _ in CollectingSink() }
        // Each pause waits for the resumer and a pass of the shared scanner lanes, which other suites
        // keep busy (under TSan a CI run took over 30 s for pauses every 7-12 events): some tens each.
        let pausing = (0..<6).map { PausingSink(every: 50 + 7 * $0) }
        let cancelled = (0..<4).map { _ in CollectingSink() }
        let plainSubs = try plain.map { try collection.subscribe(Query(live: true), sink: $0) }
        let limitedSubs = try limited.enumerated().map { number, sink in
            try collection.subscribe(Query(live: true, limit: UInt64(100 + 500 * number)), sink: sink)
        }
        let taggedSubs = try tagged.map { try collection.subscribe(Query(live: true, tag: "t1"), sink: $0) }
        let pausingSubs = try pausing.map { try collection.subscribe(Query(live: true), sink: $0) }
        let cancelledSubs = try cancelled.map { try collection.subscribe(Query(live: true), sink: $0) }
        let resumer = Task.detached {
            while !Task.isCancelled {
                for subscription in pausingSubs { subscription.resume() }
                try? await Task.sleep(for: .milliseconds(1))
            }
        }
        _ = try await collection.publishNumbered(300, count: total - 300, tags: { ["t\($0 % 3)"] })
        for (number, subscription) in cancelledSubs.enumerated() where number % 2 == 0 { subscription.cancel() }
        let all = Array(1...UInt64(total))
        try await waitUntil(seconds: 90) {
            plain.allSatisfy { $0.events.count == total } && pausing.allSatisfy { $0.ids.count == total }
                && limited.enumerated().allSatisfy { $1.end != nil }
                && tagged.allSatisfy { $0.events.count == total / 3 }
        }
        resumer.cancel()
        for sink in plain { #expect(sink.events.map(\.id) == all) }
        #expect(plain[0].events.map(\.data) == (0..<total).map { sampleData($0) })
        for (number, sink) in limited.enumerated() {
            #expect(sink.events.map(\.id) == Array(all.prefix(100 + 500 * number)))
            #expect(sink.end == .endOfStream)
        }
        for sink in tagged {
            #expect(sink.events.map(\.id) == all.filter { ($0 - 1) % 3 == 1 })
            #expect(sink.events.allSatisfy { $0.tags == ["t1"] })
        }
        for sink in pausing { #expect(sink.ids == all) }
        for (number, sink) in cancelled.enumerated() {
            let ids = sink.events.map(\.id)
            // A cancelled one got a prefix of the events (none after its cancel is checked).
            #expect(ids == Array(all.prefix(ids.count)))
            if number % 2 == 1 { try await waitUntil { sink.events.count == total } }
            #expect(sink.end == nil)
        }
        for subscription in plainSubs + limitedSubs + taggedSubs + pausingSubs + cancelledSubs { subscription.cancel() }
    }
}

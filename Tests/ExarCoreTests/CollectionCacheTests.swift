@testable import ExarCore
import ExarModel
import Foundation
import Synchronization
import Testing

/// The cache of open collections (`max_open_collections`): idle collections are closed past the
/// bound and reopen on their next lease, with nothing lost, repeated or rescanned; collections
/// in use (leased, subscribed, pinned) stay open.
@Suite struct CollectionCacheTests {
    private func makeCachedDatabase(_ folder: TemporaryFolder, limit: Int) throws -> Database {
        var configuration = DatabaseConfiguration(
            logsPath: folder.path,
            defaults: CollectionConfiguration(segmentSize: 64 * 1024, indexIntervalBytes: 1024,
                                              scanners: ScannerConfiguration(count: 2, sleepTimeMilliseconds: 5)))
        configuration.maxOpenCollections = limit
        return try Database(configuration: configuration)
    }

    @Test func idleCollectionsPastTheBoundAreClosedAndReopenWithoutARescan() async throws {
        let folder = TemporaryFolder()
        let database = try makeCachedDatabase(folder, limit: 8)
        defer { database.close() }
        for number in 0..<40 {
            let lease = try database.lease("c\(number)")
            // Three segments' worth for some, so reopening also finds sealed segments.
            let count = number % 5 == 0 ? 1500 : 3
            _ = try await lease.collection.publishNumbered(0, count: count)
        }
        #expect(database.statistics().count <= 8, "open: \(database.statistics().count)")
        // Closed on the cache's queue, soon after they were taken out.
        try await waitUntil { database.collectionsClosedByCache >= 32 }
        for number in 0..<40 {
            let lease = try database.lease("c\(number)")
            let count = number % 5 == 0 ? 1500 : 3
            #expect(lease.collection.recoveryNotes.isEmpty, "c\(number) was repaired: \(lease.collection.recoveryNotes)")
            // Trusted from the header its close sealed: not scanned (a scan verifies as it goes).
            let last = try #require(lease.collection.log.segments.last)
            #expect(last.verifiedEnd.load(ordering: .relaxed) == Format.Segment.headerSize, "c\(number) was scanned")
            let events = try lease.collection.read(.all)
            #expect(events.map(\.id) == Array(1...UInt64(count)))
            #expect(events.map(\.data) == (0..<count).map { sampleData($0) })
            // It takes more events after reopening, from the next id.
            #expect(try await lease.collection.publish(Event(tags: ["t"], data: "after")) == UInt64(count) + 1)
        }
    }

    @Test func collectionsInUseAreNeverClosed() async throws {
        let folder = TemporaryFolder()
        let database = try makeCachedDatabase(folder, limit: 4)
        defer { database.close() }
        let held = try (0..<6).map { try database.lease("held\($0)") }
        let pinned = try database.collection("pinned")
        // A subscription whose lease is gone keeps its collection open too.
        let sink = CollectingSink()
        let subscription = try database.lease("subscribed").collection.subscribe(Query(live: true), sink: sink)
        for number in 0..<20 {
            try await database.lease("idle\(number)").collection.publish(Event(tags: ["t"], data: "x"))
        }
        let open = Set(database.statistics().map(\.name))
        for lease in held { #expect(open.contains(lease.collection.name)) }
        #expect(open.contains("pinned") && open.contains("subscribed"), "open: \(open.sorted())")
        try await waitUntil { database.collectionsClosedByCache > 0 }
        // They still work: the subscribed one delivers, the held ones and the pinned one take events.
        let subscribed = try #require(database.openLease("subscribed"))
        try await subscribed.collection.publish(Event(tags: ["t"], data: "live"))
        #expect(sink.wait { $0.events.count == 1 })
        #expect(sink.events.map(\.data) == ["live"])
        try await held[0].collection.publish(Event(tags: ["t"], data: "y"))
        try await pinned.publish(Event(tags: ["t"], data: "z"))
        #expect(sink.end == nil)
        subscription.cancel()
    }

    /// Publishers and live subscribers on more collections than the cache keeps open, taking and
    /// dropping leases at random: every acknowledged event is stored once, in order, and every
    /// subscriber sees the ids after its offset with no gap and no repeat.
    @Test func randomUseOfMoreCollectionsThanTheCacheKeeps() async throws {
        let folder = TemporaryFolder()
        let database = try makeCachedDatabase(folder, limit: 4)
        defer { database.close() }
        let names = (0..<12).map { "r\($0)" }
        let published = Locked<[String: [String]]>([:])
        let problems = Locked<[String]>([])
        try await withThrowingTaskGroup(of: Void.self) { group in
            for worker in 0..<6 {
                group.addTask {
                    var random = SplitMix64(state: UInt64(worker) &* 0x9E37_79B9_7F4A_7C15 &+ 7)
                    for step in 0..<60 {
                        let name = names[Int(random.next() % UInt64(names.count))]
                        let lease = try database.lease(name)
                        if random.next() % 3 == 0 {
                            // A live subscriber from some earlier id, until it has seen a few new events.
                            let last = lease.collection.lastId
                            let offset = last == 0 ? 0 : random.next() % (last + 1)
                            let sink = CollectingSink()
                            let subscription = try lease.collection.subscribe(Query(live: true, offset: offset), sink: sink)
                            let data = "w\(worker)-s\(step)"
                            let id = try await lease.collection.publish(Event(tags: ["t"], data: data))
                            published.withLock { $0[name, default: []].append(data) }
                            let complete = sink.wait(seconds: 20) { $0.events.last.map { $0.id >= id } ?? false }
                            subscription.cancel()
                            let ids = sink.events.map(\.id)
                            if !complete || ids.first != offset + 1 || zip(ids, ids.dropFirst()).contains(where: { $1 != $0 + 1 }) {
                                problems.withLock { $0.append("\(name) from \(offset): got \(ids.prefix(3))...\(ids.suffix(3)), wanted up to \(id)") }
                            }
                        } else {
                            let count = Int(random.next() % 20) + 1
                            let data = (0..<count).map { "w\(worker)-p\(step)-\($0)" }
                            _ = try await lease.collection.publish(data.map { Event(tags: ["t"], data: $0) })
                            published.withLock { $0[name, default: []].append(contentsOf: data) }
                        }
                    }
                }
            }
            try await group.waitForAll()
        }
        #expect(problems.withLock { $0 }.isEmpty, "\(problems.withLock { $0 })")
        try await waitUntil { database.collectionsClosedByCache > 0 }
        let expected = published.withLock { $0 }
        for name in names {
            let events = try database.lease(name).collection.read(.all)
            let wanted = expected[name] ?? []
            #expect(events.map(\.id) == Array(stride(from: UInt64(1), through: UInt64(wanted.count), by: 1)))
            // Each publisher's events in its order, every acknowledged one exactly once.
            #expect(events.map(\.data).sorted() == wanted.sorted(), "\(name)")
        }
    }
}

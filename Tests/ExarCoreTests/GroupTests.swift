import ExarCore
import ExarModel
import Foundation
import Testing

/// A group member's sink: records the ids handed to it and how it ended; can refuse room.
final class MemberSink: SubscriptionSink, @unchecked Sendable {
    private let lock = NSLock()
    private var _ids: [UInt64] = []
    private var _end: SubscriptionEnd?
    /// After this many events the sink reports its transport full, for good.
    private let room: Int

    init(room: Int = .max) { self.room = room }

    func receive(_ event: EventView) -> Bool {
        lock.withLock {
            _ids.append(event.id)
            return _ids.count < room
        }
    }

    func flush() {}
    func finish(_ end: SubscriptionEnd) { lock.withLock { _end = end } }

    var ids: [UInt64] { lock.withLock { _ids } }
    var end: SubscriptionEnd? { lock.withLock { _end } }
}

/// The acknowledgement wait is an hour unless a test is about it: sanitizer runs take minutes.
private func groupDatabase(_ folder: TemporaryFolder, ackWait: Int = 3_600_000, maxDeliver: Int = 5,
                           sync: SyncPolicy = .none) throws -> Database {
    var defaults = CollectionConfiguration(segmentSize: 64 * 1024, indexIntervalBytes: 1024, sync: sync,
                                           scanners: ScannerConfiguration(count: 2, sleepTimeMilliseconds: 20))
    defaults.groups = GroupSettings(ackWaitMilliseconds: ackWait, maxDeliver: maxDeliver)
    return try Database(configuration: DatabaseConfiguration(logsPath: folder.path, defaults: defaults))
}

private func publishNumbered(_ collection: ExarCore.Collection, _ range: ClosedRange<Int>, tags: (Int) -> String = { _ in "work" }) async throws {
    for n in range {
        try await collection.publish(Event(tags: [tags(n)], data: sampleData(n, size: 40)))
    }
}

@Suite struct GroupTests {
    @Test func membersShareTheEventsAndTheFloorFollowsTheAcknowledgements() async throws {
        let folder = TemporaryFolder()
        let database = try groupDatabase(folder)
        defer { database.close() }
        let collection = try database.collection("jobs")
        try await publishNumbered(collection, 1...300)
        let sinks = (0..<4).map { _ in MemberSink() }
        let members = try sinks.map { try collection.join(group: "workers", offset: 0, maxInFlight: 0, tag: nil, sink: $0) }
        try await publishNumbered(collection, 301...600)
        try await waitUntil { sinks.reduce(0) { $0 + $1.ids.count } == 600 }
        let all = sinks.flatMap(\.ids).sorted()
        #expect(all == Array(1...600))
        for sink in sinks { #expect(sink.ids.count > 50, "round robin: each member got a share, not \(sink.ids.count)") }
        var statistics = try #require(collection.group("workers"))
        #expect(statistics.ackedFloor == 0 && statistics.inFlight == 600 && statistics.members == 4)
        // Cumulative acknowledgements, each of a member's own events only.
        for (sink, member) in zip(sinks, members) { member.ack(upTo: sink.ids.max()!) }
        statistics = try #require(collection.group("workers"))
        #expect(statistics.ackedFloor == 600 && statistics.inFlight == 0 && statistics.position == 600)
    }

    @Test func maxInFlightCapsAMemberAndALeavingMembersEventsGoToTheOthers() async throws {
        let folder = TemporaryFolder()
        let database = try groupDatabase(folder)
        defer { database.close() }
        let collection = try database.collection("jobs")
        try await publishNumbered(collection, 1...40)
        let slow = MemberSink()
        let slowMember = try collection.join(group: "g", offset: 0, maxInFlight: 5, tag: nil, sink: slow)
        try await waitUntil { slow.ids.count == 5 }
        try await Task.sleep(for: .milliseconds(100))
        #expect(slow.ids == [1, 2, 3, 4, 5])
        slowMember.ack(upTo: 2)
        try await waitUntil { slow.ids.count == 7 }
        #expect(slow.ids == [1, 2, 3, 4, 5, 6, 7])
        let other = MemberSink()
        let otherMember = try collection.join(group: "g", offset: 0, maxInFlight: 100, tag: nil, sink: other)
        slowMember.leave()
        #expect(slow.end == .endOfStream)
        // If the other member holds 8...40 already, the released 3...7 wait until it holds
        // nothing above them (a member is never handed an id below one it holds).
        try await waitUntil { other.ids.count >= 33 }
        otherMember.ack(upTo: try #require(other.ids.last))
        try await waitUntil { other.ids.count == 38 }
        #expect(other.ids.sorted() == Array(3...40))
        otherMember.ack(upTo: try #require(other.ids.last))
        #expect(collection.group("g")?.ackedFloor == 40)
        #expect(collection.group("g")?.redelivered == 5)
    }

    @Test func unacknowledgedEventsAreRedeliveredAfterTheWaitAndParkedAfterMaxDeliver() async throws {
        let folder = TemporaryFolder()
        let database = try groupDatabase(folder, ackWait: 300, maxDeliver: 2)
        defer { database.close() }
        let collection = try database.collection("jobs")
        try await publishNumbered(collection, 1...3)
        let sink = MemberSink()
        let member = try collection.join(group: "g", offset: 0, maxInFlight: 10, tag: nil, sink: sink)
        try await waitUntil { collection.group("g")?.parked.count == 3 }
        #expect(sink.ids.sorted() == [1, 1, 2, 2, 3, 3])
        var statistics = try #require(collection.group("g"))
        #expect(statistics.parked.map(\.id) == [1, 2, 3] && statistics.parked.allSatisfy { $0.deliveries == 2 })
        #expect(statistics.ackedFloor == 3 && statistics.parkedTotal == 3 && statistics.inFlight == 0)
        // Parked events come back on request, with a fresh count; an acknowledgement then settles
        // them, and (cumulative) the parked 1 this member was handed before, but not 3.
        #expect(collection.redeliverParked(group: "g", ids: [2]) == 1)
        try await waitUntil { sink.ids.count == 7 }
        member.ack(upTo: 2)
        statistics = try #require(collection.group("g"))
        #expect(statistics.parked.map(\.id) == [3] && statistics.ackedFloor == 3)
        #expect(collection.discardParked(group: "g", ids: nil) == 1)
        #expect(collection.group("g")?.parked.isEmpty == true)
    }

    @Test func aLateAcknowledgementCountsUnlessTheGroupHadTheEventAcknowledgedSince() async throws {
        let folder = TemporaryFolder()
        // A deadline long enough for a sanitizer's slowness, and no parking: only the first
        // deadline matters here (later ones just hand 1 and 2 to the second member again).
        let database = try groupDatabase(folder, ackWait: 3000, maxDeliver: 1000)
        defer { database.close() }
        let collection = try database.collection("jobs")
        try await publishNumbered(collection, 1...2)
        // The first member reads 1 and 2, then its transport is full; at their deadline they go to
        // the second member, which holds them without acknowledging.
        let first = MemberSink(room: 2)
        let firstMember = try collection.join(group: "g", offset: 0, maxInFlight: 10, tag: nil, sink: first)
        try await waitUntil { first.ids.count == 2 }
        let second = MemberSink()
        let secondMember = try collection.join(group: "g", offset: 0, maxInFlight: 10, tag: nil, sink: second)
        try await waitUntil { second.ids.count >= 2 }
        #expect(first.ids == [1, 2] && second.ids.prefix(2) == [1, 2], "\(first.ids) \(second.ids)")
        // The first member's Ack arrives late. It counts for what it covers (ids up to it, handed
        // out before it), wherever those are now; the second member no longer holds them.
        firstMember.ack(upTo: 1)
        var statistics = try #require(collection.group("g"))
        #expect(statistics.ackedFloor == 1 && statistics.inFlight + statistics.waiting == 1, "\(statistics)")
        firstMember.ack(upTo: 2)
        statistics = try #require(collection.group("g"))
        #expect(statistics.ackedFloor == 2 && statistics.inFlight + statistics.waiting == 0 && statistics.parked.isEmpty, "\(statistics)")
        // The second member's Ack of them changes nothing; it goes on with new events.
        secondMember.ack(upTo: 2)
        try await publishNumbered(collection, 3...4)
        try await waitUntil { second.ids.suffix(2) == [3, 4] }
        secondMember.ack(upTo: 4)
        statistics = try #require(collection.group("g"))
        #expect(statistics.ackedFloor == 4 && statistics.inFlight == 0 && first.ids == [1, 2], "\(statistics)")
    }

    @Test func aGroupResumesAfterReopenAndKeepsItsTag() async throws {
        let folder = TemporaryFolder()
        do {
            let database = try groupDatabase(folder)
            let collection = try database.collection("jobs")
            try await publishNumbered(collection, 1...20) { $0 % 2 == 0 ? "even" : "odd" }
            let sink = MemberSink()
            let member = try collection.join(group: "evens", offset: 0, maxInFlight: 4, tag: "even", sink: sink)
            try await waitUntil { sink.ids.count == 4 }
            #expect(sink.ids == [2, 4, 6, 8])
            member.ack(upTo: 4)
            try await waitUntil { sink.ids.count == 6 }
            #expect(throws: ExarError.subscription("group evens reads tag even")) {
                _ = try collection.join(group: "evens", offset: 0, maxInFlight: 0, tag: nil, sink: MemberSink())
            }
            database.close()
            #expect(sink.end == .closed)
        }
        // After a clean close, what was acknowledged is not delivered again; what was in flight is.
        let database = try groupDatabase(folder)
        defer { database.close() }
        let collection = try database.collection("jobs")
        let statistics = try #require(collection.group("evens"))
        #expect(statistics.ackedFloor == 5 && statistics.tag == "even" && statistics.waiting == 4)
        let sink = MemberSink()
        let member = try collection.join(group: "evens", offset: 0, maxInFlight: 0, tag: "even", sink: sink)
        try await publishNumbered(collection, 21...22) { $0 % 2 == 0 ? "even" : "odd" }
        try await waitUntil { sink.ids.count == 9 }
        #expect(sink.ids == [6, 8, 10, 12, 14, 16, 18, 20, 22])
        member.ack(upTo: 22)
        #expect(collection.group("evens")?.ackedFloor == 22)
        #expect(collection.deleteGroup("evens"))
        #expect(sink.end == .endOfStream)
        #expect(collection.group("evens") == nil)
        #expect(!FileManager.default.fileExists(atPath: folder.path + "/jobs/groups/evens.0"))
    }

    @Test func invalidJoinsAreRefused() async throws {
        let folder = TemporaryFolder()
        let database = try groupDatabase(folder)
        defer { database.close() }
        let collection = try database.collection("jobs")
        for name in ["", ".", "..", "a/b", "a b", "a\tb"] {
            #expect(throws: ExarError.self) { _ = try collection.join(group: name, offset: 0, maxInFlight: 0, tag: nil, sink: MemberSink()) }
        }
        #expect(throws: ExarError.self) { _ = try collection.join(group: "g", offset: 0, maxInFlight: 100_001, tag: nil, sink: MemberSink()) }
        #expect(collection.groups.isEmpty)
    }

    /// Members join, leave, ack late or never, against a model: at the end every event is
    /// acknowledged exactly once and nothing was lost; redeliveries only of unacknowledged events.
    @Test(arguments: [UInt64(1), 2, 3])
    func randomMembersAgainstAModel(seed: UInt64) async throws {
        let folder = TemporaryFolder()
        let database = try groupDatabase(folder, maxDeliver: 1000)
        defer { database.close() }
        let collection = try database.collection("jobs")
        var random = seed
        func next(_ bound: UInt64) -> UInt64 {
            random = random &* 6364136223846793005 &+ 1442695040888963407
            return (random >> 33) % bound
        }
        let total = 1000
        var acked = Set<UInt64>()
        var members: [(MemberSink, GroupMembership, Int)] = []  // sink, handle, ids of sink already seen
        var published = 0
        let deadline = Date().addingTimeInterval(600)
        while Date() < deadline {
            if published < total {
                let n = Int(next(50)) + 1
                try await publishNumbered(collection, published + 1...min(total, published + n))
                published = min(total, published + n)
            }
            switch next(10) {
            case 0 where members.count < 5, _ where members.isEmpty:
                let sink = MemberSink()
                members.append((sink, try collection.join(group: "g", offset: 0, maxInFlight: Int(next(20)) + 1, tag: nil, sink: sink), 0))
            case 1 where members.count > 1:
                let index = Int(next(UInt64(members.count)))
                members.remove(at: index).1.leave()
            default:
                break
            }
            try await Task.sleep(for: .milliseconds(2))
            // Most members ack what they got (the model records every id acknowledged); some stall.
            for index in members.indices where next(4) != 0 {
                let (sink, member, _) = members[index]
                let ids = sink.ids
                guard let top = ids.max() else { continue }
                let statisticsBefore = collection.group("g")!.ackedFloor
                member.ack(upTo: top)
                members[index].2 = ids.count
                for id in ids where id <= top { acked.insert(id) }
                #expect(collection.group("g")!.ackedFloor >= statisticsBefore)
            }
            if published == total, let statistics = collection.group("g"), statistics.ackedFloor == UInt64(total) { break }
        }
        let statistics = try #require(collection.group("g"))
        #expect(statistics.ackedFloor == UInt64(total) && statistics.inFlight == 0 && statistics.waiting == 0)
        #expect(statistics.parked.isEmpty && statistics.lost == 0)
        // Every id was delivered; redeliveries are counted, and only of ids delivered before.
        let delivered = members.flatMap { $0.0.ids }
        #expect(Set(delivered).isSubset(of: Set(1...UInt64(total))))
        #expect(acked.isSuperset(of: Set(delivered)))
    }
}

import ExarCore
import ExarModel
import Foundation
import Synchronization
import Testing

/// Conditional publishes (`PublishIf`) on real files: the check and the append as one step of the
/// writer, checked against a model of each tag's history.
@Suite struct PublishIfTests {
    private func conflict(_ body: () async throws -> Void) async -> UInt64? {
        do {
            try await body()
            return nil
        } catch let error as ExarError {
            guard case .conflict(let actual) = error else { Issue.record("not a conflict: \(error)"); return nil }
            return actual
        } catch {
            Issue.record("\(error)")
            return nil
        }
    }

    @Test func theExpectedIdDecidesAndNothingIsStoredOnAConflict() async throws {
        let folder = TemporaryFolder()
        let database = try makeDatabase(folder)
        defer { database.close() }
        let collection = try database.collection("c")
        let first = try await collection.publish(Event(tags: ["order-7"], data: "created"), expecting: try PublishCondition(tag: "order-7", expectedId: 0))
        #expect(first == 1)
        // A plain publish of another tag in between does not matter.
        try await collection.publish(Event(tags: ["other"], data: "x"))
        #expect(await conflict { try await collection.publish(Event(tags: ["order-7"], data: "again"), expecting: try PublishCondition(tag: "order-7", expectedId: 0)) } == 1)
        #expect(await conflict { try await collection.publish(Event(tags: ["order-7"], data: "late"), expecting: try PublishCondition(tag: "order-7", expectedId: 2)) } == 1)
        #expect(collection.lastId == 2)
        let third = try await collection.publish(Event(tags: ["order-7", "paid"], data: "paid"), expecting: try PublishCondition(tag: "order-7", expectedId: 1))
        #expect(third == 3)
        // A plain publish carrying the tag moves its last id as well.
        try await collection.publish(Event(tags: ["x", "order-7"], data: "plain"))
        #expect(await conflict { try await collection.publish(Event(tags: ["order-7"], data: "stale"), expecting: try PublishCondition(tag: "order-7", expectedId: 3)) } == 4)
        // An event need not carry the tag it is conditional on: the tag's last id stays.
        let fifth = try await collection.publish(Event(tags: ["audit"], data: "checked"), expecting: try PublishCondition(tag: "order-7", expectedId: 4))
        #expect(fifth == 5)
        #expect(collection.lastId(ofTag: "order-7") == 4)
        #expect(collection.lastId(ofTag: "audit") == 5)
        #expect(collection.lastId(ofTag: "never") == 0)
        // A tag is one tag: a prefix or a longer tag is another one.
        #expect(collection.lastId(ofTag: "order") == 0)
        #expect(throws: ExarError.self) { try PublishCondition(tag: "a b", expectedId: 0) }
        #expect(throws: ExarError.self) { try PublishCondition(tag: "", expectedId: 0) }
        let stored = try collection.read(Query(live: false, offset: 0))
        #expect(stored.map(\.data) == ["created", "x", "paid", "plain", "checked"])
    }

    /// Writers race on a few tags, each retrying with the id its conflict names; a plain publisher
    /// adds events of the same tags. Every conditional event must follow the previous event of its
    /// tag's history exactly; the ids conflicts name must be in that history.
    @Test(arguments: [SyncPolicy.none, .always])
    func racingWritersFormOneHistoryPerTag(sync: SyncPolicy) async throws {
        let folder = TemporaryFolder()
        let tags = ["a", "b", "c"]
        let rounds = sync == .always ? 40 : 150
        var conflicts: [(tag: String, actual: UInt64)] = []
        do {
            // Small segments: the histories cross many rolls.
            let database = try makeDatabase(folder, segmentSize: 16 * 1024, indexInterval: 512, sync: sync)
            let collection = try database.collection("c")
            conflicts = try await withThrowingTaskGroup(of: [(tag: String, actual: UInt64)].self) { group in
                for writer in 0..<6 {
                    group.addTask {
                        var seen: [(tag: String, actual: UInt64)] = []
                        var expected: [String: UInt64] = [:]
                        for round in 0..<rounds {
                            let tag = tags[(writer + round) % tags.count]
                            while true {
                                let expect = expected[tag] ?? 0
                                let event = Event(tags: [tag], data: "w\(writer) r\(round) after \(expect)")
                                do {
                                    let id = try await collection.publish(event, expecting: try PublishCondition(tag: tag, expectedId: expect))
                                    expected[tag] = id
                                    break
                                } catch ExarError.conflict(let actual) {
                                    #expect(actual != expect)
                                    seen.append((tag, actual))
                                    expected[tag] = actual
                                }
                            }
                        }
                        return seen
                    }
                }
                group.addTask {
                    for number in 0..<300 {
                        try await collection.publish(Event(tags: [tags[number % 3], "plain"], data: "plain \(number)"))
                    }
                    return []
                }
                return try await group.reduce(into: []) { $0.append(contentsOf: $1) }
            }
            database.close()
        }
        #expect(!conflicts.isEmpty, "the writers never raced")
        // Reopened: the histories are read from disk, and the cache starts empty.
        let database = try makeDatabase(folder, segmentSize: 16 * 1024, indexInterval: 512)
        defer { database.close() }
        let collection = try database.collection("c")
        let events = try collection.read(Query(live: false, offset: 0))
        #expect(events.count == 6 * rounds + 300)
        for tag in tags {
            let history = events.filter { $0.tags.contains(tag) }
            var previous: UInt64 = 0
            for event in history {
                if !event.tags.contains("plain") {
                    let after = UInt64(event.data.split(separator: " ").last!)!
                    #expect(after == previous, "event \(event.id) of \(tag) expected \(after), the previous was \(previous)")
                }
                previous = event.id
            }
            #expect(collection.lastId(ofTag: tag) == previous)
            let ids = Set(history.map(\.id))
            for conflict in conflicts where conflict.tag == tag {
                #expect(conflict.actual == 0 || ids.contains(conflict.actual), "conflict named \(conflict.actual), not an event of \(tag)")
            }
        }
    }

    @Test func afterAReopenTheLastIdIsFoundInTheFilesAcrossSegments() async throws {
        let folder = TemporaryFolder()
        var last: [String: UInt64] = [:]
        do {
            let database = try makeDatabase(folder, segmentSize: 16 * 1024, indexInterval: 512, compression: .lz4)
            let collection = try database.collection("c")
            var events: [Event] = []
            for number in 0..<3000 {
                // Tag "rare" only in the first few hundred events: many segments later have none.
                let tags = number < 400 && number % 97 == 0 ? ["rare", "t\(number % 5)"] : ["t\(number % 5)"]
                events.append(Event(tags: tags, data: sampleData(number, size: 40)))
                if events.count == 50 {
                    let ids = try await collection.publish(events)
                    for (id, event) in zip(ids, events) { for tag in event.tags { last[tag] = id } }
                    events.removeAll()
                }
            }
            database.close()
        }
        let database = try makeDatabase(folder, segmentSize: 16 * 1024, indexInterval: 512, compression: .lz4)
        defer { database.close() }
        let collection = try database.collection("c")
        for (tag, id) in last {
            #expect(collection.lastId(ofTag: tag) == id, "tag \(tag)")
        }
        let rare = try #require(last["rare"])
        #expect(await conflict { try await collection.publish(Event(tags: ["rare"], data: "x"), expecting: try PublishCondition(tag: "rare", expectedId: rare - 1)) } == rare)
        let next = try await collection.publish(Event(tags: ["rare"], data: "y"), expecting: try PublishCondition(tag: "rare", expectedId: rare))
        #expect(next == 3001)
    }

    @Test func aTagWhoseEventsRetentionDeletedCountsAsNew() async throws {
        let folder = TemporaryFolder()
        let database = try Database(configuration: DatabaseConfiguration(
            logsPath: folder.path,
            defaults: CollectionConfiguration(segmentSize: 16 * 1024, indexIntervalBytes: 512,
                                              retention: RetentionPolicy(maxBytes: 4 * 28 * 1024))))
        defer { database.close() }
        let collection = try database.collection("c")
        let early = try await collection.publish(Event(tags: ["early"], data: "x"), expecting: try PublishCondition(tag: "early", expectedId: 0))
        #expect(collection.lastId(ofTag: "early") == early)
        for burst in 0..<40 {
            try await collection.publish((0..<50).map { Event(tags: ["bulk"], data: sampleData(burst * 50 + $0, size: 100)) })
        }
        try await waitUntil { collection.firstId > early }
        #expect(collection.lastId(ofTag: "early") == 0)
        #expect(await conflict { try await collection.publish(Event(tags: ["early"], data: "y"), expecting: try PublishCondition(tag: "early", expectedId: early)) } == 0)
        let again = try await collection.publish(Event(tags: ["early"], data: "z"), expecting: try PublishCondition(tag: "early", expectedId: 0))
        #expect(collection.lastId(ofTag: "early") == again)
    }

    @Test func theCacheStaysBoundedWithManyDistinctTags() async throws {
        let folder = TemporaryFolder()
        var configuration = CollectionConfiguration(segmentSize: 64 * 1024, indexIntervalBytes: 1024)
        configuration.tagCacheCapacity = 500
        let database = try Database(configuration: DatabaseConfiguration(logsPath: folder.path, defaults: configuration))
        defer { database.close() }
        let collection = try database.collection("c")
        let count = 4_000  // more than the cache holds
        let ids = try await withThrowingTaskGroup(of: UInt64.self) { group in
            for lane in 0..<4 {
                group.addTask {
                    var last: UInt64 = 0
                    for number in stride(from: lane, to: count, by: 4) {
                        last = try await collection.publish(Event(tags: ["k\(number)"], data: "v"), expecting: try PublishCondition(tag: "k\(number)", expectedId: 0))
                    }
                    return last
                }
            }
            return try await group.reduce(into: [UInt64]()) { $0.append($1) }
        }
        #expect(ids.count == 4 && collection.lastId == UInt64(count))
        #expect(collection.cachedTagCount <= 500)
        // An evicted tag is found again in the files.
        #expect(collection.lastId(ofTag: "k0") != 0)
        #expect(await conflict { try await collection.publish(Event(tags: ["k0"], data: "again"), expecting: try PublishCondition(tag: "k0", expectedId: 0)) } != nil)
    }

    @Test func aBurstWithMoreThanOneEventIsRefused() throws {
        let folder = TemporaryFolder()
        let database = try makeDatabase(folder)
        defer { database.close() }
        let collection = try database.collection("c")
        #expect(throws: ExarError.self) {
            try collection.publish(expecting: try PublishCondition(tag: "a", expectedId: 0), { (appender: inout PublishAppender) throws(ExarError) in
                try appender.append(Event(tags: ["a"], data: "1"))
                try appender.append(Event(tags: ["a"], data: "2"))
            }, completion: { _ in })
        }
        #expect(collection.lastId == 0)
    }
}

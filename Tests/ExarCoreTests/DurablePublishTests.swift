@testable import ExarCore
import ExarModel
import Foundation
import Testing

/// `sync = always` with `syncInPlace` (what the server's event loops ask): the caller writes and
/// syncs the group itself while the disk is fast, and hands it to the writer thread when it is not.
@Suite struct DurablePublishTests {
    final class LockedAnswer: @unchecked Sendable {
        private let lock = NSLock()
        private var value: (onCaller: Bool, result: PublishResult)?
        func withLock<T>(_ body: (inout (onCaller: Bool, result: PublishResult)?) -> T) -> T {
            lock.lock()
            defer { lock.unlock() }
            return body(&value)
        }
    }

    /// Publishes `count` numbered events in one call; returns whether the completion ran on the
    /// calling thread before the call returned, and the result.
    private func publish(_ collection: ExarCore.Collection, from start: Int, count: Int, syncInPlace: Bool)
        async throws -> (inPlace: Bool, result: PublishResult)
    {
        let caller = pthread_self()
        // An NSLock (a pthread mutex), which TSan sees order the two threads; it cannot see
        // Synchronization.Mutex's futex do so.
        let answer = LockedAnswer()
        try collection.publish({ (appender: inout PublishAppender) throws(ExarError) in
            for number in start..<(start + count) { try appender.append(Event(tags: ["t"], data: sampleData(number))) }
        }, syncInPlace: syncInPlace, completion: { result in
            answer.withLock { $0 = (pthread_equal(pthread_self(), caller) != 0, result) }
        })
        let returned = answer.withLock { $0 }
        if let returned { return (returned.onCaller, returned.result) }
        try await waitUntil { answer.withLock { $0 != nil } }
        let later = answer.withLock { $0 }!
        return (false, later.result)
    }

    @Test func aFastDiskIsSyncedByTheCallerOncePerGroup() async throws {
        let folder = TemporaryFolder()
        do {
            let database = try makeDatabase(folder, segmentSize: 1 << 20, sync: .always)
            let collection = try database.collection("durable")
            var next = 1
            for round in 0..<20 {
                // As after a fast sync (whatever this machine's disk is like).
                collection.log.lastSyncNanoseconds.store(0, ordering: .relaxed)
                let syncsBefore = collection.statistics.syncs.count
                let (inPlace, result) = try await publish(collection, from: next, count: 5, syncInPlace: true)
                #expect(inPlace, "round \(round) was not answered in place")
                #expect(result.error == nil && result.firstId == UInt64(next) && result.storedCount == 5)
                // Synced once for the group, before the answer.
                #expect(collection.statistics.syncs.count == syncsBefore + 1)
                next += 5
            }
            // Without the caller's leave the writer thread syncs and answers, as before.
            let (inPlace, result) = try await publish(collection, from: next, count: 5, syncInPlace: false)
            #expect(!inPlace && result.error == nil && result.firstId == UInt64(next))
            database.close()
        }
        let reopened = try makeDatabase(folder, segmentSize: 1 << 20, sync: .always)
        let events = try reopened.collection("durable").read(.all)
        #expect(events.map(\.id) == Array(1...105))
        #expect(events.map(\.data) == (1...105).map { sampleData($0) })
        reopened.close()
    }

    @Test func aSlowSyncSendsTheNextGroupToTheWriter() async throws {
        let folder = TemporaryFolder()
        let database = try makeDatabase(folder, segmentSize: 1 << 20, sync: .always)
        defer { database.close() }
        let collection = try database.collection("durable")
        collection.log.lastSyncNanoseconds.store(CollectionLog.inPlaceSyncLimitNanoseconds + 1, ordering: .relaxed)
        let (inPlace, result) = try await publish(collection, from: 1, count: 3, syncInPlace: true)
        #expect(!inPlace, "a group after a slow sync blocked its caller")
        #expect(result.error == nil && result.storedCount == 3)
        // The writer's sync measured the disk again: a fast one lets the next group in place.
        var published = 3
        if collection.log.lastSyncNanoseconds.load(ordering: .relaxed) < CollectionLog.inPlaceSyncLimitNanoseconds {
            let (again, _) = try await publish(collection, from: 4, count: 3, syncInPlace: true)
            #expect(again)
            published += 3
        }
        #expect(try collection.read(.all).map(\.id) == Array(1...UInt64(published)))
    }
}

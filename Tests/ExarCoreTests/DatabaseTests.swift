import ExarCore
import ExarModel
import Foundation
import Synchronization
import Testing

@Suite struct DatabaseTests {
    @Test func dropDeletesTheCollectionAndItStartsAgainAtOne() async throws {
        let folder = TemporaryFolder()
        let database = try makeDatabase(folder)
        let orders = try database.collection("orders")
        try await orders.publish([Event(tags: ["t"], data: "a"), Event(tags: ["t"], data: "b")])
        let sink = CollectingSink()
        try orders.subscribe(Query(live: true, offset: 0), sink: sink)
        #expect(sink.wait { $0.events.count == 2 })
        try database.drop("orders")
        // The running subscription ended as by its limit, not as by a close.
        #expect(sink.end == .endOfStream)
        #expect(orders.isDropped)
        #expect(!FileManager.default.fileExists(atPath: folder.path + "/orders"))
        await #expect(throws: ExarError.connection("collection orders was dropped")) {
            try await orders.publish(Event(tags: ["t"], data: "late"))
        }
        #expect(throws: ExarError.connection("collection orders was dropped")) {
            try orders.subscribe(Query(live: true), sink: CollectingSink())
        }
        let again = try database.collection("orders")
        #expect(again !== orders)
        #expect(try await again.publish(Event(tags: ["t"], data: "new")) == 1)
        #expect(try again.read(Query(live: false)).map(\.data) == ["new"])
        // Dropping what does not exist is not an error; a bad name is.
        try database.drop("never-opened")
        #expect(throws: ExarError.self) { try database.drop("../x") }
        database.close()
    }

    @Test func aCollectionAnotherProcessHoldsIsNotDropped() async throws {
        let folder = TemporaryFolder()
        let first = try makeDatabase(folder)
        try await first.collection("held").publish(Event(tags: ["t"], data: "x"))
        first.close()
        // What a second server or `exar-inspect repair` holds while it has the folder open.
        let lock = try CollectionLock(directory: folder.path + "/held")
        let database = try makeDatabase(folder)
        #expect {
            try database.drop("held")
        } throws: { error in
            guard case ExarError.io(.wouldBlock, let message) = error else { return false }
            return message.contains("in use by another process")
        }
        #expect(FileManager.default.fileExists(atPath: folder.path + "/held/00000000000000000001.log"))
        lock.release()
        try database.drop("held")
        #expect(!FileManager.default.fileExists(atPath: folder.path + "/held"))
        database.close()
    }

    @Test func aDropCutShortByACrashIsFinishedAtTheNextOpen() throws {
        let folder = TemporaryFolder()
        // What a crash between the rename and the delete leaves: the whole folder under the
        // reserved name, which no collection can have.
        let tombstone = folder.path + "/.exar-dropped-orders-1234"
        try FileManager.default.createDirectory(atPath: tombstone, withIntermediateDirectories: true)
        _ = FileManager.default.createFile(atPath: tombstone + "/00000000000000000001.log", contents: Data(count: 4096))
        let database = try makeDatabase(folder)
        #expect(!FileManager.default.fileExists(atPath: tombstone))
        #expect(throws: ExarError.self) { try database.collection(".exar-dropped-orders-1234") }
        database.close()
    }

    @Test func aCollectionOwnLogsPathHoldsItsFolder() async throws {
        let folder = TemporaryFolder()
        let elsewhere = folder.path + "/elsewhere"
        let database = try Database(configuration: DatabaseConfiguration(
            logsPath: folder.path + "/main",
            collections: ["special": CollectionConfiguration(segmentSize: 64 * 1024, logsPath: elsewhere)]))
        try await database.collection("special").publish(Event(tags: ["t"], data: "x"))
        try await database.collection("plain").publish(Event(tags: ["t"], data: "y"))
        #expect(FileManager.default.fileExists(atPath: elsewhere + "/special/00000000000000000001.log"))
        #expect(FileManager.default.fileExists(atPath: folder.path + "/main/plain/00000000000000000001.log"))
        #expect(!FileManager.default.fileExists(atPath: folder.path + "/main/special"))
        try database.drop("special")
        #expect(!FileManager.default.fileExists(atPath: elsewhere + "/special"))
        database.close()
    }

    /// While one collection is opened (and recovered) slowly, looking up and opening others
    /// never waits for it: the map's lock is not held during the disk work.
    @Test func openingOneCollectionNeverBlocksTheOthers() async throws {
        let folder = TemporaryFolder()
        do {
            // Many small segments make opening this collection slow.
            let setup = try makeDatabase(folder, segmentSize: 4096, indexInterval: 1024)
            let slow = try setup.collection("slow")
            for round in 0..<60 {
                try await slow.publish((0..<30).map { Event(tags: ["t"], data: sampleData(round * 30 + $0, size: 900)) })
            }
            setup.close()
        }
        let database = try makeDatabase(folder, segmentSize: 4096, indexInterval: 1024)
        let fast = try database.collection("fast")
        let openStarted = StopFlag()
        let openFinished = StopFlag()
        let openSeconds = Atomic<UInt64>(0)  // a Double's bit pattern
        // A thread of its own, not a task: this test's loop below holds a thread of the
        // cooperative pool, and with the other one busy (other suites, a sanitizer's slowness)
        // a task would not start before the loop gave up (CI once saw 0 lookups that way).
        let opener = Thread {
            openStarted.set()
            let start = Date()
            _ = try? database.collection("slow")
            openSeconds.store(Date().timeIntervalSince(start).bitPattern, ordering: .relaxed)
            openFinished.set()
        }
        opener.start()
        // Lookups of another collection while the slow one opens: each must return at once (the
        // event loops make this call); with the map's lock held during the open, the first one
        // would wait for all of it.
        var slowest = 0.0
        var lookupsDuringOpen = 0
        let started = Date()
        while Date().timeIntervalSince(started) < 30 {
            let during = openStarted.isSet
            let start = Date()
            #expect(database.openCollection("fast") === fast)
            if database.openCollection("slow") != nil { break }
            if during {
                slowest = max(slowest, Date().timeIntervalSince(start))
                lookupsDuringOpen += 1
            }
        }
        while !openFinished.isSet { try await Task.sleep(for: .milliseconds(5)) }
        let openTime = Double(bitPattern: openSeconds.load(ordering: .relaxed))
        #expect(database.openCollection("slow") != nil)
        #expect(lookupsDuringOpen > 100, "\(lookupsDuringOpen) lookups while the open took \(openTime) s")
        #expect(slowest < openTime / 2, "a lookup took \(slowest) s while the slow open took \(openTime) s")
        database.close()
    }
}

import ExarCore
import ExarModel
import Foundation
import Testing

@Suite struct CollectionTests {
    @Test func idsStartAtOneAndNeverSkip() async throws {
        let folder = TemporaryFolder()
        let database = try makeDatabase(folder)
        let collection = try database.collection("orders")
        #expect(collection.lastId == 0)
        let first = try await collection.publish(Event(tags: ["a"], data: "one"))
        let range = try await collection.publish([Event(tags: ["a"], data: "two"), Event(tags: ["b"], data: "three")])
        #expect(first == 1)
        #expect(range == 2...3)
        #expect(collection.lastId == 3)
        let events = try collection.read(.all)
        #expect(events.map(\.id) == [1, 2, 3])
        #expect(events.map(\.data) == ["one", "two", "three"])
        #expect(events[2].tags == ["b"])
        database.close()
    }

    @Test func timestampZeroIsStampedByTheCollection() async throws {
        let folder = TemporaryFolder()
        let database = try makeDatabase(folder)
        let collection = try database.collection("c")
        let before = UInt64(Date().timeIntervalSince1970 * 1000)
        try await collection.publish(Event(timestamp: 0, tags: ["x"], data: ""))
        try await collection.publish(Event(timestamp: 1_700_000_000_000, tags: ["x"], data: "given"))
        let after = UInt64(Date().timeIntervalSince1970 * 1000)
        let events = try collection.read(.all)
        #expect(events[0].timestamp >= before && events[0].timestamp <= after)
        #expect(events[0].data == "")
        #expect(events[1].timestamp == 1_700_000_000_000)
        database.close()
    }

    @Test func offsetIsExclusiveAndLimitCountsDeliveredEvents() async throws {
        let folder = TemporaryFolder()
        let database = try makeDatabase(folder)
        let collection = try database.collection("c")
        _ = try await collection.publishNumbered(1, count: 100, tags: { $0 % 10 == 0 ? ["ten", "all"] : ["all"] })
        #expect(try collection.read(Query(offset: 0)).count == 100)
        #expect(try collection.read(Query(offset: 40)).first?.id == 41)
        #expect(try collection.read(Query(offset: 100)).isEmpty)
        #expect(try collection.read(Query(offset: 5000)).isEmpty)
        #expect(try collection.read(Query(offset: 10, limit: 5)).map(\.id) == [11, 12, 13, 14, 15])
        #expect(try collection.read(Query(offset: 0, limit: 0)).count == 100)
        #expect(try collection.read(Query(offset: 0, tag: "ten")).map(\.id) == [10, 20, 30, 40, 50, 60, 70, 80, 90, 100])
        #expect(try collection.read(Query(offset: 25, limit: 3, tag: "ten")).map(\.id) == [30, 40, 50])
        #expect(try collection.read(Query(tag: "te")).isEmpty)
        #expect(try collection.read(Query(tag: "ten all")).isEmpty)
        database.close()
    }

    @Test func validationUsesTheProtocolMessages() async throws {
        let folder = TemporaryFolder()
        let database = try makeDatabase(folder)
        let collection = try database.collection("c")
        await #expect(throws: ExarError.validation("event must contain at least one tag")) {
            try await collection.publish(Event(tags: [], data: "x"))
        }
        await #expect(throws: ExarError.validation("event must not contain empty tags")) {
            try await collection.publish(Event(tags: ["a", ""], data: "x"))
        }
        await #expect(throws: ExarError.validation(ValidationMessage.newlineInData)) {
            try await collection.publish(Event(tags: ["a"], data: "x\ny"))
        }
        // A burst with one bad event publishes none of it.
        await #expect(throws: ExarError.self) {
            try await collection.publish([Event(tags: ["a"], data: "ok"), Event(tags: [""], data: "bad")])
        }
        #expect(collection.lastId == 0)
        for field in ["", " a", "a ", "a  b"] {
            #expect(throws: ExarError.validation("event must not contain empty tags")) {
                try EventValidation.validateTagsField(Array(field.utf8))
            }
        }
        try EventValidation.validateTagsField(Array("order created".utf8))
        let tooBig = String(repeating: "z", count: collection.configuration.maximumEventBytes)
        await #expect(throws: ExarError.self) {
            try await collection.publish(Event(tags: ["a"], data: tooBig))
        }
        try await collection.publish(Event(tags: ["a"], data: "fine"))
        #expect(collection.lastId == 1)
        database.close()
    }

    @Test func collectionNamesCannotEscapeTheFolder() throws {
        let folder = TemporaryFolder()
        let database = try makeDatabase(folder)
        for name in ["", ".", "..", "../x", "/etc", "a/b", "a\u{0}b", String(repeating: "n", count: 300)] {
            #expect(throws: ExarError.self) { try database.collection(name) }
        }
        _ = try database.collection("fine-name.v1")
        database.close()
    }

    @Test func idsContinueAcrossReopening() async throws {
        let folder = TemporaryFolder()
        do {
            let database = try makeDatabase(folder)
            _ = try await database.collection("c").publishNumbered(1, count: 10)
            database.close()
        }
        let database = try makeDatabase(folder)
        let collection = try database.collection("c")
        #expect(collection.lastId == 10)
        #expect(collection.recoveryNotes.isEmpty)
        #expect(try await collection.publish(Event(tags: ["t"], data: "eleven")) == 11)
        #expect(try collection.read(Query(offset: 9)).map(\.data) == [sampleData(10), "eleven"])
        database.close()
    }

    @Test func manySegmentsRollAndReadBack() async throws {
        let folder = TemporaryFolder()
        let database = try makeDatabase(folder, segmentSize: 8192, indexInterval: 256)
        let collection = try database.collection("c")
        _ = try await collection.publishNumbered(1, count: 2000, burst: 37, tags: { ["n\($0 % 3)"] })
        let segments = folder.files(in: "c", suffix: ".log")
        #expect(segments.count > 20)
        #expect(segments.first!.hasSuffix("/00000000000000000001.log"))
        let events = try collection.read(.all)
        #expect(events.map(\.id) == Array(1...2000))
        #expect(events.map(\.data) == (1...2000).map { sampleData($0) })
        for offset in [0, 1, 55, 999, 1000, 1777, 1999] {
            #expect(try collection.read(Query(offset: UInt64(offset), limit: 3)).map(\.id)
                == Array((UInt64(offset) + 1)...min(UInt64(offset) + 3, 2000)))
        }
        #expect(try collection.read(Query(tag: "n1")).map(\.id) == (1...2000).filter { $0 % 3 == 1 }.map(UInt64.init))
        // Mapped segments keep no descriptors (allocation opens one for the call): only the
        // collection's lock file stays open, however many segments it has.
        #expect(openDescriptors(under: folder.path) == 1)
        database.close()

        let reopened = try makeDatabase(folder, segmentSize: 8192, indexInterval: 256)
        let again = try reopened.collection("c")
        #expect(again.recoveryNotes.isEmpty)
        #expect(try again.read(Query(offset: 1500, tag: "n2")).map(\.id) == (1501...2000).filter { $0 % 3 == 2 }.map(UInt64.init))
        #expect(try await again.publish(Event(tags: ["t"], data: "next")) == 2001)
        reopened.close()
    }

    @Test func compressionGivesIdenticalReadsAndShrinksData() async throws {
        var contents: [[Event]] = []
        var sizes: [Int] = []
        for compression in [Compression.none, .lz4] {
            let folder = TemporaryFolder()
            let database = try makeDatabase(folder, segmentSize: 1 << 20, compression: compression)
            let collection = try database.collection("c")
            _ = try await collection.publishNumbered(1, count: 3000, burst: 100, tags: { ["t\($0 % 4)"] })
            contents.append(try collection.read(.all) + (try collection.read(Query(offset: 1234, limit: 10, tag: "t2"))))
            database.close()
            // Bytes used: the end of data recorded when sealed, summed over the segments.
            sizes.append(try usedBytes(folder.files(in: "c", suffix: ".log")))
            let reopened = try makeDatabase(folder, segmentSize: 1 << 20, compression: compression)
            #expect(try reopened.collection("c").read(.all) == contents.last!.prefix(3000).map { $0 })
            reopened.close()
        }
        #expect(contents[0] == contents[1])
        #expect(sizes[1] * 3 < sizes[0], "lz4 used \(sizes[1]) bytes, raw \(sizes[0])")
    }

    private func openDescriptors(under path: String) -> Int {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd")) ?? []
        return entries.filter { entry in
            (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/fd/" + entry))?.hasPrefix(path) ?? false
        }.count
    }

    private func usedBytes(_ paths: [String]) throws -> Int {
        try paths.reduce(0) { total, path in
            let data = try Data(contentsOf: URL(fileURLWithPath: path))
            return total + Int(data.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: 32, as: UInt64.self) })
        }
    }

    @Test func closedCollectionRefusesPublishes() async throws {
        let folder = TemporaryFolder()
        let database = try makeDatabase(folder)
        let collection = try database.collection("c")
        database.close()
        await #expect(throws: ExarError.self) {
            try await collection.publish(Event(tags: ["a"], data: "late"))
        }
        #expect(throws: ExarError.self) { try database.collection("c") }
    }

    @Test func syncPoliciesStoreAndReopen() async throws {
        for policy in [SyncPolicy.always, .interval(milliseconds: 5)] {
            let folder = TemporaryFolder()
            do {
                let database = try makeDatabase(folder, segmentSize: 16384, sync: policy)
                let collection = try database.collection("c")
                _ = try await collection.publishNumbered(1, count: 500, burst: 25)
                try collection.flush()
                database.close()
            }
            let database = try makeDatabase(folder, segmentSize: 16384, sync: policy)
            #expect(try database.collection("c").read(.all).count == 500)
            database.close()
        }
    }

    @Test func aCollectionIsOpenInOneDatabaseAtATime() async throws {
        let folder = TemporaryFolder()
        let first = try makeDatabase(folder)
        _ = try await first.collection("c").publish(Event(tags: ["t"], data: "one"))
        // A second database on the same folder (as a second server would be) cannot open it.
        let second = try makeDatabase(folder)
        #expect(throws: ExarError.self) { try second.collection("c") }
        do {
            _ = try second.collection("c")
        } catch {
            #expect("\(error)".contains("in use by another process"))
        }
        // Other collections are not affected; after the first closes, the second may open it.
        #expect(try second.collection("other").lastId == 0)
        first.close()
        #expect(try second.collection("c").lastId == 1)
        second.close()
    }
}

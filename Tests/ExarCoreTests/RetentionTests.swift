import ExarCore
import ExarModel
import Foundation
import Synchronization
import Testing

/// Retention on real files: whole sealed segments deleted oldest first, by size and by age, while
/// publishers and subscribers run.
@Suite struct RetentionTests {
    private static let segmentSize = 64 * 1024

    private func openDatabase(_ folder: TemporaryFolder, _ policy: RetentionPolicy, interval: Double = 0.05,
                              automatic: Bool = true) throws -> Database {
        var configuration = DatabaseConfiguration(
            logsPath: folder.path,
            defaults: CollectionConfiguration(
                segmentSize: Self.segmentSize, indexIntervalBytes: 1024,
                scanners: ScannerConfiguration(count: 2, sleepTimeMilliseconds: 5), retention: policy))
        configuration.retentionCheckInterval = interval
        configuration.retentionRunsAutomatically = automatic
        return try Database(configuration: configuration)
    }

    /// Bytes one segment's four files take on disk, read from a fresh collection's folder.
    /// What one full segment takes on disk: its four files at their full size, in whole pages
    /// (a fresh collection's files are allocated as they fill, so `du` says less).
    private func segmentFileBytes(_ folder: TemporaryFolder, _ name: String) -> UInt64 {
        let directory = folder.path + "/" + name
        var total: UInt64 = 0
        for file in (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? [] where !file.hasPrefix(".") {
            var info = stat()
            if stat(directory + "/" + file, &info) == 0 { total += (UInt64(info.st_size) + 4095) / 4096 * 4096 }
        }
        return total
    }

    /// Blocks allocated by the collection's files (what `du` says).
    private func allocated(_ directory: String) -> UInt64 {
        var total: UInt64 = 0
        for name in (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? [] {
            var info = stat()
            if stat(directory + "/" + name, &info) == 0 { total += UInt64(info.st_blocks) * 512 }
        }
        return total
    }

    /// Ids strictly increasing; every id missing between two delivered ones is below the final
    /// first retained id (so it was deleted, not skipped); every event has the data published under its id.
    private func expectConsistent(_ events: [Event], published: [UInt64: String], firstRetained: UInt64, _ who: String) {
        var previous: UInt64 = 0
        for event in events {
            if event.id <= previous {
                Issue.record("\(who): id \(event.id) after \(previous)")
                return
            }
            if event.id > previous + 1 && event.id - 1 >= firstRetained {
                Issue.record("\(who): skipped ids \(previous + 1)...\(event.id - 1), still retained")
                return
            }
            if let data = published[event.id], data != event.data {
                Issue.record("\(who): event \(event.id) holds \(event.data.prefix(30)), published \(data.prefix(30))")
                return
            }
            previous = event.id
        }
    }

    @Test func sizeBoundHoldsUnderPublishersAndSubscribers() async throws {
        let folder = TemporaryFolder()
        let oneSegment: UInt64 = try {
            let probe = try makeDatabase(folder, segmentSize: Self.segmentSize)
            _ = try probe.collection("probe")
            probe.close()
            return segmentFileBytes(folder, "probe")
        }()
        let maxBytes = 8 * oneSegment
        let database = try openDatabase(folder, RetentionPolicy(maxBytes: maxBytes))
        defer { database.close() }
        let collection = try database.collection("c")
        let directory = folder.path + "/c"

        // Two live subscribers from the start (one slow, so deletions overtake it) and catch-up
        // readers started while publishing runs.
        let fast = CollectingSink()
        let slow = SlowSink(pauseEvery: 200, microseconds: 2000)
        try collection.subscribe(Query(live: true, offset: 0), sink: fast)
        try collection.subscribe(Query(live: true, offset: 0), sink: slow)
        let published = Locked<[UInt64: String]>([:])
        let stop = Atomic<Bool>(false)
        let worst = Atomic<UInt64>(0)
        let sampler = Thread {
            while !stop.load(ordering: .relaxed) {
                let used = allocated(directory)
                if used > worst.load(ordering: .relaxed) { worst.store(used, ordering: .relaxed) }
                usleep(500)
            }
        }
        sampler.start()
        var catchUps: [CollectingSink] = []
        try await withThrowingTaskGroup(of: Void.self) { group in
            for publisher in 0..<3 {
                group.addTask {
                    for burst in 0..<400 {
                        let events = (0..<10).map { Event(tags: ["p\(publisher)"], data: sampleData(publisher * 100_000 + burst * 10 + $0, size: 120)) }
                        let ids = try await collection.publish(events)
                        published.withLock { map in
                            for (offset, id) in ids.enumerated() { map[id] = events[offset].data }
                        }
                    }
                }
            }
            for _ in 0..<3 {
                try await Task.sleep(for: .milliseconds(150))
                let reader = CollectingSink()
                try collection.subscribe(Query(live: false, offset: 0), sink: reader)
                catchUps.append(reader)
            }
            try await group.waitForAll()
        }
        let lastId = collection.lastId
        #expect(lastId == 12_000)
        try await waitUntil { fast.events.last?.id == lastId && slow.events.last?.id == lastId }
        try await waitUntil { catchUps.allSatisfy { $0.end != nil } }
        stop.store(true, ordering: .relaxed)
        while !sampler.isFinished { usleep(1000) }

        let statistics = collection.statistics
        let firstRetained = collection.firstId
        #expect(firstRetained > 1, "nothing was deleted")
        #expect(statistics.retentionDeletedSegments > 10)
        #expect(statistics.segments <= 9)
        let used = allocated(directory)
        // The bound plus one segment, and slack: a page for the lock file, and a page for each
        // file of the two newest segments (files allocated step by step may need an extent block,
        // which `du` counts and retention does not).
        let slack: UInt64 = 9 * 4096
        #expect(used <= maxBytes + oneSegment + slack, "\(used) bytes on disk")
        #expect(worst.load(ordering: .relaxed) <= maxBytes + oneSegment + slack,
                "sampled \(worst.load(ordering: .relaxed)) bytes, bound \(maxBytes) plus one segment \(oneSegment)")
        let map = published.withLock { $0 }
        expectConsistent(fast.events, published: map, firstRetained: firstRetained, "fast")
        expectConsistent(slow.events, published: map, firstRetained: firstRetained, "slow")
        for (number, reader) in catchUps.enumerated() {
            expectConsistent(reader.events, published: map, firstRetained: firstRetained, "catch-up \(number)")
        }
        // What is left is exactly the ids from the first retained one on.
        let remaining = try collection.read(.all)
        #expect(remaining.first?.id == firstRetained)
        #expect(remaining.map(\.id) == Array(firstRetained...lastId))
        // A query from before the first retained id starts at it; the time before everything locates just before it.
        #expect(try collection.read(Query(offset: 5, limit: 1)).first?.id == firstRetained)
        #expect(collection.locate(timestamp: 0) == firstRetained - 1)
    }

    @Test func ageDeletesOnlyAnOldPrefixOfSealedSegments() async throws {
        let folder = TemporaryFolder()
        // Half an hour: a sanitizer build on a busy machine took 100 s to get here, and with a
        // minute's age the "new" events had become old too.
        let database = try openDatabase(folder, RetentionPolicy(maxAgeMilliseconds: 1_800_000))
        defer { database.close() }
        let collection = try database.collection("c")
        let now = UInt64(Date().timeIntervalSince1970 * 1000)
        let old = now - 7_200_000
        func publish(_ count: Int, at timestamp: UInt64) async throws -> ClosedRange<UInt64> {
            var ids: ClosedRange<UInt64>?
            for start in stride(from: 0, to: count, by: 100) {
                let events = (start..<min(count, start + 100)).map { Event(timestamp: timestamp, tags: ["t"], data: sampleData($0, size: 200)) }
                let range = try await collection.publish(events)
                ids = (ids?.lowerBound ?? range.lowerBound)...range.upperBound
            }
            return ids!
        }
        // Old events over several segments, then new ones, then old ones again (a client's clock).
        _ = try await publish(1500, at: old)
        let fresh = try await publish(600, at: now)
        _ = try await publish(600, at: old)
        _ = try await publish(600, at: now)
        try await waitUntil { collection.statistics.retentionDeletedSegments > 0 }
        // Give later passes the chance to (wrongly) go further.
        try await Task.sleep(for: .milliseconds(300))
        let first = collection.firstId
        // Every segment of only old events before the first new event went; the segment holding
        // the first new event stays, and so does every later one (the old ones after it too).
        #expect(first <= fresh.lowerBound)
        let remaining = try collection.read(.all)
        #expect(remaining.first?.id == first)
        let segmentOfFresh = remaining.prefix { $0.id < fresh.lowerBound }
        #expect(segmentOfFresh.allSatisfy { $0.timestamp == old })
        #expect(UInt64(segmentOfFresh.count) < UInt64(Self.segmentSize / 200), "a whole old segment was kept")
        #expect(remaining.last?.id == collection.lastId && remaining.count == Int(collection.lastId - first + 1))
    }

    @Test func reopeningKeepsTheFirstRetainedIdAndRemovesOrphanedSideFiles() async throws {
        let folder = TemporaryFolder()
        var first: UInt64 = 0
        do {
            let database = try openDatabase(folder, RetentionPolicy(maxBytes: 1))
            let collection = try database.collection("c")
            for burst in 0..<40 {
                try await collection.publish((0..<50).map { Event(tags: ["t"], data: sampleData(burst * 50 + $0, size: 150)) })
            }
            try await waitUntil { collection.firstId > 1 && collection.statistics.segments == 1 }
            first = collection.firstId
            database.close()
        }
        // A pass cut short after it unlinked a log file: its side files stay behind.
        let directory = folder.path + "/c"
        let stem = String(format: "%020d", 999)
        for suffix in [".index", ".tags", ".time"] {
            _ = FileManager.default.createFile(atPath: directory + "/" + stem + suffix, contents: Data(count: 64))
        }
        let database = try openDatabase(folder, RetentionPolicy())
        defer { database.close() }
        let collection = try database.collection("c")
        #expect(collection.firstId == first)
        #expect(collection.lastId == 2000)
        #expect(collection.recoveryNotes.map(\.kind) == [.removedOrphan])
        #expect(folder.files(in: "c", suffix: ".time").count == folder.files(in: "c", suffix: ".log").count)
        #expect(try collection.read(.all).map(\.id) == Array(first...2000))
        #expect(try await collection.publish(Event(tags: ["t"], data: "next")) == 2001)
    }

    @Test(.enabled(if: canMountTmpfsForCore, "needs root to mount a tmpfs"))
    func aFullDiskRunsRetentionAtOnceAndThePublishGoesThrough() async throws {
        let folder = TemporaryFolder()
        // Automatic passes off: only the full disk can make room, so this is the path under test.
        let probe = try makeDatabase(folder, segmentSize: Self.segmentSize)
        _ = try probe.collection("probe")
        probe.close()
        let oneSegment = segmentFileBytes(folder, "probe")
        let mountPoint = folder.path + "/mnt"
        try FileManager.default.createDirectory(atPath: mountPoint, withIntermediateDirectories: true)
        // Room for about six segments; the policy keeps four.
        guard mount("tmpfs", mountPoint, "tmpfs", 0, "size=\(6 * oneSegment + 32 * 1024)") == 0 else {
            Issue.record("mount failed: errno \(errno)")
            return
        }
        defer { umount2(mountPoint, Int32(MNT_DETACH)) }
        var configuration = DatabaseConfiguration(
            logsPath: mountPoint,
            defaults: CollectionConfiguration(segmentSize: Self.segmentSize, indexIntervalBytes: 1024,
                                              retention: RetentionPolicy(maxBytes: 4 * oneSegment)))
        configuration.retentionRunsAutomatically = false
        let database = try Database(configuration: configuration)
        defer { database.close() }
        let collection = try database.collection("c")
        // About twenty segments' worth: the disk fills three times over.
        for burst in 0..<200 {
            try await collection.publish((0..<40).map { Event(tags: ["t"], data: sampleData(burst * 40 + $0, size: 150)) })
        }
        #expect(collection.lastId == 8000)
        #expect(collection.statistics.retentionDeletedSegments > 10)
        let remaining = try collection.read(.all)
        #expect(remaining.map(\.id) == Array(collection.firstId...8000))
        #expect(remaining.last?.data == sampleData(7999, size: 150))
    }
}

/// Whether this process may mount a tmpfs (root in a namespace that allows it).
let canMountTmpfsForCore: Bool = {
    guard getuid() == 0 else { return false }
    let probe = NSTemporaryDirectory() + "exar-core-mount-probe-" + UUID().uuidString
    guard mkdir(probe, 0o755) == 0 else { return false }
    defer { rmdir(probe) }
    guard mount("tmpfs", probe, "tmpfs", 0, "size=64k") == 0 else { return false }
    umount(probe)
    return true
}()

/// A sink that sleeps now and then, falling behind the publishers.
final class SlowSink: CollectingSink, @unchecked Sendable {
    private let pauseEvery: Int
    private let microseconds: UInt32
    private let received = Atomic<Int>(0)

    init(pauseEvery: Int, microseconds: UInt32) {
        self.pauseEvery = pauseEvery
        self.microseconds = microseconds
        super.init()
    }

    override func receive(_ event: EventView) -> Bool {
        if received.add(1, ordering: .relaxed).newValue % pauseEvery == 0 { usleep(microseconds) }
        return super.receive(event)
    }
}

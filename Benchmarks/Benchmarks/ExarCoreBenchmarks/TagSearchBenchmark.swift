import Benchmark
import ExarCore
import ExarModel
import Foundation

// What a conditional publish (`PublishIf`) pays to find the last event of a tag that its bounded
// cache does not know: the search from the end through the segment and block bloom bitmaps.
// One collection of 10M events of 100 bytes (default 64 MiB segments), tagged as an event-sourced
// store would be: `order-<n>` with a million distinct n, so each 4 KiB block holds some thirty
// distinct tags. Every lookup asks for a tag no earlier iteration asked for, so none is cached.

/// 10M; `EXAR_TAGSEARCH_EVENTS` sets another count (for a quick try of the benchmark itself).
let tagSearchEvents = ProcessInfo.processInfo.environment["EXAR_TAGSEARCH_EVENTS"].flatMap { Int($0) } ?? 10_000_000
let tagSearchStreams = 1_000_000

final class TagSearchFixture: @unchecked Sendable {
    let path: String
    let database: Database
    let collection: ExarCore.Collection
    var iteration = 0

    init(path: String, database: Database, collection: ExarCore.Collection) {
        self.path = path
        self.database = database
        self.collection = collection
    }
}

nonisolated(unsafe) var tagSearchFixture: TagSearchFixture?

func buildTagSearchFixture() -> TagSearchFixture {
    let path = temporaryFolder()
    let database = try! Database(configuration: DatabaseConfiguration(logsPath: path))  // 64 MiB segments
    let collection = try! database.collection("streams")
    let clock = ContinuousClock()
    let start = clock.now
    // Event i (from 0) carries `order-<i mod 1M>`: the last event of order-n is n + 1 + k * 1M for the largest k.
    publish(collection, count: tagSearchEvents, perCall: 1000) { i in Array("order-\(i % tagSearchStreams)".utf8) }
    let statistics = collection.statistics
    FileHandle.standardError.write(Data(("tag search setup: \(collection.lastId) events in \(formatSeconds(clock.now - start)), "
        + "\(statistics.segments) segments, \(statistics.bytesOnDisk >> 20) MiB on disk\n").utf8))
    // Checked before measuring: a few answers against what the publishing pattern says.
    let last = UInt64(tagSearchEvents)
    for n in [0, 1, 4711, tagSearchStreams - 1] where n < tagSearchEvents {
        let k = (UInt64(tagSearchEvents) - 1 - UInt64(n)) / UInt64(tagSearchStreams)
        let expected = UInt64(n) + 1 + k * UInt64(tagSearchStreams)
        let found = collection.lastId(ofTag: "order-\(n)")
        precondition(found == expected && expected <= last, "last id of order-\(n): \(found), expected \(expected)")
    }
    precondition(collection.lastId(ofTag: "absent-check") == 0)
    return TagSearchFixture(path: path, database: database, collection: collection)
}

func registerTagSearchBenchmarks() {
    let configuration = Benchmark.Configuration(
        metrics: [.wallClock, .mallocCountTotal], timeUnits: .microseconds, warmupIterations: 10,
        scalingFactor: .one, maxDuration: .seconds(10), maxIterations: 20_000)
    let setup: @Sendable () -> Void = { if tagSearchFixture == nil { tagSearchFixture = buildTagSearchFixture() } }
    let teardown: @Sendable () -> Void = {
        if let fixture = tagSearchFixture {
            fixture.database.close()
            try? FileManager.default.removeItem(atPath: fixture.path)
            tagSearchFixture = nil
        }
    }

    // A tag no event carries: every segment's bitmap and, where it may hold the tag, every block's
    // bitmap is probed back to the first event; false positives cost a read of the block.
    Benchmark("PublishIf fallback: absent tag over 10M events (per lookup)", configuration: configuration, closure: { benchmark in
        let fixture = tagSearchFixture!
        let tag = "absent-\(fixture.iteration)"
        fixture.iteration += 1
        benchmark.startMeasurement()
        let id = fixture.collection.lastId(ofTag: tag)
        benchmark.stopMeasurement()
        precondition(id == 0)
    }, setup: setup, teardown: teardown)

    // A stream written to recently: its last event is among the last million, found in the newest blocks.
    Benchmark("PublishIf fallback: tag last written within 1M events (per lookup)", configuration: configuration, closure: { benchmark in
        let fixture = tagSearchFixture!
        // Spread over the million streams in a stride that repeats only after 1M lookups.
        let n = (fixture.iteration &* 7919) % tagSearchStreams
        fixture.iteration += 1
        benchmark.startMeasurement()
        let id = fixture.collection.lastId(ofTag: "order-\(n)")
        benchmark.stopMeasurement()
        precondition(id > 0)
    }, setup: setup, teardown: teardown)

    // The same tag again: what the cache costs once it knows the tag.
    Benchmark("PublishIf cached tag (per lookup)", configuration: configuration, closure: { benchmark in
        let fixture = tagSearchFixture!
        benchmark.startMeasurement()
        let id = fixture.collection.lastId(ofTag: "order-4711")
        benchmark.stopMeasurement()
        precondition(id > 0)
    }, setup: setup, teardown: teardown)
}

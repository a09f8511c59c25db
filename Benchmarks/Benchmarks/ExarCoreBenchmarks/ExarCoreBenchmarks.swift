import Benchmark
import ExarCore
import ExarModel
import Foundation

// Benchmarks of the storage engine on real files (a temp folder per run), release build.
// Each iteration of the append benchmarks publishes `eventsPerIteration` events of 100 bytes;
// `scalingFactor` makes package-benchmark report per event.

let eventsPerIteration = 100_000
let payload = [UInt8](repeating: UInt8(ascii: "p"), count: 100)
let tagBytes = [UInt8]("bench".utf8)

func temporaryFolder() -> String {
    let path = NSTemporaryDirectory() + "exar-bench-" + UUID().uuidString
    try! FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
}

func openCollection(_ path: String, compression: Compression = .none) -> (Database, ExarCore.Collection) {
    let database = try! Database(configuration: DatabaseConfiguration(
        logsPath: path, defaults: CollectionConfiguration(segmentSize: 256 << 20, compression: compression)))
    return (database, try! database.collection("bench"))
}

/// Publishes `count` events in calls of `perCall`, without waiting between calls, then waits for the last.
func publish(_ collection: ExarCore.Collection, count: Int, perCall: Int, tag: (Int) -> [UInt8] = { _ in tagBytes }) {
    let done = DispatchSemaphore(value: 0)
    var published = 0
    while published < count {
        let n = min(perCall, count - published)
        let last = published + n == count
        let first = published
        try! collection.publish({ (appender: inout PublishAppender) throws(ExarError) in
            for i in 0..<n {
                let tags = tag(first + i)
                tags.withUnsafeBytes { t in
                    payload.withUnsafeBytes { d in
                        try! appender.appendValidated(timestamp: 1_700_000_000_000, tags: t, data: d)
                    }
                }
            }
        }, completion: { result in
            precondition(result.error == nil)
            if last { done.signal() }
        })
        published += n
    }
    done.wait()
}

/// A sink that counts events and signals when it has seen `target` of them.
final class CountingSink: SubscriptionSink, @unchecked Sendable {
    let lock = NSLock()
    var count = 0
    var target = Int.max
    var latencies: [UInt64] = []
    let reached = DispatchSemaphore(value: 0)

    func receive(_ event: EventView) -> Bool {
        lock.lock()
        count += 1
        let hit = count == target
        lock.unlock()
        if hit { reached.signal() }
        return true
    }
    func flush() {}
    func finish(_ end: SubscriptionEnd) {}
}

let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(
        metrics: [.wallClock, .throughput, .mallocCountTotal, .cpuTotal],
        warmupIterations: 1,
        scalingFactor: .one,
        maxDuration: .seconds(10),
        maxIterations: 10
    )

    for (name, perCall, compression) in [
        ("append one event per call", 1, Compression.none),
        ("append 64 events per call", 64, .none),
        ("append 64 events per call, lz4", 64, .lz4),
    ] {
        Benchmark(name, configuration: .init(scalingFactor: .kilo)) { benchmark in
            let path = temporaryFolder()
            defer { try? FileManager.default.removeItem(atPath: path) }
            let (database, collection) = openCollection(path, compression: compression)
            defer { database.close() }
            benchmark.startMeasurement()
            // 1000 iterations of `scalingFactor: .kilo` = 100 events each, published back to back.
            publish(collection, count: eventsPerIteration, perCall: perCall)
            benchmark.stopMeasurement()
        }
    }

    // Steady state: the collection and its buffers already exist; counts mallocs per published event.
    Benchmark("append steady state, 64 per call (per 1k events)",
              configuration: .init(metrics: [.mallocCountTotal, .wallClock, .throughput], scalingFactor: .kilo)) { benchmark in
        let path = temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: path) }
        let (database, collection) = openCollection(path)
        defer { database.close() }
        publish(collection, count: 200_000, perCall: 64)
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            publish(collection, count: 1000, perCall: 64)
        }
        benchmark.stopMeasurement()
    }

    // Reads: one collection of 1M events of 100 bytes, every 1000th carrying the rare tag.
    let readPath = temporaryFolder()
    let readEvents = 1_000_000
    let rare = [UInt8]("rare".utf8)
    nonisolated(unsafe) var readDatabase: Database?
    nonisolated(unsafe) var readCollection: ExarCore.Collection?
    func prepareReads() -> ExarCore.Collection {
        if let readCollection { return readCollection }
        let (database, collection) = openCollection(readPath)
        publish(collection, count: readEvents, perCall: 64, tag: { $0 % 1000 == 0 ? rare : tagBytes })
        readDatabase = database
        readCollection = collection
        return collection
    }

    Benchmark("catch-up scan of 1M events (bytes = event bytes)",
              configuration: .init(metrics: [.wallClock, .throughput, .mallocCountTotal], scalingFactor: .one,
                                   maxIterations: 20)) { benchmark in
        let collection = prepareReads()
        benchmark.startMeasurement()
        var bytes = 0
        try collection.read(.all) { event in bytes &+= event.data.count &+ event.tags.count }
        benchmark.stopMeasurement()
        precondition(bytes == readEvents * 100 + (readEvents - readEvents / 1000) * 5 + readEvents / 1000 * 4)
        blackHole(bytes)
    }

    Benchmark("rare tag (0.1%) query with bitmaps",
              configuration: .init(metrics: [.wallClock, .throughput], maxIterations: 50)) { benchmark in
        let collection = prepareReads()
        benchmark.startMeasurement()
        var count = 0
        try collection.read(Query(tag: "rare")) { _ in count += 1 }
        benchmark.stopMeasurement()
        precondition(count == readEvents / 1000)
    }

    Benchmark("rare tag (0.1%) by full scan without bitmaps",
              configuration: .init(metrics: [.wallClock, .throughput], maxIterations: 20)) { benchmark in
        let collection = prepareReads()
        benchmark.startMeasurement()
        var count = 0
        try rare.withUnsafeBytes { tag in
            try collection.read(.all) { event in if event.hasTag(tag) { count += 1 } }
        }
        benchmark.stopMeasurement()
        precondition(count == readEvents / 1000)
    }

    registerLocateBenchmark()
    registerTagSearchBenchmarks()

    nonisolated(unsafe) var liveState: (Database, ExarCore.Collection, CountingSink)?
    Benchmark("live tail: publish call to delivery, 1 event",
              configuration: .init(metrics: [.wallClock], scalingFactor: .one, maxDuration: .seconds(5),
                                   maxIterations: 5000)) { benchmark in
        if liveState == nil {
            let path = temporaryFolder()
            let (database, collection) = openCollection(path)
            let sink = CountingSink()
            try collection.subscribe(Query(live: true), sink: sink)
            liveState = (database, collection, sink)
        }
        let (_, collection, sink) = liveState!
        sink.lock.lock()
        sink.target = sink.count + 1
        sink.lock.unlock()
        // From the publish call to the subscriber holding the event (not waiting for the acknowledgement).
        benchmark.startMeasurement()
        try collection.publish({ (appender: inout PublishAppender) throws(ExarError) in
            tagBytes.withUnsafeBytes { t in
                payload.withUnsafeBytes { d in
                    try! appender.appendValidated(timestamp: 0, tags: t, data: d)
                }
            }
        }, completion: { _ in })
        sink.reached.wait()
        benchmark.stopMeasurement()
    }
}

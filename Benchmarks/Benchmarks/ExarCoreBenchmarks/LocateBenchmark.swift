import Benchmark
import ExarCore
import ExarModel
import Foundation

// `Collection.locate(timestamp:)` on a collection of 100M small events whose timestamps rise
// overall but go back and forth. The collection is built once, in the benchmark's setup (each
// benchmark runs in a process of its own), checked against a full scan, and removed in teardown.

/// 100M; `EXAR_LOCATE_EVENTS` sets another count (for a quick try of the benchmark itself).
let locateEvents = ProcessInfo.processInfo.environment["EXAR_LOCATE_EVENTS"].flatMap { Int($0) } ?? 100_000_000
let locateSeed: UInt64 = 0x5EED_0F_7131
let locateProbeCount = 8192  // a power of two: iteration i uses probe i & (count - 1)

/// The timestamps of the events in id order, from a fixed seed (so the check can replay them):
/// a trend that rises by 0-15 ms per event; one event in 8 is stamped up to 2 s behind it, one in
/// 16 up to 0.5 s ahead of it.
struct LocateTimestamps {
    private var state: UInt64
    private var trend: UInt64 = 1_700_000_000_000

    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        let r = splitMix(&state)
        trend += r & 15
        switch (r >> 4) & 15 {
        case 0, 1: return trend - (r >> 8) % 2000
        case 2: return trend + (r >> 8) % 500
        default: return trend
        }
    }
}

func splitMix(_ state: inout UInt64) -> UInt64 {
    state &+= 0x9E37_79B9_7F4A_7C15
    var z = state
    z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
    z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
    return z ^ (z >> 31)
}

final class LocateFixture: @unchecked Sendable {
    let path: String
    let database: Database
    let collection: ExarCore.Collection
    let probes: [UInt64]

    init(path: String, database: Database, collection: ExarCore.Collection, probes: [UInt64]) {
        self.path = path
        self.database = database
        self.collection = collection
        self.probes = probes
    }
}

nonisolated(unsafe) var locateFixture: LocateFixture?

func locateReport(_ line: String) {
    FileHandle.standardError.write(Data(("locate setup: " + line + "\n").utf8))
}

func formatSeconds(_ duration: Duration) -> String {
    let c = duration.components
    return String(format: "%.1f s", Double(c.seconds) + Double(c.attoseconds) / 1e18)
}

/// Publishes `locateEvents` events of 8 data bytes and one 3-byte tag in calls of 1000, waiting
/// for each million to be stored (so the pending buffer stays small). Returns the smallest and
/// largest timestamp and the timestamps of every 99,991st event.
func publishLocateEvents(_ collection: ExarCore.Collection) -> (min: UInt64, max: UInt64, samples: [UInt64]) {
    let tag = [UInt8]("loc".utf8)
    let data = [UInt8]("12345678".utf8)
    let perCall = 1000
    let perWait = 1_000_000
    var stamps = LocateTimestamps(seed: locateSeed)
    var smallest = UInt64.max
    var largest: UInt64 = 0
    var samples: [UInt64] = []
    var number = 0
    tag.withUnsafeBytes { t in
        data.withUnsafeBytes { d in
            while number < locateEvents {
                let done = DispatchSemaphore(value: 0)
                let stop = min(number + perWait, locateEvents)
                while number < stop {
                    let n = min(perCall, stop - number)
                    let last = number + n == stop
                    try! collection.publish({ (appender: inout PublishAppender) throws(ExarError) in
                        for _ in 0..<n {
                            let stamp = stamps.next()
                            smallest = min(smallest, stamp)
                            largest = max(largest, stamp)
                            if number % 99_991 == 0 { samples.append(stamp) }
                            number += 1
                            try appender.appendValidated(timestamp: stamp, tags: t, data: d)
                        }
                    }, completion: { result in
                        precondition(result.error == nil && result.storedCount == n)
                        if last { done.signal() }
                    })
                }
                done.wait()
            }
        }
    }
    return (smallest, largest, samples)
}

/// The answers `locate` must give, from one scan of the whole collection in id order (which also
/// checks every stored timestamp against the generator): for each probe, the id before the
/// first event at which the running maximum of timestamps reaches it, else the last id.
func referenceAnswers(_ collection: ExarCore.Collection, probes: [UInt64]) -> [UInt64] {
    let last = collection.lastId
    var answers = [UInt64](repeating: last, count: probes.count)
    let order = probes.indices.sorted { probes[$0] < probes[$1] }
    var next = 0
    var running: UInt64 = 0
    var stamps = LocateTimestamps(seed: locateSeed)
    var count: UInt64 = 0
    var wrong = 0
    try! collection.read(.all) { event in
        count += 1
        if event.id != count || event.timestamp != stamps.next() { wrong += 1 }
        running = max(running, event.timestamp)
        while next < order.count && probes[order[next]] <= running {
            answers[order[next]] = event.id - 1
            next += 1
        }
    }
    precondition(count == UInt64(locateEvents) && count == last, "scan read \(count) events, last id \(last)")
    precondition(wrong == 0, "\(wrong) events read back with another id or timestamp than published")
    return answers
}

func buildLocateFixture() -> LocateFixture {
    let path = temporaryFolder()
    let database = try! Database(configuration: DatabaseConfiguration(logsPath: path))  // 64 MiB segments
    let free = database.diskUsage().freeBytes
    precondition(free > 8 << 30, "the collection takes about 3 GB; wants 8 GB free in \(path), has \(free >> 20) MiB")
    let collection = try! database.collection("locate")

    let clock = ContinuousClock()
    var start = clock.now
    let (smallest, largest, samples) = publishLocateEvents(collection)
    let statistics = collection.statistics
    locateReport("published \(collection.lastId) events in \(formatSeconds(clock.now - start)): \(statistics.segments) segments, "
        + "\(statistics.bytesOnDisk >> 20) MiB on disk, timestamps \(smallest)...\(largest)")

    // 1 in 64 before every event, 1 in 64 after them all, 2 in 64 at (or 1 ms after) an event's
    // timestamp, the rest uniform over the range.
    var random: UInt64 = 42
    var probes: [UInt64] = (0..<locateProbeCount).map { i in
        let r = splitMix(&random)
        switch i % 64 {
        case 0: return smallest - 1 - r % 1_000_000
        case 1: return largest + 1 + r % 1_000_000
        case 2: return samples[Int(r % UInt64(samples.count))]
        case 3: return samples[Int(r % UInt64(samples.count))] + 1
        default: return smallest + r % (largest - smallest + 1)
        }
    }
    // Shuffled, so that iterations do not follow the kinds' pattern.
    for i in stride(from: probes.count - 1, to: 0, by: -1) {
        probes.swapAt(i, Int(splitMix(&random) % UInt64(i + 1)))
    }

    start = clock.now
    let checked = probes + [0, 1, smallest, largest, largest + 1, UInt64.max]
    let expected = referenceAnswers(collection, probes: checked)
    var wrong = 0
    for (probe, answer) in zip(checked, expected) where collection.locate(timestamp: probe) != answer {
        wrong += 1
        if wrong <= 5 { locateReport("locate(\(probe)) = \(collection.locate(timestamp: probe)), a scan says \(answer)") }
    }
    precondition(wrong == 0, "locate gave \(wrong) of \(checked.count) answers unlike the scan's")
    locateReport("\(checked.count) probes agree with a full scan (\(formatSeconds(clock.now - start)) to scan and check); "
        + "\(expected.filter { $0 == 0 }.count) answer 0, \(expected.filter { $0 == collection.lastId }.count) the last id")
    return LocateFixture(path: path, database: database, collection: collection, probes: probes)
}

func registerLocateBenchmark() {
    nonisolated(unsafe) var iteration = 0
    Benchmark(
        "locate by time (per call)",
        configuration: .init(metrics: [.wallClock, .mallocCountTotal], timeUnits: .nanoseconds,
                             warmupIterations: 1000, scalingFactor: .one, maxDuration: .seconds(10),
                             maxIterations: 200_000),
        closure: { benchmark in
            let fixture = locateFixture!
            let probe = fixture.probes[iteration & (locateProbeCount - 1)]
            iteration += 1
            benchmark.startMeasurement()
            let id = fixture.collection.locate(timestamp: probe)
            benchmark.stopMeasurement()
            blackHole(id)
        },
        setup: { locateFixture = buildLocateFixture() },
        teardown: {
            if let fixture = locateFixture {
                fixture.database.close()
                try? FileManager.default.removeItem(atPath: fixture.path)
            }
            locateFixture = nil
        }
    )
}

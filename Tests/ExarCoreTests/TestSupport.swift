import ExarCore
import ExarModel
import Foundation
import Synchronization
import Testing

/// A fresh folder under the system temp folder, removed when the value is released.
final class TemporaryFolder: Sendable {
    let path: String

    init() {
        path = NSTemporaryDirectory() + "exar-tests-" + UUID().uuidString
        try! FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    deinit {
        try? FileManager.default.removeItem(atPath: path)
    }

    func files(in collection: String, suffix: String) -> [String] {
        let directory = path + "/" + collection
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        return names.filter { $0.hasSuffix(suffix) }.sorted().map { directory + "/" + $0 }
    }
}

func makeDatabase(
    _ folder: TemporaryFolder, segmentSize: Int = 64 * 1024, indexInterval: Int = 1024,
    compression: Compression = .none, sync: SyncPolicy = .none, scanners: Int = 2,
    log: DatabaseLogHandler? = nil
) throws -> Database {
    try Database(configuration: DatabaseConfiguration(
        logsPath: folder.path,
        defaults: CollectionConfiguration(
            segmentSize: segmentSize, indexIntervalBytes: indexInterval, compression: compression, sync: sync,
            scanners: ScannerConfiguration(count: scanners, sleepTimeMilliseconds: 20)),
        logHandler: log))
}

/// Deterministic data for the n-th test event.
func sampleData(_ number: Int, size: Int = 100) -> String {
    let prefix = "event-\(number)-"
    let fill = String(repeating: "x", count: max(0, size - prefix.utf8.count))
    return prefix + fill
}

/// Collects what a subscription delivers; pauses (returns false) while `paused` is set.
class CollectingSink: SubscriptionSink, @unchecked Sendable {
    private let lock = NSLock()
    private var _events: [Event] = []
    private var _end: SubscriptionEnd?
    private var _flushes = 0
    private let pauseAfter: Int?

    init(pauseAfter: Int? = nil) {
        self.pauseAfter = pauseAfter
    }

    func receive(_ event: EventView) -> Bool {
        let copy = event.makeEvent()
        return lock.withLock {
            _events.append(copy)
            if let pauseAfter, _events.count >= pauseAfter { return false }
            return true
        }
    }

    func flush() {
        lock.withLock { _flushes += 1 }
    }

    func finish(_ end: SubscriptionEnd) {
        lock.withLock {
            precondition(_end == nil, "finish called twice")
            _end = end
        }
    }

    var events: [Event] { lock.withLock { _events } }
    var end: SubscriptionEnd? { lock.withLock { _end } }

    /// Waits until `condition` holds, polling, for at most `seconds`.
    func wait(seconds: Double = 10, until condition: (CollectingSink) -> Bool) -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if condition(self) { return true }
            usleep(1000)
        }
        return condition(self)
    }
}

extension Collection {
    /// Publishes `count` events numbered from `start` in bursts of `burst`, waiting for each burst.
    func publishNumbered(_ start: Int, count: Int, burst: Int = 16, tags: (Int) -> [String] = { _ in ["t"] })
        async throws -> [UInt64]
    {
        var ids: [UInt64] = []
        var number = start
        while number < start + count {
            let size = min(burst, start + count - number)
            let events = (number..<(number + size)).map {
                Event(timestamp: UInt64($0), tags: tags($0), data: sampleData($0))
            }
            ids.append(contentsOf: try await publish(events))
            number += size
        }
        return ids
    }
}

/// A flag one thread sets and others watch.
final class StopFlag: Sendable {
    private let value = Atomic<Bool>(false)
    var isSet: Bool { value.load(ordering: .acquiring) }
    func set() { value.store(true, ordering: .releasing) }
}

/// Polls `condition` every few milliseconds; records an issue (and returns) when it is still false after `seconds`.
func waitUntil(seconds: Double = 20, _ condition: () -> Bool, sourceLocation: SourceLocation = #_sourceLocation) async throws {
    let deadline = Date(timeIntervalSinceNow: seconds)
    while !condition() {
        if Date() > deadline {
            Issue.record("condition still false after \(seconds) s", sourceLocation: sourceLocation)
            return
        }
        try await Task.sleep(for: .milliseconds(5))
    }
}

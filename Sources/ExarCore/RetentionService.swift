import Foundation

/// The database's one retention thread: it deletes what the collections' retention policies no
/// longer keep, off the event loops and the writers.
///
/// A collection with a policy is registered when it opens and gets a pass at once; later passes
/// come when its writer asks (a segment rolled, or the active segment is half full: see
/// ``CollectionLog/enforceRetention(now:)``) and on a timer over every registered collection. The
/// thread starts with the first registered collection, so a database without retention has none.
final class RetentionService: @unchecked Sendable {  // every var is guarded by `condition`
    private let condition = NSCondition()
    private var logs: [ObjectIdentifier: CollectionLog] = [:]
    private var requested: [CollectionLog] = []
    private var stopping = false
    private var thread: JoinableThread?
    private let interval: TimeInterval
    /// Whether passes run on their own (on requests and the timer); a writer waits for one only then.
    let automatic: Bool

    /// - Parameters:
    ///   - interval: seconds between the timer's passes over every collection.
    ///   - automatic: `false` runs passes only when ``enforceNow()`` is called (tests of the full-disk path).
    init(interval: TimeInterval, automatic: Bool = true) {
        self.interval = interval
        self.automatic = automatic
    }

    /// Takes `log` into the passes (when it has a policy) and asks for a first one.
    func register(_ log: CollectionLog) {
        guard !log.configuration.retention.keepsEverything else { return }
        condition.lock()
        defer { condition.unlock() }
        if stopping { return }
        logs[ObjectIdentifier(log)] = log
        guard automatic else { return }
        if thread == nil {
            thread = JoinableThread(name: "exar-retention") { [self] in run() }
        }
        requested.append(log)
        condition.signal()
    }

    /// Leaves `log` out of later passes (a pass running now finishes).
    func unregister(_ log: CollectionLog) {
        condition.lock()
        logs[ObjectIdentifier(log)] = nil
        requested.removeAll { $0 === log }
        condition.unlock()
    }

    /// Asks for a pass over `log` soon; never waits.
    func request(_ log: CollectionLog) {
        condition.lock()
        if automatic, logs[ObjectIdentifier(log)] != nil, !requested.contains(where: { $0 === log }) {
            requested.append(log)
            condition.signal()
        }
        condition.unlock()
    }

    /// Runs a pass over every registered collection on the caller's thread (a full disk); returns
    /// how many segments were deleted.
    @discardableResult
    func enforceNow() -> Int {
        condition.lock()
        let targets = Array(logs.values)
        condition.unlock()
        return targets.reduce(0) { $0 + $1.enforceRetention() }
    }

    /// Stops the thread, after the pass it may be running.
    func stop() {
        condition.lock()
        stopping = true
        logs = [:]
        requested = []
        let running = thread
        thread = nil
        condition.signal()
        condition.unlock()
        running?.join()
    }

    private func run() {
        var nextTick = Date(timeIntervalSinceNow: interval)
        while true {
            condition.lock()
            while requested.isEmpty && !stopping && Date() < nextTick {
                _ = condition.wait(until: nextTick)
            }
            if stopping {
                condition.unlock()
                return
            }
            let targets: [CollectionLog]
            if Date() >= nextTick {
                targets = Array(logs.values)
                requested.removeAll()
                nextTick = Date(timeIntervalSinceNow: interval)
            } else {
                targets = requested
                requested.removeAll()
            }
            condition.unlock()
            for log in targets { log.enforceRetention() }
        }
    }
}

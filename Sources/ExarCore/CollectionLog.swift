import ExarModel
import Foundation
import Synchronization

/// A publish call waiting for the writer: how many events it appended and whom to tell.
struct PendingBurst {
    let count: Int
    /// The bytes of its records in the pending buffer.
    let bytes: Int
    /// Set for a conditional publish (one event), checked when the writer comes to it.
    let condition: PublishCondition?
    let completion: @Sendable (PublishResult) -> Void
}

/// A collection's segments and its single writer thread (group commit).
///
/// Publishers append encoded records to `pending` under `condition` (one lock per publish call,
/// not per event); the writer swaps the whole pending buffer out, writes it as batches, commits,
/// syncs as the policy says, and only then completes each call in order. Readers use the segment
/// list (its own small lock) and the segments' atomics, never `condition`.
final class CollectionLog: @unchecked Sendable {
    let name: String
    let directory: String
    let configuration: CollectionConfiguration
    let logHandler: DatabaseLogHandler?

    let segmentList: Locked<[Segment]>
    /// The id of the last event readers may see (0 when empty).
    let lastCommittedId: Atomic<UInt64>

    // Guarded by `condition`.
    let condition = NSCondition()
    var pendingRecords: [UInt8] = []
    var pendingBursts: [PendingBurst] = []
    var closing = false
    /// Whether the writer's last pass syncs (set with `closing`).
    var syncsOnClose = true
    var closed = false
    var writerRunning = false

    // Writer thread only.
    var active: Segment
    var mustRoll = false
    /// When the oldest unsynced write happened (ms), 0 when everything is synced (`interval` policy).
    /// Atomic: the writer thread reads it while waiting, without the write lock.
    let unsyncedSince = Atomic<UInt64>(0)
    /// How long the last `sync = always` group's sync took (ns): a caller that may sync in place
    /// does so only while it is under ``inPlaceSyncLimitNanoseconds``.
    let lastSyncNanoseconds = Atomic<UInt64>(0)
    /// A sync slower than this (a slow or busy disk) sends the next groups to the writer thread,
    /// so a caller's event loop is never held long; its syncs bring them back once the disk is fast.
    static let inPlaceSyncLimitNanoseconds: UInt64 = 1_000_000
    var commitObservers: [@Sendable () -> Void] = []
    /// The writer lane that runs this collection's writer passes (set by `start`).
    var writerLane: WorkLanes.Lane?
    /// The buffers a writer pass swaps with the pending ones (writer only).
    var writerRecords: [UInt8] = []
    var writerBursts: [PendingBurst] = []
    /// Held by whoever writes to the segments: the writer thread, or a publisher writing its own
    /// burst in place while the writer is idle. Guards `active`, `mustRoll`, `inlineRecords`.
    let writeLock = NSLock()
    /// The encoding buffer of bursts written in place (under `writeLock`).
    var inlineRecords: [UInt8] = []
    /// Tags' last ids for conditional publishes, and the reader that searches for them (under `writeLock`).
    /// A stored property, not `lazy`: a lazy one is changed through a copy (get, then set), which
    /// copied the whole dictionary at every lookup (100-200 us with 32k tags cached).
    var tagCache: TagLastIdCache
    lazy var tagSearchReader = LogReader(report: { [weak self] in self?.log(.error, $0) })
    /// Whether a conditional burst waits in `pendingBursts` (under `condition`).
    var pendingHasCondition = false
    /// Held from opening to closing: no other process writes this collection meanwhile.
    let lock: CollectionLock

    /// What opening the collection repaired.
    let recoveryNotes: [RecoveryNote]
    /// What it has appended and synced since it was opened (and what its scanners delivered).
    let counters = CollectionCounters()

    /// The database's retention thread, told when a segment rolls (`nil`: no retention here).
    let retention: RetentionService?
    /// Held by a retention pass; guards `retentionStopped`.
    let retentionLock = NSLock()
    var retentionStopped = false
    /// Whether the writer asked for the pass of the active segment's second half (writer only).
    var retentionRequestedForActive = false
    /// Retention passes begun and finished (one at a time, under `retentionLock`), numbered from 1.
    let retentionPassesStarted = Atomic<UInt64>(0)
    let retentionPassesFinished = Atomic<UInt64>(0)
    /// The number of the pass asked for at half a segment, which the next roll waits for (writer only; 0: none).
    var retentionPassAwaited: UInt64 = 0

    init(name: String, directory: String, configuration: CollectionConfiguration,
         logHandler: DatabaseLogHandler?, retention: RetentionService? = nil) throws(ExarError) {
        self.name = name
        self.retention = configuration.retention.keepsEverything ? nil : retention
        self.directory = directory
        self.configuration = configuration
        self.logHandler = logHandler
        tagCache = TagLastIdCache(capacity: configuration.tagCacheCapacity)
        try FileSystem.createDirectories(directory)
        lock = try CollectionLock(directory: directory)
        var notes: [RecoveryNote] = []
        var segments = try Self.openSegments(directory: directory, configuration: configuration, notes: &notes)
        if segments.isEmpty {
            let first = try Segment.create(directory: directory, baseId: segments.last?.nextId ?? 1,
                                           size: configuration.segmentSize,
                                           indexInterval: configuration.indexIntervalBytes)
            segments.append(first)
        }
        active = segments[segments.count - 1]
        lastCommittedId = Atomic(active.nextId - 1)
        segmentList = Locked(segments)
        recoveryNotes = notes
        for note in notes {
            logHandler?(.warning, "collection \(name): \(note)")
        }
        let policy = configuration.retention
        if policy.maxBytes > 0 && policy.maxBytes < 2 * active.fileBytes {
            logHandler?(.warning, "collection \(name): retention max_bytes \(policy.maxBytes) is less than two segments (\(2 * active.fileBytes) bytes): only the active segment is kept")
        }
    }

    /// Opens every segment of `directory` in id order; the last one is validated and repaired.
    static func openSegments(directory: String, configuration: CollectionConfiguration,
                                     notes: inout [RecoveryNote]) throws(ExarError) -> [Segment] {
        var baseIds: [UInt64] = []
        for name in try FileSystem.contents(of: directory) where name.hasSuffix(".log") {
            let stem = name.dropLast(4)
            if stem.count == 20, stem.allSatisfy(\.isASCII), let id = UInt64(stem), id > 0, id <= Format.maximumId {
                baseIds.append(id)
            }
        }
        baseIds.sort()
        removeOrphanedSideFiles(directory: directory, keeping: Set(baseIds), notes: &notes)
        // A last segment file that never got its size (a crash while creating it) holds nothing: drop it.
        while let last = baseIds.last {
            let path = Segment.paths(directory: directory, baseId: last).log
            if let size = FileSystem.size(of: path), size >= Format.Segment.headerSize + Format.Batch.headerSize + Format.Record.headerSize {
                break
            }
            notes.append(RecoveryNote(kind: .replacedSegment, path: path, detail: "segment file too small to hold events; removed"))
            FileSystem.remove(path)
            baseIds.removeLast()
        }
        var segments: [Segment] = []
        for (number, baseId) in baseIds.enumerated() {
            let isLast = number == baseIds.count - 1
            let segment: Segment
            do {
                segment = try Segment.open(directory: directory, baseId: baseId,
                                           indexInterval: configuration.indexIntervalBytes, isLast: isLast, notes: &notes)
            } catch {
                if isLast { throw error }
                notes.append(RecoveryNote(kind: .corruptSealedSegment, path: Segment.paths(directory: directory, baseId: baseId).log,
                                          detail: "cannot be opened (\(error)); skipped"))
                continue
            }
            if let previous = segments.last, previous.nextId != baseId {
                notes.append(RecoveryNote(kind: .corruptSealedSegment, path: segment.path,
                                          detail: "previous segment ends at id \(previous.nextId - 1), this one starts at \(baseId)"))
            }
            segments.append(segment)
        }
        if let last = segments.last, last.isEmpty, let previous = segments.dropLast().last, previous.nextId != last.baseId {
            // An empty last segment named after a wrong id (the previous one lost its tail): rename by recreating.
            FileSystem.remove(last.path)
            segments.removeLast()
            let replacement = try Segment.create(directory: directory, baseId: previous.nextId,
                                                 size: configuration.segmentSize, indexInterval: configuration.indexIntervalBytes)
            segments.append(replacement)
        }
        return segments
    }

    /// Removes the index, tag and time files whose segment file is gone: a retention pass (which
    /// unlinks the log file first) was cut short.
    private static func removeOrphanedSideFiles(directory: String, keeping baseIds: Set<UInt64>,
                                                notes: inout [RecoveryNote]) {
        var orphans = 0
        for name in (try? FileSystem.contents(of: directory)) ?? [] {
            guard let dot = name.lastIndex(of: "."), [".index", ".tags", ".time"].contains(name[dot...]) else { continue }
            let stem = name[..<dot]
            guard stem.count == 20, stem.allSatisfy(\.isASCII), let id = UInt64(stem), !baseIds.contains(id) else { continue }
            FileSystem.remove(directory + "/" + name)
            orphans += 1
        }
        if orphans > 0 {
            notes.append(RecoveryNote(kind: .removedOrphan, path: directory,
                                      detail: "\(orphans) side file\(orphans == 1 ? "" : "s") without a segment file removed (a deletion was cut short)"))
        }
    }

    /// Starts the writer (on a shared writer lane); `observers` are called after every commit.
    func start(commitObservers: [@Sendable () -> Void]) {
        self.commitObservers = commitObservers
        writerRecords.reserveCapacity(Self.pendingReserve)
        writerBursts.reserveCapacity(1024)
        condition.lock()
        writerRunning = true
        writerLane = WorkLanes.writers.assign().lane
        pendingRecords.reserveCapacity(Self.pendingReserve)
        condition.unlock()
    }

    /// The segments, oldest first.
    var segments: [Segment] {
        segmentList.withLock { $0 }
    }

    // MARK: Publishing (any thread)

    /// Appends one burst of events to the pending buffer and wakes the writer; never waits for disk.
    /// With a `condition`, `fill` must append exactly one event, stored only if the last event
    /// carrying the condition's tag is the expected one when the writer comes to it.
    /// `syncInPlace`: with `sync = always`, the caller may be the one that syncs (it then waits for
    /// the disk before `publish` returns), while the collection's syncs are fast.
    func publish(
        _ fill: (inout PublishAppender) throws(ExarError) -> Void, expecting expectation: PublishCondition? = nil,
        syncInPlace: Bool = false, completion: @escaping @Sendable (PublishResult) -> Void
    ) throws(ExarError) {
        let now = currentTimeMilliseconds()
        // When nothing waits for the writer and it is not writing, write here: no hand-off to the
        // writer thread and back. With `sync = always` only if the caller lets the sync block it.
        let inPlace = configuration.sync != .always
            || (syncInPlace && lastSyncNanoseconds.load(ordering: .relaxed) < Self.inPlaceSyncLimitNanoseconds)
        if inPlace && writeLock.try() {
            inPlace: do {
                condition.lock()
                if closing || closed {
                    condition.unlock()
                    writeLock.unlock()
                    throw .io(.notConnected, "collection \(name) is closed")
                }
                guard pendingBursts.isEmpty else {
                    condition.unlock()
                    writeLock.unlock()
                    break inPlace
                }
                condition.unlock()
                let result: PublishResult?
                do {
                    result = try writeInPlace(fill, expecting: expectation, completion: completion, now: now)
                } catch {
                    writeLock.unlock()
                    throw error
                }
                // Answered after the lock is let go: other threads write meanwhile instead of
                // finding it taken while this caller sends its answers.
                writeLock.unlock()
                if let result { completion(result) }
                return
            }
        }
        condition.lock()
        if closing || closed {
            condition.unlock()
            throw .io(.notConnected, "collection \(name) is closed")
        }
        let before = pendingRecords.count
        let count: Int
        do {
            count = try encode(fill, into: &pendingRecords, now: now, single: expectation != nil)
        } catch {
            condition.unlock()
            throw error
        }
        if count > 0 {
            enqueueLocked(count: count, bytes: pendingRecords.count - before, expecting: expectation, completion: completion)
        }
        condition.unlock()
        if count == 0 {
            completion(PublishResult(firstId: lastCommittedId.load(ordering: .acquiring) + 1, storedCount: 0, error: nil))
        }
    }

    /// Queues a burst whose records are already in `pendingRecords` (`condition` held) and wakes
    /// the writer if it was idle.
    func enqueueLocked(count: Int, bytes: Int, expecting expectation: PublishCondition?,
                       completion: @escaping @Sendable (PublishResult) -> Void) {
        let wasEmpty = pendingBursts.isEmpty
        pendingBursts.append(PendingBurst(count: count, bytes: bytes, condition: expectation, completion: completion))
        if expectation != nil { pendingHasCondition = true }
        if wasEmpty { writerLane?.schedule(self) }
    }

    /// Lets `fill` append its events to `buffer` in their record form; returns how many. When
    /// `fill` throws, `buffer` is as it was.
    func encode(
        _ fill: (inout PublishAppender) throws(ExarError) -> Void, into buffer: inout [UInt8], now: UInt64,
        single: Bool = false
    ) throws(ExarError) -> Int {
        var records: [UInt8] = []
        swap(&records, &buffer)
        // Moved, not copied: a second reference would make every append copy the whole buffer.
        var appender = PublishAppender(records: consume records, now: now, maximumEventBytes: configuration.maximumEventBytes)
        do {
            try fill(&appender)
        } catch {
            buffer = appender.finish(keep: false)
            throw error
        }
        let count = appender.count
        if single && count != 1 {
            buffer = appender.finish(keep: false)
            throw .validation("a conditional publish carries exactly one event")
        }
        buffer = appender.finish(keep: true)
        return count
    }

    /// Encodes and writes one burst on the caller's thread: `writeLock` is held and nothing is
    /// pending, so its events come right after every burst accepted before it. Returns the
    /// burst's result for the caller to deliver once the lock is let go, or `nil` when the burst
    /// was queued for the writer thread instead (which then calls `completion`).
    func writeInPlace(
        _ fill: (inout PublishAppender) throws(ExarError) -> Void, expecting expectation: PublishCondition?,
        completion: @escaping @Sendable (PublishResult) -> Void, now: UInt64
    ) throws(ExarError) -> PublishResult? {
        let count = try encode(fill, into: &inlineRecords, now: now, single: expectation != nil)
        var encoded: [UInt8] = []
        swap(&encoded, &inlineRecords)
        // A burst that may not fit the active segment goes to the writer thread: rolling creates
        // four files and syncs, which must not block the caller's event loop. It may
        // queue behind bursts other threads queued meanwhile; this caller had nothing pending, so
        // its own bursts keep their order.
        let batchHeaders = (encoded.count / 4096 + 1) * Format.Batch.headerSize
        if count > 0 && (mustRoll || encoded.count + batchHeaders + 4096 > active.freePayloadBytes) {
            condition.lock()
            pendingRecords.append(contentsOf: encoded)
            enqueueLocked(count: count, bytes: encoded.count, expecting: expectation, completion: completion)
            condition.unlock()
            encoded.removeAll(keepingCapacity: true)
            inlineRecords = encoded
            return nil
        }
        let result: PublishResult
        if count > 0 {
            let wasSynced = unsyncedSince.load(ordering: .relaxed) == 0
            if let expectation {
                result = encoded.withUnsafeBytes { writeConditional($0, expectation) }
            } else {
                result = write(encoded).result(ofBurstAt: 0, count: count)
            }
            // The interval's fsync stays on the writer thread, never on the caller's.
            if wasSynced && unsyncedSince.load(ordering: .relaxed) != 0 {
                // The writer has no pass due: its next one finds the interval sync's deadline.
                writerLane?.schedule(self)
            }
        } else {
            result = PublishResult(firstId: lastCommittedId.load(ordering: .acquiring) + 1, storedCount: 0, error: nil)
        }
        encoded.removeAll(keepingCapacity: true)
        inlineRecords = encoded
        return result
    }

    /// Stops taking publishes, writes what is pending, seals the active segment and stops the writer.
    /// `syncing: false` skips the last sync (the cache closing an idle collection whose policy
    /// is `sync = none`, which promises nothing the sync would keep).
    func close(syncing: Bool = true) {
        condition.lock()
        if closed || closing {
            condition.unlock()
            return
        }
        closing = true
        syncsOnClose = syncing
        writerLane?.schedule(self)
        // The writer's last pass writes what is pending, seals and lets the folder go.
        while writerRunning { condition.wait() }
        closed = true
        condition.unlock()
    }

    /// Forces every written event of the active segment to the device.
    func flush() throws(ExarError) {
        // The active segment can change under us; syncing every segment's descriptor is safe and cheap
        // for the ones already synced.
        for segment in segments.suffix(2) {
            try counters.timingSync { () throws(ExarError) in try segment.sync() }
        }
    }

    func log(_ level: DatabaseLogLevel, _ message: String) {
        logHandler?(level, "collection \(name): \(message)")
    }
}

import ExarModel
import Foundation
import Synchronization

/// Retention: deleting the oldest sealed segments that the collection's policy no longer keeps.
extension CollectionLog {
    /// Deletes the oldest sealed segments beyond the policy and returns how many went.
    ///
    /// The rule, oldest segment first and stopping at the first one that stays (so what is left is
    /// always a run of consecutive ids): a sealed segment that is not the last goes when the
    /// collection is over `max_bytes` without it, or when its newest event is older than
    /// `max_age_in_ms`. Bytes are those the segments' four files take on disk
    /// (``Segment/fileBytes``). While the active segment is more than half full, the segment the
    /// next roll creates is counted too, so that a pass run before the roll keeps the folder within
    /// `max_bytes` plus one segment.
    ///
    /// Runs on the retention thread (or a writer that met a full disk); never takes `writeLock`.
    /// Segments leave the list first, under its lock; readers that still hold one keep its
    /// mappings (and so its events) until they let it go. Each log file is unlinked and the folder
    /// synced before the next segment's, so a crash leaves a prefix deleted, never a gap.
    @discardableResult
    func enforceRetention(now: UInt64 = currentTimeMilliseconds()) -> Int {
        let policy = configuration.retention
        guard !policy.keepsEverything else { return 0 }
        retentionLock.lock()
        defer { retentionLock.unlock() }
        // Numbered before it reads the active segment's committed end (see `awaitRetentionPass`).
        retentionPassesStarted.add(1, ordering: .sequentiallyConsistent)
        defer { retentionPassesFinished.add(1, ordering: .releasing) }
        if retentionStopped { return 0 }
        let segments = self.segments
        guard let last = segments.last else { return 0 }
        var total = segments.reduce(UInt64(0)) { $0 + $1.fileBytes }
        if last.isCommittedPastHalf { total += last.fileBytes }
        var doomed = 0
        for segment in segments.dropLast() {
            guard segment.isSealed.load(ordering: .acquiring) else { break }
            let size = segment.fileBytes
            let overBytes = policy.maxBytes > 0 && total - size > policy.maxBytes
            let newest = segment.maxTimestamp.load(ordering: .acquiring)
            let tooOld = policy.maxAgeMilliseconds > 0 && now > newest && now - newest > policy.maxAgeMilliseconds
            guard overBytes || tooOld else { break }
            total -= size
            doomed += 1
        }
        guard doomed > 0 else { return 0 }
        // Only this pass removes from the front (under `retentionLock`); the writer only appends.
        let removed = segmentList.withLock { list -> [Segment] in
            let prefix = Array(list.prefix(doomed))
            list.removeFirst(doomed)
            return prefix
        }
        var bytes: UInt64 = 0
        for segment in removed {
            let paths = Segment.paths(directory: directory, baseId: segment.baseId)
            FileSystem.remove(paths.log)
            FileSystem.syncDirectory(directory)
            for side in [paths.index, paths.tags, paths.time] { FileSystem.remove(side) }
            bytes += segment.fileBytes
        }
        FileSystem.syncDirectory(directory)
        counters.retentionDeletedSegments.add(UInt64(removed.count), ordering: .relaxed)
        counters.retentionDeletedBytes.add(bytes, ordering: .relaxed)
        let firstKept = removed[removed.count - 1].nextId
        log(.info, "retention deleted \(removed.count) segment\(removed.count == 1 ? "" : "s") (ids \(removed[0].baseId) to \(firstKept - 1), \(bytes) bytes); the first retained id is \(firstKept)")
        return removed.count
    }

    /// Writer: asks for the pass that makes room for the next segment (the active one is past half).
    func requestRetentionForNextSegment(_ retention: RetentionService) {
        // The commit's store of `committedEnd` must be visible before the pass count is read:
        // a pass numbered after this one then sees the segment past half and counts the next.
        atomicMemoryFence(ordering: .sequentiallyConsistent)
        retentionPassAwaited = retentionPassesStarted.load(ordering: .sequentiallyConsistent) + 1
        retention.request(self)
    }

    /// Writer, at a roll: waits (at most `retentionRollWait`) for the pass asked for at half a
    /// segment, so that creating the next segment keeps the folder within `max_bytes` plus one
    /// segment even when the writer filled the second half faster than that pass ran.
    func awaitRetentionPass() {
        defer { retentionPassAwaited = 0 }
        guard retentionPassAwaited > 0, let retention, retention.automatic else { return }
        let deadline = ContinuousClock.now + Self.retentionRollWait
        while retentionPassesFinished.load(ordering: .acquiring) < retentionPassAwaited, ContinuousClock.now < deadline {
            usleep(100)
        }
    }

    /// The longest a roll waits for the retention pass (it takes a few file removals and folder syncs).
    static let retentionRollWait = Duration.milliseconds(100)

    /// Ends retention for this log (it is closing): a pass running now finishes first, none starts later.
    func stopRetention() {
        retentionLock.lock()
        retentionStopped = true
        retentionLock.unlock()
    }

    /// Whether `error` says the device is full (`ENOSPC`).
    static func isNoSpace(_ error: ExarError) -> Bool {
        guard case .io(_, let message) = error else { return false }
        return message.contains("(os error \(ENOSPC))")
    }
}

extension Segment {
    /// Whether what is committed leaves less than half the segment for the next batch's payload:
    /// the writer asks for a pass then, and the pass counts the next segment. Reads only the
    /// atomic `committedEnd` (not the writer's own `writeEnd`), so any thread may ask.
    var isCommittedPastHalf: Bool {
        capacity - committedEnd.load(ordering: .acquiring) - Format.Batch.headerSize < capacity / 2
    }

    /// Bytes of the segment's four files at their full size, rounded up to whole 4 KiB blocks:
    /// what they take on disk once full (an active segment's files are allocated as they fill,
    /// so counting it whole keeps the bound whatever it holds).
    var fileBytes: UInt64 {
        func blocks(_ size: Int) -> UInt64 { UInt64((size + 4095) / 4096 * 4096) }
        return blocks(log.size) + blocks(index.size) + blocks(tags.size) + blocks(time.size)
    }
}

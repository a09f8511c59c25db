import ExarModel
import Foundation

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
        if retentionStopped { return 0 }
        let segments = self.segments
        guard let last = segments.last else { return 0 }
        var total = segments.reduce(UInt64(0)) { $0 + $1.fileBytes }
        if last.freePayloadBytes < configuration.segmentSize / 2 { total += last.fileBytes }
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
    /// Bytes of the segment's four files on disk: preallocation makes each take its size, rounded
    /// up to whole 4 KiB blocks.
    var fileBytes: UInt64 {
        func blocks(_ size: Int) -> UInt64 { UInt64((size + 4095) / 4096 * 4096) }
        return blocks(log.size) + blocks(index.size) + blocks(tags.size) + blocks(time.size)
    }
}

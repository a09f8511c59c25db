import ExarModel

/// What a conditional publish (`PublishIf`) expects: the id of the last event carrying `tag`
/// (`0`: no retained event carries it).
public struct PublishCondition: Sendable, Equatable {
    /// The tag, as bytes (one tag: no space, TAB or newline).
    public let tag: [UInt8]
    /// The id the last event carrying `tag` must have.
    public let expectedId: UInt64

    /// - Throws: ``ExarError/validation(_:)`` for an empty tag or one with whitespace.
    public init(tag: [UInt8], expectedId: UInt64) throws(ExarError) {
        try EventValidation.validateTag(tag)
        self.tag = tag
        self.expectedId = expectedId
    }

    /// - Throws: ``ExarError/validation(_:)`` for an empty tag or one with whitespace.
    public init(tag: String, expectedId: UInt64) throws(ExarError) {
        try self.init(tag: Array(tag.utf8), expectedId: expectedId)
    }
}

/// The last ids of recently checked tags, bounded: two generations of at most `capacity / 2`
/// entries each. A hit in the older one moves the entry to the newer; when the newer is full, the
/// older is dropped and the newer takes its place. So the tags checked most recently stay, and
/// memory is bounded however many distinct tags a collection has.
///
/// An entry `(lastId, checkedThrough)` says: among the ids up to `checkedThrough`, the last event
/// carrying the tag is `lastId` (`0`: none). A lookup then only searches the ids after
/// `checkedThrough`, so plain publishes never touch the cache.
struct TagLastIdCache {
    struct Entry {
        var lastId: UInt64
        var checkedThrough: UInt64
    }

    let capacity: Int
    private var newer: [[UInt8]: Entry] = [:]
    private var older: [[UInt8]: Entry] = [:]

    init(capacity: Int) {
        self.capacity = max(2, capacity)
    }

    var count: Int { newer.count + older.count }

    mutating func lookup(_ tag: [UInt8]) -> Entry? {
        if let entry = newer[tag] { return entry }
        guard let entry = older.removeValue(forKey: tag) else { return nil }
        store(tag, entry)
        return entry
    }

    mutating func store(_ tag: [UInt8], _ entry: Entry) {
        if newer[tag] == nil && newer.count >= capacity / 2 {
            older = newer
            newer = [:]
            newer.reserveCapacity(capacity / 2)
        }
        newer[tag] = entry
    }

    /// Forgets everything (the collection's ids start again, or a write may have left it stale).
    mutating func removeAll() {
        newer = [:]
        older = [:]
    }
}

/// Conditional publishes: the check and the append as one step of whoever holds `writeLock`.
extension CollectionLog {
    /// The id of the last retained event carrying `tag` (`0`: none), with `writeLock` held, so
    /// every accepted event before is written. Uses the cache, and searches only the ids after
    /// what it knows, newest first, skipping segments and index blocks whose bloom bitmaps rule
    /// the tag out.
    func lastId(ofTag tag: [UInt8]) -> UInt64 {
        let last = active.nextId - 1
        let firstRetained = segments.first?.baseId ?? 1
        var entry = tagCache.lookup(tag) ?? .init(lastId: 0, checkedThrough: 0)
        if entry.checkedThrough < last {
            if let found = searchTagBackwards(tag, after: entry.checkedThrough) { entry.lastId = found }
            entry.checkedThrough = last
            tagCache.store(tag, entry)
        }
        // Retention may have deleted the tag's last event since: then no retained event carries it.
        return entry.lastId >= firstRetained ? entry.lastId : 0
    }

    /// ``lastId(ofTag:)`` from any thread: waits for `writeLock`.
    func lastIdOfTagNow(_ tag: [UInt8]) -> UInt64 {
        writeLock.lock()
        defer { writeLock.unlock() }
        return lastId(ofTag: tag)
    }

    /// The largest id after `after` of an event carrying `tag`, or `nil`: segments newest first,
    /// and in each its index blocks newest first, reading only blocks whose bitmap may hold it.
    func searchTagBackwards(_ tag: [UInt8], after: UInt64) -> UInt64? {
        let filter = TagFilter(bytes: tag)
        let segments = self.segments
        let stride = Format.Tags.blockBits / 8
        for segment in segments.reversed() {
            let segmentEnd = segment.nextId  // ids below it are in this segment or before
            if segmentEnd <= after + 1 { return nil }
            if segmentEnd == segment.baseId || !segment.segmentMayContain(filter.hash) { continue }
            let count = segment.usableIndexCount(below: segment.committedEnd.load(ordering: .acquiring))
            var blockEnd = segmentEnd
            var block = count - 1
            while blockEnd > after + 1 {
                // Block -1: the batches before the first index entry (none in practice: the first batch is indexed).
                let blockStart = block >= 0 ? segment.indexEntry(block).id : segment.baseId
                if block < 0 || filter.blockProbe.mayContain(segment.blockBitmaps + block * stride) {
                    if let found = lastMatch(filter, from: max(blockStart, after + 1), to: blockEnd, in: segments) {
                        return found
                    }
                }
                if block < 0 { break }
                blockEnd = blockStart
                block -= 1
            }
            if blockEnd <= after + 1 { return nil }
        }
        return nil
    }

    /// The last id in `from ..< to` of an event carrying the filter's tag.
    private func lastMatch(_ filter: TagFilter, from: UInt64, to: UInt64, in segments: [Segment]) -> UInt64? {
        guard from < to else { return nil }
        var cursor = LogCursor(nextId: from)
        var found: UInt64?
        _ = tagSearchReader.read(segments: segments, refresh: { segments }, cursor: &cursor, endId: to, tag: filter,
                                 maxEvents: .max, maxBatches: .max) { view, _ in
            found = view.id
            return true
        }
        return found
    }

    /// Writes one encoded event if its condition holds, with `writeLock` held; answers a
    /// ``ExarError/conflict(_:)`` with the actual last id otherwise (nothing is written).
    func writeConditional(_ record: UnsafeRawBufferPointer, _ condition: PublishCondition) -> PublishResult {
        let actual = lastId(ofTag: condition.tag)
        guard actual == condition.expectedId else {
            return PublishResult(firstId: active.nextId, storedCount: 0, error: .conflict(actual))
        }
        let result = write(record).result(ofBurstAt: 0, count: 1)
        if result.storedCount == 1 {
            var carriesTag = false
            RecordWalk.forEach(record) { view in
                carriesTag = condition.tag.withUnsafeBytes { TagBloom.fieldContains(view.tags, tag: $0) }
                return false
            }
            tagCache.store(condition.tag, .init(lastId: carriesTag ? result.firstId : actual, checkedThrough: result.firstId))
        }
        return result
    }

    /// Writes queued bursts some of which are conditional: the plain ones between two
    /// conditional ones in one write, each conditional one checked after everything before it
    /// is written. Returns each burst's result, in order.
    func writeBursts(_ records: UnsafeRawBufferPointer, _ bursts: [PendingBurst]) -> [PublishResult] {
        var results: [PublishResult] = []
        results.reserveCapacity(bursts.count)
        var runStart = 0
        var runFirstBurst = 0
        var offset = 0
        func writeRun(to end: Int, bursts range: Range<Int>) {
            guard end > runStart else { return }
            let outcome = write(UnsafeRawBufferPointer(rebasing: records[runStart..<end]))
            var before = 0
            for index in range {
                results.append(outcome.result(ofBurstAt: before, count: bursts[index].count))
                before += bursts[index].count
            }
        }
        for (index, burst) in bursts.enumerated() {
            if let condition = burst.condition {
                writeRun(to: offset, bursts: runFirstBurst..<index)
                results.append(writeConditional(UnsafeRawBufferPointer(rebasing: records[offset..<offset + burst.bytes]), condition))
                runStart = offset + burst.bytes
                runFirstBurst = index + 1
            }
            offset += burst.bytes
        }
        writeRun(to: offset, bursts: runFirstBurst..<bursts.count)
        return results
    }
}

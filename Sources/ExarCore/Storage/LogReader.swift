import ExarModel

/// Where a reader stands in a collection: the next id to look at, and a hint of where it lies.
struct LogCursor: Sendable, Equatable {
    /// The id of the next event to consider.
    var nextId: UInt64
    /// The segment (index into the collection's segment list) and the byte position of the batch
    /// holding `nextId` or one before it; `segment < 0` means "locate by id".
    var segment: Int = -1
    /// The base id of that segment: retention removes segments from the front of the list, so
    /// the index alone may point at another segment in a later list.
    var segmentBaseId: UInt64 = 0
    var position: Int = 0
    /// A guess of the index block `position` starts (tag reads only), saving a binary search per batch.
    var block: Int = 0

    init(nextId: UInt64) {
        self.nextId = max(nextId, 1)
    }

    /// The cursor of a query's `offset` (exclusive): from the event after it. The largest offset
    /// has no event after it (its cursor stays at `UInt64.max`, where no event can be).
    init(after offset: UInt64) {
        self.init(nextId: offset == UInt64.max ? offset : offset + 1)
    }
}

/// A tag to filter on: its bytes and its bloom hash.
struct TagFilter: Sendable {
    let bytes: [UInt8]
    let hash: TagHash
    let blockProbe: BlockBitmapProbe

    init(_ tag: String) {
        self.init(bytes: Array(tag.utf8))
    }

    init(bytes: [UInt8]) {
        self.bytes = bytes
        hash = bytes.withUnsafeBytes { TagHash($0) }
        blockProbe = BlockBitmapProbe(hash)
    }

    func matches(_ tags: UnsafeRawBufferPointer) -> Bool {
        bytes.withUnsafeBytes { TagBloom.fieldContains(tags, tag: $0) }
    }
}

/// Why a read stopped.
enum ReadStop: Equatable {
    /// Every committed event up to now was visited.
    case caughtUp
    /// The cursor reached the end id.
    case reachedEnd
    /// The visitor asked to stop.
    case stopped
    /// The budget of events or batches was used up; more may be ready.
    case budget
}

/// Reads events out of a collection's segments without any lock of the writer.
final class LogReader {
    private let buffer = DecompressionBuffer()
    private let report: (String) -> Void
    private var reportedCorruption: Set<String> = []

    /// - Parameter report: told once per damaged batch found while reading.
    init(report: @escaping (String) -> Void) {
        self.report = report
    }

    /// Visits the events with ids in `cursor.nextId ..< endId` in order, skipping those without `tag`.
    ///
    /// - Parameters:
    ///   - segments: the collection's segments, oldest first (`refresh` gives a newer list).
    ///   - maxEvents: visits at most this many events before returning ``ReadStop/budget``.
    ///   - maxBatches: examines at most this many batches (bounds the time a filtered read spends).
    ///   - visit: receives each event and the position of its batch; returns `false` to stop
    ///     after it (the cursor then points just past it).
    func read(
        segments initial: [Segment], refresh: () -> [Segment], cursor: inout LogCursor, endId: UInt64,
        tag: TagFilter?, maxEvents: Int, maxBatches: Int, visit: (EventView, Int) -> Bool
    ) -> ReadStop {
        var segments = initial
        var events = 0
        var batches = 0
        resolve(&cursor, in: segments)
        while true {
            if cursor.nextId >= endId { return .reachedEnd }
            if batches >= maxBatches || events >= maxEvents { return .budget }
            let segment = segments[cursor.segment]
            var end = segment.committedEnd.load(ordering: .acquiring)
            let sealed = segment.isSealed.load(ordering: .acquiring)
            if let tag, sealed, cursor.segment + 1 < segments.count, !segment.segmentMayContain(tag.hash) {
                moveToSegment(cursor.segment + 1, of: segments, &cursor)
                continue
            }
            let base = UnsafeRawPointer(segment.log.base)
            let verified = segment.verifiedEnd.load(ordering: .acquiring)
            let probe = cursor.position >= end
                ? .end
                : BatchProbe.probe(base, position: cursor.position, limit: end, expectedBaseId: nil,
                                   verifyChecksum: cursor.position >= verified)
            switch probe {
            case .end:
                if cursor.segment + 1 >= segments.count {
                    segments = refresh()
                    guard let number = Self.number(of: segment.baseId, in: segments) else {
                        // Retention removed this segment meanwhile: go on from the first that holds later ids.
                        locate(&cursor, in: segments)
                        continue
                    }
                    cursor.segment = number
                    if cursor.segment + 1 >= segments.count { return .caughtUp }
                }
                // A newer segment exists, so this one's end is final: look once more before leaving.
                end = segment.committedEnd.load(ordering: .acquiring)
                if cursor.position < end && BatchProbe.probe(base, position: cursor.position, limit: end,
                                                             expectedBaseId: nil, verifyChecksum: false) != .end {
                    continue
                }
                moveToSegment(cursor.segment + 1, of: segments, &cursor)
            case .invalid(let reason):
                reportOnce(segment, cursor.position, reason)
                skipDamagedBatch(in: segments, end: end, &cursor)
            case .batch(let header):
                batches += 1
                if cursor.position == verified {
                    _ = segment.verifiedEnd.compareExchange(
                        expected: verified, desired: cursor.position + header.totalSize, ordering: .releasing)
                }
                if header.endId <= cursor.nextId {
                    cursor.position += header.totalSize
                    continue
                }
                if let tag, let next = skippableBlockEnd(segment, at: cursor.position, end: end, tag: tag,
                                                         hint: &cursor.block) {
                    cursor.position = next.position
                    cursor.nextId = max(cursor.nextId, next.id)
                    continue
                }
                guard let payload = buffer.payload(of: base + cursor.position, header) else {
                    reportOnce(segment, cursor.position, "batch does not decompress")
                    skipDamagedBatch(in: segments, end: end, &cursor)
                    continue
                }
                var id = header.baseId
                var stopped = false
                let batchPosition = cursor.position
                var remaining = maxEvents - events
                RecordWalk.forEach(payload) { record in
                    defer { id += 1 }
                    if id < cursor.nextId { return true }
                    if id >= endId { return false }
                    cursor.nextId = id + 1
                    if let tag, !tag.matches(record.tags) { return true }
                    events += 1
                    remaining -= 1
                    let view = EventView(id: id, timestamp: record.timestamp, tags: record.tags, data: record.data)
                    if !visit(view, batchPosition) {
                        stopped = true
                        return false
                    }
                    return remaining > 0
                }
                if stopped { return .stopped }
                if cursor.nextId >= header.endId {
                    cursor.position += header.totalSize
                } else if cursor.nextId < endId && remaining > 0 {
                    // The walk ended early: the records of this batch are malformed.
                    reportOnce(segment, cursor.position, "batch holds malformed records")
                    skipDamagedBatch(in: segments, end: end, &cursor)
                }
            }
        }
    }

    /// Makes the cursor's segment number point into `segments`: the same segment at its number in
    /// this list, or, when the cursor has none or its segment is gone, the segment holding
    /// `cursor.nextId` (the first retained one when that id was deleted).
    private func resolve(_ cursor: inout LogCursor, in segments: [Segment]) {
        if cursor.segment >= 0 && cursor.segment < segments.count && segments[cursor.segment].baseId == cursor.segmentBaseId
            && cursor.segmentBaseId <= cursor.nextId
        {
            return
        }
        if cursor.segment >= 0, cursor.segmentBaseId <= cursor.nextId,
            let number = Self.number(of: cursor.segmentBaseId, in: segments)
        {
            cursor.segment = number
            return
        }
        locate(&cursor, in: segments)
    }

    /// The number of the segment whose base id is `baseId`, if `segments` holds it.
    private static func number(of baseId: UInt64, in segments: [Segment]) -> Int? {
        var low = 0
        var high = segments.count
        while low < high {
            let middle = (low + high) / 2
            let id = segments[middle].baseId
            if id == baseId { return middle }
            if id < baseId { low = middle + 1 } else { high = middle }
        }
        return nil
    }

    /// Points the cursor at the segment and indexed batch that hold `cursor.nextId`.
    private func locate(_ cursor: inout LogCursor, in segments: [Segment]) {
        var low = 0
        var high = segments.count
        var found = 0
        while low < high {
            let middle = (low + high) / 2
            if segments[middle].baseId <= cursor.nextId {
                found = middle
                low = middle + 1
            } else {
                high = middle
            }
        }
        let segment = segments[found]
        cursor.segment = found
        cursor.segmentBaseId = segment.baseId
        cursor.position = segment.seekPosition(for: cursor.nextId, end: segment.committedEnd.load(ordering: .acquiring))
    }

    private func moveToSegment(_ number: Int, of segments: [Segment], _ cursor: inout LogCursor) {
        cursor.segment = number
        cursor.segmentBaseId = segments[number].baseId
        cursor.position = Format.Segment.headerSize
        cursor.nextId = max(cursor.nextId, segments[number].baseId)
    }

    /// Jumps over a batch that cannot be read: to the next indexed batch after it, or the next segment.
    /// The events in between are lost to readers but never served as garbage.
    private func skipDamagedBatch(in segments: [Segment], end: Int, _ cursor: inout LogCursor) {
        let segment = segments[cursor.segment]
        let count = segment.usableIndexCount(below: end)
        for number in 0..<count {
            let entry = segment.indexEntry(number)
            if entry.position > cursor.position {
                cursor.position = entry.position
                cursor.nextId = max(cursor.nextId, entry.id)
                return
            }
        }
        if cursor.segment + 1 < segments.count {
            moveToSegment(cursor.segment + 1, of: segments, &cursor)
        } else {
            // Damage in the active segment past its index: nothing readable follows yet.
            cursor.position = end
        }
    }

    /// When the batch at `position` starts an index block whose bitmap rules `tag` out and a next
    /// block is committed, the first id and position of the first later block that may hold the
    /// tag (or of the last block, whose bitmap may still grow).
    private func skippableBlockEnd(_ segment: Segment, at position: Int, end: Int, tag: TagFilter, hint: inout Int)
        -> (id: UInt64, position: Int)?
    {
        let count = segment.usableIndexCount(below: end)
        let block: Int
        if hint < count && segment.indexEntry(hint).position == position {
            block = hint
        } else if hint + 1 < count && segment.indexEntry(hint + 1).position == position {
            block = hint + 1
        } else if hint < count && segment.indexEntry(hint).position < position
            && (hint + 1 >= count || segment.indexEntry(hint + 1).position > position)
        {
            return nil  // inside the block of the hint: its batches are read
        } else if let found = segment.block(containing: position, count: count),
            segment.indexEntry(found).position == position
        {
            block = found
        } else {
            return nil  // inside a block: its batches are read
        }
        hint = block
        let bitmaps = segment.blockBitmaps
        let stride = Format.Tags.blockBits / 8
        guard block + 1 < count, !tag.blockProbe.mayContain(bitmaps + block * stride) else { return nil }
        // Skip every following complete block that rules the tag out, in one go.
        var next = block + 1
        while next + 1 < count && !tag.blockProbe.mayContain(bitmaps + next * stride) {
            next += 1
        }
        hint = next
        return segment.indexEntry(next)
    }

    private func reportOnce(_ segment: Segment, _ position: Int, _ reason: String) {
        let key = "\(segment.baseId)@\(position)"
        if reportedCorruption.insert(key).inserted {
            report("damaged batch in \(segment.path) at \(position): \(reason); skipped, not served")
        }
    }
}

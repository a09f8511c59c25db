import CLZ4
import ExarModel

/// What opening a collection found and did, for the log and for tests.
public struct RecoveryNote: Sendable, Equatable, CustomStringConvertible {
    /// What kind of repair this is.
    public enum Kind: Sendable, Equatable {
        /// A torn or corrupt tail of the last segment was zeroed.
        case truncatedTail
        /// An index or tag file was missing or stale and was rebuilt.
        case rebuiltIndex
        /// A sealed segment holds bytes that are not valid batches (kept, never served).
        case corruptSealedSegment
        /// A segment file that could not be used was replaced (empty or without a header).
        case replacedSegment
        /// Side files whose segment file was gone were removed (a retention pass was cut short).
        case removedOrphan
    }

    /// The kind of repair.
    public var kind: Kind
    /// The file concerned.
    public var path: String
    /// What was found and done, in words.
    public var detail: String

    public var description: String { "\(path): \(detail)" }
}

extension Segment {
    /// Opens an existing segment; validates and repairs it.
    ///
    /// The last segment of a collection (`isLast`) is checked batch by batch and its torn or corrupt
    /// tail zeroed; a sealed segment is trusted to its recorded end (readers verify checksums). A
    /// missing or stale index or tag file is rebuilt.
    static func open(directory: String, baseId: UInt64, indexInterval: Int, isLast: Bool,
                     notes: inout [RecoveryNote]) throws(ExarError) -> Segment {
        let paths = paths(directory: directory, baseId: baseId)
        let log = try MappedFile.open(path: paths.log)
        guard log.size >= Format.Segment.headerSize + Format.Batch.headerSize + Format.Record.headerSize else {
            throw .io(.invalidData, "segment file too small (\(log.size) bytes): \(paths.log)")
        }
        let base = UnsafeRawPointer(log.base)
        let headerIntact = base.loadLE(at: 0, as: UInt64.self) == Format.Segment.magic
            && base.loadLE(at: Format.Segment.baseIdOffset, as: UInt64.self) == baseId
        if !headerIntact {
            notes.append(RecoveryNote(kind: .replacedSegment, path: paths.log, detail: "segment header missing or damaged; rewritten"))
            writeSegmentHeader(log, baseId: baseId)
        }

        let sealedFlag = base.loadLE(at: Format.Segment.flagsOffset, as: UInt32.self) & Format.Segment.sealedFlag != 0
        let recordedEnd = Int(clamping: base.loadLE(at: Format.Segment.sealedEndOffset, as: UInt64.self))
        let recordedCount = base.loadLE(at: Format.Segment.eventCountOffset, as: UInt64.self)
        var dataEnd = recordedEnd
        var nextId = baseId
        // A sealed header is trusted (no checksum pass over the segment) only when its index and
        // tag files agree with it and the batches after the last index entry end exactly at the
        // recorded end and event count; anything else gets the full scan below.
        var opened: (index: MappedFile, tags: MappedFile, count: Int)?
        if headerIntact && sealedFlag && recordedEnd >= Format.Segment.headerSize && recordedEnd <= log.size
            && recordedCount <= Format.maximumId - baseId
            && BatchProbe.probe(base, position: recordedEnd, limit: log.size, expectedBaseId: nil, verifyChecksum: false) == .end {
            nextId = baseId + recordedCount
            opened = openSealedIndex(log: log, baseId: baseId, dataEnd: dataEnd, nextId: nextId, paths: paths)
        }
        let trusted = opened != nil
        if !trusted {
            let scan = scanValidPrefix(log, baseId: baseId)
            dataEnd = scan.end
            nextId = scan.nextId
            if let problem = scan.problem {
                if isLast {
                    let cut = zeroTail(log, from: dataEnd)
                    notes.append(RecoveryNote(kind: .truncatedTail, path: paths.log,
                                              detail: "\(problem); cut \(cut) bytes from position \(dataEnd), events continue at id \(nextId)"))
                } else {
                    notes.append(RecoveryNote(kind: .corruptSealedSegment, path: paths.log,
                                              detail: "\(problem); bytes after position \(dataEnd) kept but not served"))
                }
            }
        }

        let segment: Segment
        var rebuilt = false
        if let opened {
            let (time, maxTimestamp) = try openOrRebuildTimeIndex(
                log: log, index: opened.index, count: opened.count, baseId: baseId, dataEnd: dataEnd, paths: paths,
                notes: &notes)
            // A rebuilt time index is recorded by sealing again, below.
            rebuilt = time.rebuilt
            segment = Segment(baseId: baseId, log: log, index: opened.index, tags: opened.tags, time: time.file,
                              indexInterval: indexInterval, dataEnd: dataEnd, nextId: nextId, indexCount: opened.count,
                              maxTimestamp: maxTimestamp, sealed: !isLast)
        } else {
            segment = try rebuildIndex(log: log, baseId: baseId, dataEnd: dataEnd, interval: indexInterval,
                                       sealed: sealedFlag, paths: paths, notes: &notes)
            rebuilt = true
            if isLast { segment.isSealed.store(false, ordering: .relaxed) }
        }
        if trusted {
            // Sealed batches are checked by readers the first time they are read in this process.
            segment.verifiedEnd.store(Format.Segment.headerSize, ordering: .relaxed)
        }
        if isLast && sealedFlag {
            segment.unseal()
        }
        if !isLast && (!sealedFlag || rebuilt) {
            // Record the end of data in all three headers, so the next open trusts them.
            segment.seal()
        }
        if !isLast {
            segment.releaseDescriptors()
        }
        return segment
    }

    /// Walks batches from the start, checking checksums, id continuity and record structure, to the
    /// first bad one.
    static func scanValidPrefix(_ log: MappedFile, baseId: UInt64) -> (end: Int, nextId: UInt64, problem: String?) {
        var position = Format.Segment.headerSize
        var nextId = baseId
        let base = UnsafeRawPointer(log.base)
        let scratch = DecompressionBuffer()
        while true {
            switch BatchProbe.probe(base, position: position, limit: log.size, expectedBaseId: nextId, verifyChecksum: true) {
            case .end:
                // Zero length: the rest must be zero too, else it is a torn write that began with zeros.
                if let garbage = firstNonZero(log, from: position) {
                    return (position, nextId, "non-zero bytes at \(garbage) after the end of data")
                }
                return (position, nextId, nil)
            case .invalid(let reason):
                return (position, nextId, reason)
            case .batch(let header):
                guard let payload = scratch.payload(of: base + position, header) else {
                    return (position, nextId, "batch at \(position) does not decompress")
                }
                if !RecordWalk.isWellFormed(payload, count: header.count) {
                    return (position, nextId, "batch at \(position) holds malformed records")
                }
                position += header.totalSize
                nextId = header.endId
            }
        }
    }

    private static func firstNonZero(_ log: MappedFile, from position: Int) -> Int? {
        let bytes = log.bytes
        var index = position
        // Word-at-a-time scan of the (usually long) zero tail.
        while index + 8 <= bytes.count {
            if bytes.loadUnaligned(fromByteOffset: index, as: UInt64.self) != 0 {
                while bytes[index] == 0 { index += 1 }
                return index
            }
            index += 8
        }
        while index < bytes.count {
            if bytes[index] != 0 { return index }
            index += 1
        }
        return nil
    }

    /// Zeroes the segment from `position` to its last non-zero byte; returns the bytes cleared.
    private static func zeroTail(_ log: MappedFile, from position: Int) -> Int {
        guard firstNonZero(log, from: position) != nil else { return 0 }
        var last = log.size - 1
        while last >= position && log.bytes[last] == 0 { last -= 1 }
        let count = last + 1 - position
        (log.base + position).initializeMemory(as: UInt8.self, repeating: 0, count: count)
        try? log.sync()
        return count
    }

    /// The index and tag files of a sealed segment and their entry count, when they agree with it
    /// and the batches after the last index entry end at `dataEnd` with id `nextId`; else `nil`.
    private static func openSealedIndex(
        log: MappedFile, baseId: UInt64, dataEnd: Int, nextId: UInt64, paths: Paths
    ) -> (index: MappedFile, tags: MappedFile, count: Int)? {
        guard let index = try? MappedFile.open(path: paths.index),
            let tags = try? MappedFile.open(path: paths.tags),
            let count = sealedIndexCount(index: index, tags: tags, baseId: baseId, dataEnd: dataEnd, log: log)
        else { return nil }
        var position = Format.Segment.headerSize
        var id = baseId
        if count > 0 {
            let last = UnsafeRawPointer(index.base) + Format.Index.headerSize + (count - 1) * Format.Index.entrySize
            id = baseId + UInt64(last.loadLE(at: 0, as: UInt32.self))
            position = Int(last.loadLE(at: 4, as: UInt32.self))
        }
        while position < dataEnd {
            guard case .batch(let header) = BatchProbe.probe(
                UnsafeRawPointer(log.base), position: position, limit: dataEnd, expectedBaseId: id, verifyChecksum: false)
            else { return nil }
            position += header.totalSize
            id = header.endId
        }
        guard position == dataEnd, id == nextId else { return nil }
        return (index, tags, count)
    }

    /// Creates the index, tag and time files of a segment afresh from its batches below `dataEnd`;
    /// returns the segment (marked sealed, unless the caller says otherwise).
    private static func rebuildIndex(
        log: MappedFile, baseId: UInt64, dataEnd: Int, interval: Int, sealed: Bool,
        paths: Paths, notes: inout [RecoveryNote]
    ) throws(ExarError) -> Segment {
        let capacity = indexCapacity(segmentSize: log.size, interval: interval)
        let index = try createIndexFile(path: paths.index, baseId: baseId, capacity: capacity, interval: interval)
        let tags = try createTagsFile(path: paths.tags, baseId: baseId, capacity: capacity, segmentSize: log.size)
        let time = try createTimeFile(path: paths.time, baseId: baseId, capacity: capacity)
        let rebuilt = Segment(baseId: baseId, log: log, index: index, tags: tags, time: time, indexInterval: interval,
                              dataEnd: Format.Segment.headerSize, nextId: baseId, indexCount: 0, maxTimestamp: 0,
                              sealed: false)
        _ = try rebuilt.reindex(upTo: dataEnd)
        if dataEnd > Format.Segment.headerSize || sealed {
            notes.append(RecoveryNote(kind: .rebuiltIndex, path: paths.index,
                                      detail: "index, tag bitmaps and time index rebuilt from \(dataEnd - Format.Segment.headerSize) bytes of events"))
        }
        rebuilt.isSealed.store(true, ordering: .relaxed)
        return rebuilt
    }

    /// The entry count of a sealed index/tags pair that agrees with the segment, or `nil` if stale.
    private static func sealedIndexCount(index: MappedFile, tags: MappedFile, baseId: UInt64, dataEnd: Int,
                                         log: MappedFile) -> Int? {
        let i = UnsafeRawPointer(index.base)
        let t = UnsafeRawPointer(tags.base)
        guard index.size >= Format.Index.headerSize, tags.size >= Format.Tags.headerSize,
            let layout = SegmentBitmapLayout(version: t.loadLE(at: 8, as: UInt32.self),
                                             bits: t.loadLE(at: Format.Tags.segmentBitsOffset, as: UInt32.self)),
            tags.size >= Format.Tags.headerSize + layout.bytes,
            i.loadLE(at: 0, as: UInt64.self) == Format.Index.magic, t.loadLE(at: 0, as: UInt64.self) == Format.Tags.magic,
            i.loadLE(at: Format.Index.baseIdOffset, as: UInt64.self) == baseId,
            t.loadLE(at: Format.Tags.baseIdOffset, as: UInt64.self) == baseId,
            Int(clamping: i.loadLE(at: Format.Index.dataEndOffset, as: UInt64.self)) == dataEnd,
            Int(clamping: t.loadLE(at: Format.Tags.dataEndOffset, as: UInt64.self)) == dataEnd,
            t.loadLE(at: Format.Tags.blockBitsOffset, as: UInt32.self) == UInt32(Format.Tags.blockBits)
        else { return nil }
        let capacity = Int(i.loadLE(at: Format.Index.capacityOffset, as: UInt32.self))
        let count = Int(i.loadLE(at: Format.Index.countOffset, as: UInt32.self))
        let blockCapacity = Int(t.loadLE(at: Format.Tags.blockCapacityOffset, as: UInt32.self))
        guard count <= capacity, count <= blockCapacity,
            index.size >= Format.Index.headerSize + capacity * Format.Index.entrySize,
            tags.size >= Format.Tags.headerSize + layout.bytes + blockCapacity * Format.Tags.blockBits / 8,
            Int(t.loadLE(at: Format.Tags.blockCountOffset, as: UInt32.self)) == count
        else { return nil }
        // Every entry must point at a batch header carrying the entry's id.
        var previous = 0
        for number in 0..<count {
            let entry = i + Format.Index.headerSize + number * Format.Index.entrySize
            let id = baseId + UInt64(entry.loadLE(at: 0, as: UInt32.self))
            let position = Int(entry.loadLE(at: 4, as: UInt32.self))
            guard position > previous, position + Format.Batch.headerSize <= dataEnd,
                UnsafeRawPointer(log.base).loadLE(at: position + 8, as: UInt64.self) == id
            else { return nil }
            previous = position
        }
        return count
    }

    /// Rebuilds index entries and tag bitmaps over the batches below `end`; returns the entry count.
    /// Stops at the first batch it cannot read.
    func reindex(upTo end: Int) throws(ExarError) -> Int {
        var position = Format.Segment.headerSize
        var expectedId = baseId
        let scratch = DecompressionBuffer()
        while position < end {
            guard case .batch(let header) = BatchProbe.probe(
                UnsafeRawPointer(log.base), position: position, limit: end, expectedBaseId: expectedId, verifyChecksum: false)
            else { break }
            expectedId = header.endId
            guard let payload = scratch.payload(of: UnsafeRawPointer(log.base + position), header) else { break }
            try reserveIndexEntry()
            reindexBatch(at: position, header: header, payload: payload)
            position += header.totalSize
        }
        commit()
        return publishedIndexCount.load(ordering: .relaxed)
    }
}

extension Segment {
    /// The time file of a trusted sealed segment and the segment's largest timestamp: the file as
    /// it is when its header agrees with the index (`count` entries, data to `dataEnd`), else
    /// rebuilt from the batches (segments written before time files existed get one this way).
    static func openOrRebuildTimeIndex(
        log: MappedFile, index: MappedFile, count: Int, baseId: UInt64, dataEnd: Int, paths: Paths,
        notes: inout [RecoveryNote]
    ) throws(ExarError) -> (time: (file: MappedFile, rebuilt: Bool), maxTimestamp: UInt64) {
        if let file = try? MappedFile.open(path: paths.time), file.size >= Format.Time.headerSize {
            let base = UnsafeRawPointer(file.base)
            let capacity = Int(base.loadLE(at: Format.Time.capacityOffset, as: UInt32.self))
            if base.loadLE(at: 0, as: UInt64.self) == Format.Time.magic,
                base.loadLE(at: Format.Time.baseIdOffset, as: UInt64.self) == baseId,
                count <= capacity, file.size >= Format.Time.headerSize + capacity * Format.Time.entrySize,
                Int(base.loadLE(at: Format.Time.countOffset, as: UInt32.self)) == count,
                Int(clamping: base.loadLE(at: Format.Time.dataEndOffset, as: UInt64.self)) == dataEnd
            {
                return ((file, false), base.loadLE(at: Format.Time.maxTimestampOffset, as: UInt64.self))
            }
        }
        let capacity = max(count, Int(UnsafeRawPointer(index.base).loadLE(at: Format.Index.capacityOffset, as: UInt32.self)))
        let file = try createTimeFile(path: paths.time, baseId: baseId, capacity: capacity)
        try file.allocate(0..<(Format.Time.headerSize + count * Format.Time.entrySize))
        let logBase = UnsafeRawPointer(log.base)
        let indexBase = UnsafeRawPointer(index.base)
        let scratch = DecompressionBuffer()
        var running: UInt64 = 0
        var entry = 0
        var position = Format.Segment.headerSize
        func store(through number: Int) {
            while entry < number {
                file.base.storeLE(running, at: Format.Time.headerSize + entry * Format.Time.entrySize)
                entry += 1
            }
        }
        while position < dataEnd, case .batch(let header) = BatchProbe.probe(
            logBase, position: position, limit: dataEnd, expectedBaseId: nil, verifyChecksum: false)
        {
            // Every entry pointing at or before this batch holds the maximum of the batches before it.
            while entry < count,
                Int(indexBase.loadLE(at: Format.Index.headerSize + entry * Format.Index.entrySize + 4, as: UInt32.self)) <= position
            {
                store(through: entry + 1)
            }
            if let payload = scratch.payload(of: logBase + position, header) {
                RecordWalk.forEach(payload) { record in
                    running = max(running, record.timestamp)
                    return true
                }
            }
            position += header.totalSize
        }
        store(through: count)
        file.base.storeLE(UInt32(count), at: Format.Time.countOffset)
        file.base.storeLE(UInt64(dataEnd), at: Format.Time.dataEndOffset)
        file.base.storeLE(running, at: Format.Time.maxTimestampOffset)
        notes.append(RecoveryNote(kind: .rebuiltIndex, path: paths.time,
                                  detail: "time index missing or stale; rebuilt from \(dataEnd - Format.Segment.headerSize) bytes of events"))
        return ((file, true), running)
    }
}

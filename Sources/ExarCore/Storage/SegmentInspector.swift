import ExarModel

/// What a read-only walk of one segment file found (for `exar-inspect`).
package struct SegmentSummary: Sendable {
    package var path: String
    package var baseId: UInt64
    package var fileSize: Int
    /// The header's sealed flag and recorded end of data.
    package var sealed: Bool
    package var recordedEnd: Int
    /// The end of the valid batches found from the start.
    package var dataEnd: Int
    package var eventCount: UInt64 = 0
    package var batchCount = 0
    package var compressedBatches = 0
    package var storedPayloadBytes = 0
    package var rawPayloadBytes = 0
    package var firstTimestamp: UInt64?
    package var lastTimestamp: UInt64?
    /// The first bad position and why, when the walk stopped before zeros.
    package var problem: (position: Int, reason: String)?

    package var firstId: UInt64? { eventCount > 0 ? baseId : nil }
    package var lastId: UInt64? { eventCount > 0 ? baseId + eventCount - 1 : nil }
    package var compressionRatio: Double {
        storedPayloadBytes > 0 ? Double(rawPayloadBytes) / Double(storedPayloadBytes) : 1
    }
}

/// Reads a segment's files without changing them: they are mapped read-only, so this works on a
/// collection a server has open.
package final class SegmentInspector {
    package let logPath: String
    package let baseId: UInt64
    private let log: MappedFile
    private let buffer = DecompressionBuffer()

    /// Opens `<base id>.log` read-only.
    package init(logPath: String) throws(ExarError) {
        self.logPath = logPath
        log = try MappedFile.open(path: logPath, writable: false)
        let name = logPath.split(separator: "/").last.map(String.init) ?? logPath
        guard name.hasSuffix(".log"), let id = UInt64(name.dropLast(4)) else {
            throw .io(.invalidInput, "not a segment file name (<20 digits>.log): \(logPath)")
        }
        baseId = id
    }

    /// The segment files of a collection folder, in id order.
    package static func segmentPaths(in directory: String) throws(ExarError) -> [String] {
        try FileSystem.contents(of: directory)
            .filter { $0.hasSuffix(".log") && $0.count == 24 && UInt64($0.dropLast(4)) != nil }
            .sorted()
            .map { directory + "/" + $0 }
    }

    private var base: UnsafeRawPointer { UnsafeRawPointer(log.base) }
    fileprivate var logBase: UnsafeRawPointer { base }

    /// Walks every batch from the start, checking checksums, ids and records, to zeros or the first bad one.
    package func summary() -> SegmentSummary {
        let headerOK = log.size >= Format.Segment.headerSize && base.loadLE(at: 0, as: UInt64.self) == Format.Segment.magic
        var summary = SegmentSummary(
            path: logPath, baseId: baseId, fileSize: log.size,
            sealed: headerOK && base.loadLE(at: Format.Segment.flagsOffset, as: UInt32.self) & Format.Segment.sealedFlag != 0,
            recordedEnd: headerOK ? Int(clamping: base.loadLE(at: Format.Segment.sealedEndOffset, as: UInt64.self)) : 0,
            dataEnd: Format.Segment.headerSize)
        if !headerOK {
            summary.problem = (0, "segment header missing or damaged")
        }
        if headerOK && base.loadLE(at: Format.Segment.baseIdOffset, as: UInt64.self) != baseId {
            summary.problem = (Format.Segment.baseIdOffset, "header base id differs from the file name")
        }
        var position = Format.Segment.headerSize
        var nextId = baseId
        walk: while summary.problem == nil {
            switch BatchProbe.probe(base, position: position, limit: log.size, expectedBaseId: nextId, verifyChecksum: true) {
            case .end:
                break walk
            case .invalid(let reason):
                summary.problem = (position, reason)
            case .batch(let header):
                guard let payload = buffer.payload(of: base + position, header) else {
                    summary.problem = (position, "batch does not decompress")
                    break walk
                }
                guard RecordWalk.isWellFormed(payload, count: header.count) else {
                    summary.problem = (position, "batch holds malformed records")
                    break walk
                }
                summary.batchCount += 1
                if header.isCompressed { summary.compressedBatches += 1 }
                summary.storedPayloadBytes += header.storedLength
                summary.rawPayloadBytes += header.rawLength
                summary.firstTimestamp = summary.firstTimestamp ?? header.firstTimestamp
                summary.lastTimestamp = header.lastTimestamp
                summary.eventCount += UInt64(header.count)
                position += header.totalSize
                nextId = header.endId
                summary.dataEnd = position
            }
        }
        return summary
    }

    /// Visits the events with ids in `range`, in order, up to the first bad batch.
    package func forEachEvent(in range: ClosedRange<UInt64>, tag: String?, _ body: (EventView) -> Void) {
        let filter = tag.map(TagFilter.init)
        var position = Format.Segment.headerSize
        var nextId = baseId
        while case .batch(let header) = BatchProbe.probe(
            base, position: position, limit: log.size, expectedBaseId: nextId, verifyChecksum: true)
        {
            if header.endId > range.lowerBound, let payload = buffer.payload(of: base + position, header) {
                var id = header.baseId
                RecordWalk.forEach(payload) { record in
                    defer { id += 1 }
                    if id > range.upperBound { return false }
                    if id >= range.lowerBound && (filter?.matches(record.tags) ?? true) {
                        body(EventView(id: id, timestamp: record.timestamp, tags: record.tags, data: record.data))
                    }
                    return true
                }
            }
            if header.endId > range.upperBound { return }
            position += header.totalSize
            nextId = header.endId
        }
    }

    /// The positions and first ids of the valid batches (for checking the index against).
    package func batchStarts(upTo end: Int) -> [Int: UInt64] {
        var starts: [Int: UInt64] = [:]
        var position = Format.Segment.headerSize
        while position < end, case .batch(let header) = BatchProbe.probe(
            base, position: position, limit: end, expectedBaseId: nil, verifyChecksum: false)
        {
            starts[position] = header.baseId
            position += header.totalSize
        }
        return starts
    }

    /// Calls `body` with every tag of every valid batch and the batch position, below `end`.
    package func forEachTag(upTo end: Int, _ body: (_ position: Int, _ tag: UnsafeRawBufferPointer) -> Void) {
        var position = Format.Segment.headerSize
        while position < end, case .batch(let header) = BatchProbe.probe(
            base, position: position, limit: end, expectedBaseId: nil, verifyChecksum: false)
        {
            if let payload = buffer.payload(of: base + position, header) {
                let batch = position
                RecordWalk.forEach(payload) { record in
                    TagBloom.forEachTag(in: record.tags) { body(batch, $0) }
                    return true
                }
            }
            position += header.totalSize
        }
    }
}

extension SegmentInspector {
    /// Calls `body` with every event timestamp of every valid batch and the batch position, below `end`.
    package func forEachTimestamp(upTo end: Int, _ body: (_ position: Int, _ timestamp: UInt64) -> Void) {
        let base = logBase
        let scratch = DecompressionBuffer()
        var position = Format.Segment.headerSize
        while position < end, case .batch(let header) = BatchProbe.probe(
            base, position: position, limit: end, expectedBaseId: nil, verifyChecksum: false)
        {
            if let payload = scratch.payload(of: base + position, header) {
                let batch = position
                RecordWalk.forEach(payload) { record in
                    body(batch, record.timestamp)
                    return true
                }
            }
            position += header.totalSize
        }
    }
}

/// A segment's time index file, read-only.
package struct TimeFileView {
    package let capacity: Int
    package let sealedCount: Int
    package let sealedMaxTimestamp: UInt64
    private let file: MappedFile

    package init(path: String, baseId: UInt64) throws(ExarError) {
        file = try MappedFile.open(path: path, writable: false)
        let base = UnsafeRawPointer(file.base)
        guard file.size >= Format.Time.headerSize, base.loadLE(at: 0, as: UInt64.self) == Format.Time.magic,
            base.loadLE(at: Format.Time.baseIdOffset, as: UInt64.self) == baseId
        else { throw .io(.invalidData, "not the time index of segment \(baseId): \(path)") }
        capacity = min(Int(base.loadLE(at: Format.Time.capacityOffset, as: UInt32.self)),
                       (file.size - Format.Time.headerSize) / Format.Time.entrySize)
        sealedCount = Int(base.loadLE(at: Format.Time.countOffset, as: UInt32.self))
        sealedMaxTimestamp = base.loadLE(at: Format.Time.maxTimestampOffset, as: UInt64.self)
    }

    /// Entry `number` (below ``capacity``).
    package func entry(_ number: Int) -> UInt64 {
        UnsafeRawPointer(file.base).loadLE(at: Format.Time.headerSize + number * Format.Time.entrySize, as: UInt64.self)
    }
}

/// A segment's sparse index file, read-only.
package struct IndexFileView {
    package let interval: Int
    package let capacity: Int
    package let sealedCount: Int
    package let entries: [(id: UInt64, position: Int)]

    /// Reads `<base id>.index`; entries are read up to the sealed count, or while they look written.
    package init(path: String, baseId: UInt64) throws(ExarError) {
        let file = try MappedFile.open(path: path, writable: false)
        let base = UnsafeRawPointer(file.base)
        guard file.size >= Format.Index.headerSize, base.loadLE(at: 0, as: UInt64.self) == Format.Index.magic,
            base.loadLE(at: Format.Index.baseIdOffset, as: UInt64.self) == baseId
        else { throw .io(.invalidData, "not the index of segment \(baseId): \(path)") }
        interval = Int(base.loadLE(at: Format.Index.intervalOffset, as: UInt32.self))
        capacity = min(Int(base.loadLE(at: Format.Index.capacityOffset, as: UInt32.self)),
                       (file.size - Format.Index.headerSize) / Format.Index.entrySize)
        sealedCount = Int(base.loadLE(at: Format.Index.countOffset, as: UInt32.self))
        var entries: [(UInt64, Int)] = []
        for number in 0..<capacity {
            let entry = base + Format.Index.headerSize + number * Format.Index.entrySize
            let position = Int(entry.loadLE(at: 4, as: UInt32.self))
            if position == 0 { break }  // never written: every real entry points past the 64-byte header
            entries.append((baseId + UInt64(entry.loadLE(at: 0, as: UInt32.self)), position))
        }
        self.entries = entries
    }
}

/// A segment's tag bitmap file, read-only.
package struct TagsFileView {
    package let blockCapacity: Int
    package let sealedBlockCount: Int
    /// The share of the segment bitmap's bits set.
    package let segmentFill: Double
    /// Bits of the segment bitmap, and whether a tag's bits share one line (version 2).
    package var segmentBits: Int { layout.bits }
    package var version: UInt32 { layout.version }
    private let file: MappedFile
    private let layout: SegmentBitmapLayout

    package init(path: String, baseId: UInt64) throws(ExarError) {
        file = try MappedFile.open(path: path, writable: false)
        let base = UnsafeRawPointer(file.base)
        guard file.size >= Format.Tags.headerSize,
            base.loadLE(at: 0, as: UInt64.self) == Format.Tags.magic,
            base.loadLE(at: Format.Tags.baseIdOffset, as: UInt64.self) == baseId,
            let layout = SegmentBitmapLayout(version: base.loadLE(at: 8, as: UInt32.self),
                                             bits: base.loadLE(at: Format.Tags.segmentBitsOffset, as: UInt32.self)),
            file.size >= Format.Tags.headerSize + layout.bytes
        else { throw .io(.invalidData, "not the tag file of segment \(baseId): \(path)") }
        self.layout = layout
        blockCapacity = Int(base.loadLE(at: Format.Tags.blockCapacityOffset, as: UInt32.self))
        sealedBlockCount = Int(base.loadLE(at: Format.Tags.blockCountOffset, as: UInt32.self))
        var set = 0
        for offset in 0..<layout.bytes {
            set += base.load(fromByteOffset: Format.Tags.headerSize + offset, as: UInt8.self).nonzeroBitCount
        }
        segmentFill = Double(set) / Double(layout.bits)
    }

    /// The chance that a tag absent from the segment still passes its bitmap.
    package var falsePositiveEstimate: Double {
        pow(segmentFill, Double(Format.Tags.segmentHashes))
    }

    /// Whether the segment bitmap, and the bitmap of `block`, may hold `tag` (a stored tag must pass both).
    package func mayContain(_ tag: UnsafeRawBufferPointer, block: Int?) -> Bool {
        let hash = TagHash(tag)
        let base = UnsafeRawPointer(file.base) + Format.Tags.headerSize
        guard layout.mayContain(hash, in: base) else {
            return false
        }
        guard let block, block < blockCapacity else { return true }
        return TagBloom.mayContain(
            hash, in: base + layout.bytes + block * (Format.Tags.blockBits / 8),
            bits: Format.Tags.blockBits, hashes: Format.Tags.blockHashes)
    }
}

#if canImport(Glibc)
import Glibc
#endif

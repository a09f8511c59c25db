import CLZ4
import ExarModel
import Synchronization

/// One segment of a collection: the mapped log file, its sparse index, its tag bitmaps and its
/// time index.
///
/// The writer thread alone mutates a segment (`append`, `seal`); readers use the atomics:
/// bytes below `committedEnd` never change once it has moved past them.
final class Segment: @unchecked Sendable {
    let baseId: UInt64
    let log: MappedFile
    let index: MappedFile
    let tags: MappedFile
    /// The layout of the tag file's segment bitmap, from its header (checked when it was opened).
    let segmentBitmap: SegmentBitmapLayout
    let time: MappedFile
    let indexInterval: Int

    /// End of the bytes readers may see (release by the writer, acquire by readers).
    let committedEnd: Atomic<Int>
    /// Number of index entries (and tag blocks) readers may use; entries past `committedEnd` are ignored.
    let publishedIndexCount: Atomic<Int>
    /// Bytes below this were checked (written by this process or verified by a reader): no CRC needed.
    let verifiedEnd: Atomic<Int>
    /// Set once the segment is full and a newer one exists, or when the database closes.
    let isSealed: Atomic<Bool>
    /// The largest timestamp of the events below `committedEnd` (0 while empty). Stored after
    /// `committedEnd`, so a reader that loads it first finds those events below the end it loads next.
    let maxTimestamp: Atomic<UInt64>

    /// Whether the segment tag bitmap holds every tag written: false once the disk refused one of
    /// its pages (readers then take the segment to hold any tag; a reopen rebuilds the file).
    let segmentBitmapComplete = Atomic<Bool>(true)

    // Writer-only state.
    /// How far the log, index, time and block bitmap files are allocated, and which pages of the
    /// segment bitmap (Allocation.swift).
    private let logFront = AllocationFront(origin: 0, minimumStep: 16 << 10, backgroundFrom: 256 << 10)
    private let indexFront = AllocationFront(origin: 0, minimumStep: MappedFile.pageSize, backgroundFrom: 16 << 10)
    private let timeFront = AllocationFront(origin: 0, minimumStep: MappedFile.pageSize, backgroundFrom: 16 << 10)
    private let blocksFront: AllocationFront
    private var bitmapPages: AllocatedPages
    private(set) var writeEnd: Int
    private(set) var nextId: UInt64
    fileprivate(set) var indexCount: Int
    private var lastIndexedPosition: Int
    fileprivate(set) var runningMaxTimestamp: UInt64

    var capacity: Int { log.size }
    var indexCapacity: Int { Int(index.base.loadLE(at: Format.Index.capacityOffset, as: UInt32.self)) }
    var path: String { log.path }

    init(baseId: UInt64, log: MappedFile, index: MappedFile, tags: MappedFile, time: MappedFile, indexInterval: Int,
         dataEnd: Int, nextId: UInt64, indexCount: Int, maxTimestamp: UInt64, sealed: Bool) {
        self.baseId = baseId
        self.log = log
        self.index = index
        self.tags = tags
        self.segmentBitmap = SegmentBitmapLayout(
            version: tags.base.loadLE(at: 8, as: UInt32.self),
            bits: tags.base.loadLE(at: Format.Tags.segmentBitsOffset, as: UInt32.self)) ?? .classic
        self.time = time
        self.bitmapPages = AllocatedPages(start: Format.Tags.headerSize, count: segmentBitmap.bytes)
        // The block bitmaps follow the segment bitmap, whose pages are allocated one by one.
        self.blocksFront = AllocationFront(origin: Format.Tags.headerSize + segmentBitmap.bytes,
                                           minimumStep: MappedFile.pageSize, backgroundFrom: 64 << 10)
        self.maxTimestamp = Atomic(maxTimestamp)
        self.runningMaxTimestamp = maxTimestamp
        self.indexInterval = indexInterval
        self.committedEnd = Atomic(dataEnd)
        self.publishedIndexCount = Atomic(indexCount)
        self.verifiedEnd = Atomic(dataEnd)
        self.isSealed = Atomic(sealed)
        self.writeEnd = dataEnd
        self.nextId = nextId
        self.indexCount = indexCount
        // Mapped, the files need no descriptor (Allocation.swift opens one when it allocates).
        log.releaseDescriptor()
        index.releaseDescriptor()
        tags.releaseDescriptor()
        time.releaseDescriptor()
        self.lastIndexedPosition = indexCount > 0
            ? Int(index.base.loadLE(at: Format.Index.headerSize + (indexCount - 1) * Format.Index.entrySize + 4,
                                    as: UInt32.self))
            : Int.min / 2
        if !sealed { adviseGrowing() }
    }

    // MARK: File names and creation

    /// The four files of a segment.
    struct Paths {
        let log: String
        let index: String
        let tags: String
        let time: String

        /// Every file, the log first (removing it first leaves no segment that lacks a side file).
        var all: [String] { [log, index, tags, time] }
    }

    static func paths(directory: String, baseId: UInt64) -> Paths {
        let stem = directory + "/" + Format.fileStem(baseId: baseId)
        return Paths(log: stem + ".log", index: stem + ".index", tags: stem + ".tags", time: stem + ".time")
    }

    static func indexCapacity(segmentSize: Int, interval: Int) -> Int {
        segmentSize / max(interval, 1) + 2
    }

    /// Creates a new, empty segment and its index and tag files.
    static func create(directory: String, baseId: UInt64, size: Int, indexInterval: Int) throws(ExarError) -> Segment {
        let paths = paths(directory: directory, baseId: baseId)
        let log = try MappedFile.create(path: paths.log, size: size, allocate: Format.Segment.headerSize)
        writeSegmentHeader(log, baseId: baseId)
        let capacity = indexCapacity(segmentSize: size, interval: indexInterval)
        do {
            let index = try createIndexFile(path: paths.index, baseId: baseId, capacity: capacity, interval: indexInterval)
            let tags = try createTagsFile(path: paths.tags, baseId: baseId, capacity: capacity, segmentSize: size)
            let time = try createTimeFile(path: paths.time, baseId: baseId, capacity: capacity)
            FileSystem.syncDirectory(directory)
            return Segment(baseId: baseId, log: log, index: index, tags: tags, time: time, indexInterval: indexInterval,
                           dataEnd: Format.Segment.headerSize, nextId: baseId, indexCount: 0, maxTimestamp: 0,
                           sealed: false)
        } catch {
            for path in paths.all { FileSystem.remove(path) }
            throw error
        }
    }

    static func writeSegmentHeader(_ log: MappedFile, baseId: UInt64) {
        let base = log.base
        base.storeLE(Format.Segment.magic, at: 0)
        base.storeLE(Format.Segment.version, at: 8)
        base.storeLE(UInt32(0), at: Format.Segment.flagsOffset)
        base.storeLE(baseId, at: Format.Segment.baseIdOffset)
        base.storeLE(UInt64(log.size), at: Format.Segment.fileSizeOffset)
        base.storeLE(UInt64(0), at: Format.Segment.sealedEndOffset)
        base.storeLE(UInt64(0), at: Format.Segment.eventCountOffset)
    }

    static func createIndexFile(path: String, baseId: UInt64, capacity: Int, interval: Int) throws(ExarError) -> MappedFile {
        let file = try MappedFile.create(path: path, size: Format.Index.headerSize + capacity * Format.Index.entrySize,
                                         allocate: Format.Index.headerSize)
        file.base.storeLE(Format.Index.magic, at: 0)
        file.base.storeLE(Format.version, at: 8)
        file.base.storeLE(UInt32(interval), at: Format.Index.intervalOffset)
        file.base.storeLE(baseId, at: Format.Index.baseIdOffset)
        file.base.storeLE(UInt32(capacity), at: Format.Index.capacityOffset)
        return file
    }

    static func createTagsFile(path: String, baseId: UInt64, capacity: Int, segmentSize: Int) throws(ExarError) -> MappedFile {
        let layout = SegmentBitmapLayout.forSegment(size: segmentSize)
        let size = Format.Tags.headerSize + layout.bytes + capacity * (Format.Tags.blockBits / 8)
        let file = try MappedFile.create(path: path, size: size, allocate: Format.Tags.headerSize)
        file.base.storeLE(Format.Tags.magic, at: 0)
        file.base.storeLE(layout.version, at: 8)
        file.base.storeLE(UInt32(layout.bits), at: Format.Tags.segmentBitsOffset)
        file.base.storeLE(baseId, at: Format.Tags.baseIdOffset)
        file.base.storeLE(UInt32(Format.Tags.blockBits), at: Format.Tags.blockBitsOffset)
        file.base.storeLE(UInt32(capacity), at: Format.Tags.blockCapacityOffset)
        return file
    }

    static func createTimeFile(path: String, baseId: UInt64, capacity: Int) throws(ExarError) -> MappedFile {
        let file = try MappedFile.create(path: path, size: Format.Time.headerSize + capacity * Format.Time.entrySize,
                                         allocate: Format.Time.headerSize)
        file.base.storeLE(Format.Time.magic, at: 0)
        file.base.storeLE(Format.version, at: 8)
        file.base.storeLE(baseId, at: Format.Time.baseIdOffset)
        file.base.storeLE(UInt32(capacity), at: Format.Time.capacityOffset)
        return file
    }

    // MARK: Writing (writer thread only)

    /// The room left for one batch's payload.
    var freePayloadBytes: Int {
        capacity - writeEnd - Format.Batch.headerSize
    }

    /// Whether nothing has been written to the segment.
    var isEmpty: Bool { writeEnd == Format.Segment.headerSize }

    /// Allocates on disk what the next batch (of `payloadBytes` raw bytes at most) and its index
    /// entry may take: called before ``append(records:count:firstTimestamp:lastTimestamp:compress:)``,
    /// so a full disk is this error and not a fault on a mapped page.
    func reserve(payloadBytes: Int) throws(ExarError) {
        try logFront.ensure(writeEnd + Format.Batch.headerSize + payloadBytes, in: log)
        try reserveIndexEntry()
    }

    /// Allocates the index, time and block bitmap entries of one more index entry.
    func reserveIndexEntry() throws(ExarError) {
        let entries = min(indexCount + 1, indexCapacity)
        try indexFront.ensure(Format.Index.headerSize + entries * Format.Index.entrySize, in: index)
        try timeFront.ensure(Format.Time.headerSize + entries * Format.Time.entrySize, in: time)
        try blocksFront.ensure(Format.Tags.headerSize + segmentBitmap.bytes + entries * (Format.Tags.blockBits / 8), in: tags)
    }

    /// Writes one batch of `count` encoded records; the caller checked that `records` fits and
    /// reserved its room (``reserve(payloadBytes:)``). Makes nothing visible to readers: ``commit()`` does.
    func append(records: UnsafeRawBufferPointer, count: Int, firstTimestamp: UInt64, lastTimestamp: UInt64,
                compress: Bool) {
        precondition(records.count <= freePayloadBytes, "batch does not fit the segment")
        let position = writeEnd
        let pointer = log.base + position
        let payload = pointer + Format.Batch.headerSize
        var stored = records.count
        var flags: UInt16 = 0
        if compress && records.count > 64 {
            let compressed = LZ4_compress_default(
                records.baseAddress!.assumingMemoryBound(to: CChar.self),
                payload.assumingMemoryBound(to: CChar.self),
                Int32(records.count), Int32(records.count - 1))
            if compressed > 0 {
                stored = Int(compressed)
                flags = Format.Batch.lz4Flag
            }
        }
        if flags == 0 {
            payload.copyMemory(from: records.baseAddress!, byteCount: records.count)
        }
        BatchHeader.write(at: pointer, storedLength: stored, baseId: nextId, count: count, flags: flags,
                          firstTimestamp: firstTimestamp, lastTimestamp: lastTimestamp, rawLength: records.count)
        indexBatch(at: position, baseId: nextId, records: records)
        writeEnd = position + Format.Batch.headerSize + stored
        nextId += UInt64(count)
    }

    /// Indexes a batch already in the file (rebuilding the index and bitmaps of a reopened segment).
    func reindexBatch(at position: Int, header: BatchHeader, payload: UnsafeRawBufferPointer) {
        indexBatch(at: position, baseId: header.baseId, records: payload)
        writeEnd = position + header.totalSize
        nextId = header.endId
    }

    /// Adds an index entry (and its time entry) for the batch at `position` when due, its tags to
    /// the bitmaps and its timestamps to the running maximum.
    private func indexBatch(at position: Int, baseId: UInt64, records: UnsafeRawBufferPointer) {
        if position - lastIndexedPosition >= indexInterval && indexCount < indexCapacity {
            let entry = index.base + Format.Index.headerSize + indexCount * Format.Index.entrySize
            entry.storeLE(UInt32(truncatingIfNeeded: baseId - self.baseId), at: 0)
            entry.storeLE(UInt32(position), at: 4)
            time.base.storeLE(runningMaxTimestamp, at: Format.Time.headerSize + indexCount * Format.Time.entrySize)
            indexCount += 1
            lastIndexedPosition = position
        }
        let segmentBits = tags.base + Format.Tags.headerSize
        let blockBitmap = segmentBits + segmentBitmap.bytes + (indexCount - 1) * (Format.Tags.blockBits / 8)
        let layout = segmentBitmap
        var maxTimestamp = runningMaxTimestamp
        var complete = segmentBitmapComplete.load(ordering: .relaxed)
        RecordWalk.forEach(records) { record in
            maxTimestamp = max(maxTimestamp, record.timestamp)
            TagBloom.forEachTag(in: record.tags) { tag in
                let hash = TagHash(tag)
                if !layout.blocked {
                    layout.insert(hash, into: segmentBits)  // version 1 files were allocated whole
                } else if complete {
                    // A tag's line is allocated on disk when a bit is first set in its page.
                    let (line, bits) = layout.blockedBits(hash)
                    if bitmapPages.ensure(line, in: tags) {
                        layout.setBlocked(bits, line: line, into: segmentBits)
                    } else {
                        complete = false
                    }
                }
                TagBloom.insert(hash, into: blockBitmap, bits: Format.Tags.blockBits, hashes: Format.Tags.blockHashes)
            }
            return true
        }
        if !complete && segmentBitmapComplete.load(ordering: .relaxed) {
            segmentBitmapComplete.store(false, ordering: .relaxed)  // published by commit()'s release
        }
        runningMaxTimestamp = maxTimestamp
    }

    /// Makes every appended batch visible to readers.
    func commit() {
        verifiedEnd.store(writeEnd, ordering: .releasing)
        publishedIndexCount.store(indexCount, ordering: .releasing)
        committedEnd.store(writeEnd, ordering: .releasing)
        maxTimestamp.store(runningMaxTimestamp, ordering: .releasing)
    }

    /// Closes the four file descriptors (the mappings stay); for segments no longer written.
    func releaseDescriptors() {
        log.releaseDescriptor()
        index.releaseDescriptor()
        tags.releaseDescriptor()
        time.releaseDescriptor()
    }

    /// Writes the log up to what was committed to the device, not the side files: what an
    /// acknowledgement needs. A crash leaves this segment unsealed, and recovery rebuilds its
    /// index, tag and time files from the log's batches (FORMAT.md, recovery rule 4).
    func syncData() throws(ExarError) {
        try log.sync(prefix: committedEnd.load(ordering: .acquiring))
    }

    /// Writes the four files to the device (the log up to what was committed): at a seal, whose
    /// side files a later open trusts.
    func sync() throws(ExarError) {
        try syncData()
        try index.sync()
        try tags.sync()
        try time.sync()
    }

    // MARK: Reading (any thread)

    /// The index entry `number`: the id and byte position of a batch.
    @inline(__always)
    func indexEntry(_ number: Int) -> (id: UInt64, position: Int) {
        let entry = UnsafeRawPointer(index.base) + Format.Index.headerSize + number * Format.Index.entrySize
        return (baseId + UInt64(entry.loadLE(at: 0, as: UInt32.self)), Int(entry.loadLE(at: 4, as: UInt32.self)))
    }

    /// The number of index entries that point below `end`.
    func usableIndexCount(below end: Int) -> Int {
        var count = publishedIndexCount.load(ordering: .acquiring)
        while count > 0 && indexEntry(count - 1).position >= end { count -= 1 }
        return count
    }

    /// The position of the last indexed batch that starts at or before `id` (or the first batch).
    func seekPosition(for id: UInt64, end: Int) -> Int {
        var low = 0
        var high = usableIndexCount(below: end)  // entries [0, high)
        var best = Format.Segment.headerSize
        while low < high {
            let middle = (low + high) / 2
            let entry = indexEntry(middle)
            if entry.id <= id {
                best = entry.position
                low = middle + 1
            } else {
                high = middle
            }
        }
        return best
    }

    /// The number of the index block holding the batch at `position`, or `nil` before the first entry.
    func block(containing position: Int, count: Int) -> Int? {
        var low = 0
        var high = count
        var best: Int?
        while low < high {
            let middle = (low + high) / 2
            if indexEntry(middle).position <= position {
                best = middle
                low = middle + 1
            } else {
                high = middle
            }
        }
        return best
    }

    func segmentMayContain(_ hash: TagHash) -> Bool {
        !segmentBitmapComplete.load(ordering: .relaxed) || segmentBitmap.mayContain(hash, in: tags.base + Format.Tags.headerSize)
    }

    /// The first block bitmap (they follow each other, `blockBits / 8` bytes apart).
    var blockBitmaps: UnsafeRawPointer {
        UnsafeRawPointer(tags.base) + Format.Tags.headerSize + segmentBitmap.bytes
    }
}

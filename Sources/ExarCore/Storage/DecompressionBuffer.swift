import CLZ4

/// A reusable buffer that yields the raw records of a batch: the mapped bytes themselves when the
/// batch is stored raw, or its LZ4 payload decompressed into the buffer (kept for the next call on
/// the same batch). The cache is keyed by the batch's address and first id: once retention has
/// unmapped a segment, a new mapping at the same address holds other ids.
final class DecompressionBuffer {
    private var storage: UnsafeMutableRawPointer
    private var capacity: Int
    private var cachedBatch: UnsafeRawPointer?
    private var cachedBaseId: UInt64 = 0
    private var cachedLength = 0

    init(capacity: Int = Format.Batch.maxRawPayload) {
        self.capacity = capacity
        storage = UnsafeMutableRawPointer.allocate(byteCount: capacity, alignment: 16)
    }

    deinit {
        storage.deallocate()
    }

    /// The raw records of the batch at `batch` (whose header is `header`), or `nil` if the LZ4
    /// payload is damaged.
    func payload(of batch: UnsafeRawPointer, _ header: BatchHeader) -> UnsafeRawBufferPointer? {
        let stored = batch + Format.Batch.headerSize
        guard header.isCompressed else {
            return UnsafeRawBufferPointer(start: stored, count: header.storedLength)
        }
        if cachedBatch == batch && cachedBaseId == header.baseId && cachedLength == header.rawLength {
            return UnsafeRawBufferPointer(start: storage, count: cachedLength)
        }
        if header.rawLength > capacity {
            storage.deallocate()
            capacity = max(header.rawLength, capacity * 2)
            storage = UnsafeMutableRawPointer.allocate(byteCount: capacity, alignment: 16)
        }
        cachedBatch = nil
        let result = LZ4_decompress_safe(
            stored.assumingMemoryBound(to: CChar.self), storage.assumingMemoryBound(to: CChar.self),
            Int32(header.storedLength), Int32(header.rawLength))
        guard Int(result) == header.rawLength else { return nil }
        cachedBatch = batch
        cachedBaseId = header.baseId
        cachedLength = header.rawLength
        return UnsafeRawBufferPointer(start: storage, count: header.rawLength)
    }

    /// Forgets the cached batch (its memory may be reused for another file).
    func invalidate() {
        cachedBatch = nil
    }
}

/// The decoded fixed-width header of a batch (see ``Format/Batch``).
struct BatchHeader: Sendable, Equatable {
    var storedLength: Int
    var checksum: UInt32
    var baseId: UInt64
    var count: Int
    var flags: UInt16
    var firstTimestamp: UInt64
    var lastTimestamp: UInt64
    var rawLength: Int

    /// Header and payload together.
    var totalSize: Int { Format.Batch.headerSize + storedLength }
    var isCompressed: Bool { flags & Format.Batch.lz4Flag != 0 }
    /// The id after the last event of the batch.
    var endId: UInt64 { baseId + UInt64(count) }

    /// Reads a header; the caller guarantees 48 readable bytes at `pointer`.
    init(at pointer: UnsafeRawPointer) {
        storedLength = Int(pointer.loadLE(at: 0, as: UInt32.self))
        checksum = pointer.loadLE(at: 4, as: UInt32.self)
        baseId = pointer.loadLE(at: 8, as: UInt64.self)
        count = Int(pointer.loadLE(at: 16, as: UInt32.self))
        flags = pointer.loadLE(at: 20, as: UInt16.self)
        firstTimestamp = pointer.loadLE(at: 24, as: UInt64.self)
        lastTimestamp = pointer.loadLE(at: 32, as: UInt64.self)
        rawLength = Int(pointer.loadLE(at: 40, as: UInt32.self))
        magicMatches = pointer.loadLE(at: 44, as: UInt32.self) == Format.Batch.magic
    }

    private(set) var magicMatches: Bool

    /// Writes every field but the checksum, then the checksum over bytes 8..<48 and `payload`.
    static func write(
        at pointer: UnsafeMutableRawPointer, storedLength: Int, baseId: UInt64, count: Int, flags: UInt16,
        firstTimestamp: UInt64, lastTimestamp: UInt64, rawLength: Int
    ) {
        pointer.storeLE(UInt32(storedLength), at: 0)
        pointer.storeLE(baseId, at: 8)
        pointer.storeLE(UInt32(count), at: 16)
        pointer.storeLE(flags, at: 20)
        pointer.storeLE(UInt16(0), at: 22)
        pointer.storeLE(firstTimestamp, at: 24)
        pointer.storeLE(lastTimestamp, at: 32)
        pointer.storeLE(UInt32(rawLength), at: 40)
        pointer.storeLE(Format.Batch.magic, at: 44)
        pointer.storeLE(computeChecksum(at: UnsafeRawPointer(pointer), storedLength: storedLength), at: 4)
    }

    /// The CRC-32C the header at `pointer` should carry, over header bytes 8..<48 and the payload.
    static func computeChecksum(at pointer: UnsafeRawPointer, storedLength: Int) -> UInt32 {
        let fixed = UnsafeRawBufferPointer(start: pointer + 8, count: Format.Batch.headerSize - 8)
        let payload = UnsafeRawBufferPointer(start: pointer + Format.Batch.headerSize, count: storedLength)
        return CRC32C.update(CRC32C.checksum(fixed), payload)
    }
}

/// What is found at a position of a segment.
enum BatchProbe: Equatable {
    /// A well-formed batch (checksum checked if asked).
    case batch(BatchHeader)
    /// Zero bytes: the unwritten end of the segment.
    case end
    /// Bytes that are not a valid batch, and why.
    case invalid(String)
}

extension BatchProbe {
    /// Examines the bytes at `position` of `base`, which holds valid data up to `limit`.
    /// - Parameters:
    ///   - expectedBaseId: the id the batch must start with, when known.
    ///   - verifyChecksum: whether to compute the CRC-32C.
    static func probe(
        _ base: UnsafeRawPointer, position: Int, limit: Int, expectedBaseId: UInt64?, verifyChecksum: Bool
    ) -> BatchProbe {
        let headerSize = Format.Batch.headerSize
        if position + 4 > limit { return .end }
        if base.loadLE(at: position, as: UInt32.self) == 0 {
            return .end
        }
        if position + headerSize > limit {
            return .invalid("batch header at \(position) runs past the end of data (\(limit))")
        }
        let header = BatchHeader(at: base + position)
        if !header.magicMatches {
            return .invalid("bad batch magic at \(position)")
        }
        if header.count < 1 || header.storedLength > limit - position - headerSize {
            return .invalid("batch at \(position) has impossible length \(header.storedLength) or count \(header.count)")
        }
        if header.flags & ~Format.Batch.lz4Flag != 0 {
            return .invalid("batch at \(position) has unknown flags \(header.flags)")
        }
        if !header.isCompressed && header.rawLength != header.storedLength {
            return .invalid("batch at \(position) has raw length \(header.rawLength) != stored \(header.storedLength)")
        }
        if header.baseId == 0 || header.baseId > Format.maximumId - UInt64(header.count) {
            return .invalid("batch at \(position) has impossible ids \(header.baseId) + \(header.count)")
        }
        if let expectedBaseId, header.baseId != expectedBaseId {
            return .invalid("batch at \(position) starts at id \(header.baseId), expected \(expectedBaseId)")
        }
        if verifyChecksum {
            let actual = BatchHeader.computeChecksum(at: base + position, storedLength: header.storedLength)
            if actual != header.checksum {
                return .invalid("checksum mismatch at \(position) (stored \(header.checksum), computed \(actual))")
            }
        }
        return .batch(header)
    }
}

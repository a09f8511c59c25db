/// Byte layouts of the files of a collection. `docs/FORMAT.md` has the same tables; change both.
enum Format {
    /// The largest event id a batch may hold (2^62): larger ones in a file are damage, and
    /// arithmetic on ids never overflows.
    static let maximumId: UInt64 = 1 << 62

    /// Segment file (`<base id>.log`) header, 64 bytes; batches follow from byte 64.
    ///
    /// | offset | size | field |
    /// | 0 | 8 | magic `EXARLOG1` |
    /// | 8 | 4 | version (1) |
    /// | 12 | 4 | flags: bit 0 sealed |
    /// | 16 | 8 | base id (the first event id of the segment) |
    /// | 24 | 8 | file size in bytes |
    /// | 32 | 8 | end of data when sealed (else 0) |
    /// | 40 | 8 | event count when sealed (else 0) |
    /// | 48 | 16 | zero |
    enum Segment {
        static let magic: UInt64 = 0x3147_4F4C_5241_5845  // "EXARLOG1" little-endian
        static let version: UInt32 = 1
        static let headerSize = 64
        static let sealedFlag: UInt32 = 1
        static let flagsOffset = 12
        static let baseIdOffset = 16
        static let fileSizeOffset = 24
        static let sealedEndOffset = 32
        static let eventCountOffset = 40
    }

    /// Batch header, 48 bytes, then `storedLength` payload bytes (records, LZ4-compressed if flagged).
    ///
    /// | offset | size | field |
    /// | 0 | 4 | stored payload length (0 marks the unwritten end of a segment) |
    /// | 4 | 4 | CRC-32C of bytes 8..<48 of the header and of the stored payload |
    /// | 8 | 8 | base id (id of the first event) |
    /// | 16 | 4 | event count (>= 1) |
    /// | 20 | 2 | flags: bit 0 payload is LZ4 block compressed |
    /// | 22 | 2 | zero |
    /// | 24 | 8 | timestamp of the first event |
    /// | 32 | 8 | timestamp of the last event |
    /// | 40 | 4 | raw (uncompressed) payload length |
    /// | 44 | 4 | magic `EXB1` |
    enum Batch {
        static let headerSize = 48
        static let magic: UInt32 = 0x3142_5845  // "EXB1"
        static let lz4Flag: UInt16 = 1
        /// Publishes are cut into batches of at most this many raw payload bytes (one event may exceed it).
        static let maxRawPayload = 64 * 1024
        /// The smallest batch limit, whatever the index interval.
        static let minRawPayload = 4 * 1024

        /// The batch limit of a collection: its index interval, within [4 KiB, 64 KiB]. Index entries
        /// and tag blocks start at batches, so batches no larger than the interval keep both fine.
        static func rawPayloadLimit(indexInterval: Int) -> Int {
            min(maxRawPayload, max(minRawPayload, indexInterval))
        }
    }

    /// Event record inside a batch payload: 16 bytes, then the tags and the data.
    ///
    /// | offset | size | field |
    /// | 0 | 8 | timestamp, ms since the Unix epoch |
    /// | 8 | 4 | tags length |
    /// | 12 | 4 | data length |
    /// | 16 | tags length | tags, UTF-8, separated by single spaces |
    /// | ... | data length | data |
    enum Record {
        static let headerSize = 16
    }

    /// Sparse index file (`<base id>.index`): 64-byte header, then 8-byte entries.
    ///
    /// | offset | size | field |
    /// | 0 | 8 | magic `EXARIDX1` |
    /// | 8 | 4 | version (1) |
    /// | 12 | 4 | index interval in bytes |
    /// | 16 | 8 | base id |
    /// | 24 | 4 | capacity (entries) |
    /// | 28 | 4 | entry count when sealed (else 0) |
    /// | 32 | 8 | end of data covered when sealed (else 0) |
    /// | 40 | 24 | zero |
    ///
    /// Entry: | 0 | 4 | id - base id | 4 | 4 | byte position of a batch in the segment |
    enum Index {
        static let magic: UInt64 = 0x3158_4449_5241_5845  // "EXARIDX1"
        static let headerSize = 64
        static let entrySize = 8
        static let intervalOffset = 12
        static let baseIdOffset = 16
        static let capacityOffset = 24
        static let countOffset = 28
        static let dataEndOffset = 32
    }

    /// Tag bitmap file (`<base id>.tags`): 64-byte header, the segment's bloom bitmap, then one
    /// block bitmap per index entry (the events from that entry to the next).
    ///
    /// | offset | size | field |
    /// | 0 | 8 | magic `EXARTAG1` |
    /// | 8 | 4 | version (1: 65536 bits, spread; 2: sized by the segment, blocked; see SegmentBitmapLayout) |
    /// | 12 | 4 | segment bitmap size in bits |
    /// | 16 | 8 | base id |
    /// | 24 | 4 | block bitmap size in bits (512) |
    /// | 28 | 4 | block count when sealed (else 0) |
    /// | 32 | 8 | end of data covered when sealed (else 0) |
    /// | 40 | 4 | block capacity |
    /// | 44 | 20 | zero |
    enum Tags {
        static let magic: UInt64 = 0x3147_4154_5241_5845  // "EXARTAG1"
        static let headerSize = 64
        /// The bits of a version 1 segment bitmap, and the fewest of a version 2 one.
        static let segmentBits = 65536
        static let segmentHashes = 4
        static let blockBits = 512
        static let blockHashes = 3
        static let segmentBitsOffset = 12
        static let baseIdOffset = 16
        static let blockBitsOffset = 24
        static let blockCountOffset = 28
        static let dataEndOffset = 32
        static let blockCapacityOffset = 40
    }


    /// Time index file (`<base id>.time`): 64-byte header, then one 8-byte entry per index entry.
    ///
    /// | offset | size | field |
    /// | 0 | 8 | magic `EXARTIM1` |
    /// | 8 | 4 | version (1) |
    /// | 12 | 4 | zero |
    /// | 16 | 8 | base id |
    /// | 24 | 4 | capacity (entries) |
    /// | 28 | 4 | entry count when sealed (else 0) |
    /// | 32 | 8 | end of data covered when sealed (else 0) |
    /// | 40 | 8 | largest event timestamp of the segment when sealed (else 0) |
    /// | 48 | 16 | zero |
    ///
    /// Entry `k`: | 0 | 8 | the largest timestamp of the segment's events before the batch of index
    /// entry `k` (0 when there are none). Entries never decrease, so a binary search finds the
    /// block holding the first event at or after a time.
    enum Time {
        static let magic: UInt64 = 0x314D_4954_5241_5845  // "EXARTIM1"
        static let headerSize = 64
        static let entrySize = 8
        static let baseIdOffset = 16
        static let capacityOffset = 24
        static let countOffset = 28
        static let dataEndOffset = 32
        static let maxTimestampOffset = 40
    }

    static let version: UInt32 = 1

    /// The 20-digit, zero-padded file name stem of a segment whose first id is `baseId`.
    static func fileStem(baseId: UInt64) -> String {
        let digits = String(baseId)
        return String(repeating: "0", count: max(0, 20 - digits.count)) + digits
    }
}

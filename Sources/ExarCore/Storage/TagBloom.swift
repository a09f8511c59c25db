/// Bloom bitmaps of tags: a tag sets `hashes` bits of a bitmap of `bits` bits (a power of two).
///
/// Bits are only ever set, never cleared, so a reader that sees a committed end also sees at
/// least the bits of every tag stored before it.
struct TagHash: Sendable, Equatable {
    let h1: UInt32
    let h2: UInt32

    /// FNV-1a (64 bit) of the tag's bytes, split in two halves for double hashing.
    init(_ tag: UnsafeRawBufferPointer) {
        var hash: UInt64 = 0xCBF2_9CE4_8422_2325
        for byte in tag {
            hash = (hash ^ UInt64(byte)) &* 0x0000_0100_0000_01B3
        }
        h1 = UInt32(truncatingIfNeeded: hash)
        h2 = UInt32(truncatingIfNeeded: hash >> 32) | 1
    }

    init(_ tag: String) {
        var tag = tag
        self = tag.withUTF8 { TagHash(UnsafeRawBufferPointer($0)) }
    }
}

/// The bits one tag sets in every block bitmap: the same in each block (same size, same hashes),
/// so a tag query computes them once and tests each block with three byte loads.
struct BlockBitmapProbe: Sendable {
    private let offsets: (Int, Int, Int)
    private let masks: (UInt8, UInt8, UInt8)

    init(_ hash: TagHash) {
        precondition(Format.Tags.blockHashes == 3, "the probe unrolls three hashes")
        let mask = UInt32(Format.Tags.blockBits - 1)
        let bits = (0..<3).map { Int((hash.h1 &+ UInt32($0) &* hash.h2) & mask) }
        offsets = (bits[0] >> 3, bits[1] >> 3, bits[2] >> 3)
        masks = (UInt8(1 << (bits[0] & 7)), UInt8(1 << (bits[1] & 7)), UInt8(1 << (bits[2] & 7)))
    }

    /// Whether the block bitmap at `bitmap` may hold the tag.
    @inline(__always)
    func mayContain(_ bitmap: UnsafeRawPointer) -> Bool {
        bitmap.load(fromByteOffset: offsets.0, as: UInt8.self) & masks.0 != 0
            && bitmap.load(fromByteOffset: offsets.1, as: UInt8.self) & masks.1 != 0
            && bitmap.load(fromByteOffset: offsets.2, as: UInt8.self) & masks.2 != 0
    }
}

enum TagBloom {
    @inline(__always)
    static func insert(_ hash: TagHash, into bitmap: UnsafeMutableRawPointer, bits: Int, hashes: Int) {
        let mask = UInt32(bits - 1)
        for i in 0..<UInt32(hashes) {
            let bit = Int((hash.h1 &+ i &* hash.h2) & mask)
            let byte = bitmap.advanced(by: bit >> 3)
            let old = byte.load(as: UInt8.self)
            let new = old | UInt8(1 << (bit & 7))
            if new != old { byte.storeBytes(of: new, as: UInt8.self) }
        }
    }

    @inline(__always)
    static func mayContain(_ hash: TagHash, in bitmap: UnsafeRawPointer, bits: Int, hashes: Int) -> Bool {
        let mask = UInt32(bits - 1)
        for i in 0..<UInt32(hashes) {
            let bit = Int((hash.h1 &+ i &* hash.h2) & mask)
            if bitmap.load(fromByteOffset: bit >> 3, as: UInt8.self) & UInt8(1 << (bit & 7)) == 0 {
                return false
            }
        }
        return true
    }

    /// Calls `body` with each space-separated tag of a tags field.
    @inline(__always)
    static func forEachTag(in tags: UnsafeRawBufferPointer, _ body: (UnsafeRawBufferPointer) -> Void) {
        var start = 0
        let count = tags.count
        var index = 0
        while index <= count {
            if index == count || tags[index] == UInt8(ascii: " ") {
                if index > start {
                    body(UnsafeRawBufferPointer(rebasing: tags[start..<index]))
                }
                start = index + 1
            }
            index += 1
        }
    }

    /// Whether the space-separated tags field contains `tag` as one of its tags.
    static func fieldContains(_ tags: UnsafeRawBufferPointer, tag: UnsafeRawBufferPointer) -> Bool {
        let count = tags.count
        let length = tag.count
        guard length > 0, length <= count, let base = tags.baseAddress, let needle = tag.baseAddress else {
            return false
        }
        var start = 0
        while start + length <= count {
            // Find the end of the tag that starts at `start`.
            var end = start
            while end < count && base.load(fromByteOffset: end, as: UInt8.self) != UInt8(ascii: " ") {
                end += 1
            }
            if end - start == length && memcmp(base + start, needle, length) == 0 {
                return true
            }
            start = end + 1
        }
        return false
    }
}

#if canImport(Glibc)
import Glibc
#endif

/// The layout of a tag file's segment bitmap (docs/FORMAT.md, "Tag file").
///
/// Version 1 files hold 65,536 bits with a tag's 4 bits spread over all of them: a segment with a
/// few hundred thousand distinct tags saturates it, and a search for a tag that no event carries
/// then probes every block. Version 2 files size the bitmap by the segment (one bit per 8 bytes,
/// a power of two from 65,536 bits to 128 Mbit) and keep a tag's 4 bits in one 512-bit line
/// chosen by a mixed hash: one cache line per tag to write or test.
struct SegmentBitmapLayout: Sendable, Equatable {
    let bits: Int
    let blocked: Bool

    var bytes: Int { bits / 8 }
    /// The value of the tag file's version field.
    var version: UInt32 { blocked ? 2 : 1 }

    static let classic = SegmentBitmapLayout(bits: Format.Tags.segmentBits, blocked: false)
    static let maximumBits = 1 << 27

    private init(bits: Int, blocked: Bool) {
        self.bits = bits
        self.blocked = blocked
    }

    /// The layout of a new segment of `segmentSize` bytes.
    static func forSegment(size segmentSize: Int) -> SegmentBitmapLayout {
        var bits = Format.Tags.segmentBits
        while bits < segmentSize / 8 && bits < maximumBits { bits *= 2 }
        return SegmentBitmapLayout(bits: bits, blocked: true)
    }

    /// The layout a tag file's header names (`nil`: a version or size this build does not know).
    init?(version: UInt32, bits: UInt32) {
        let bits = Int(bits)
        switch version {
        case 1 where bits == Format.Tags.segmentBits:
            self = .classic
        case 2 where bits >= Format.Tags.segmentBits && bits <= Self.maximumBits && bits & (bits - 1) == 0:
            self.init(bits: bits, blocked: true)
        default:
            return nil
        }
    }

    /// The 512-bit line (its byte offset) and the 4 bit positions in it, of a version 2 bitmap.
    @inline(__always)
    func blockedBits(_ hash: TagHash) -> (line: Int, bits: (UInt32, UInt32, UInt32, UInt32)) {
        // The murmur3 finalizer over both halves: FNV-1a's low bits alone mix poorly.
        var mixed = UInt64(hash.h1) | UInt64(hash.h2) << 32
        mixed ^= mixed >> 33
        mixed &*= 0xFF51_AFD7_ED55_8CCD
        mixed ^= mixed >> 33
        mixed &*= 0xC4CE_B9FE_1A85_EC53
        mixed ^= mixed >> 33
        let lines = bits / 512
        let line = Int(truncatingIfNeeded: mixed >> 32) & (lines - 1)
        let first = UInt32(truncatingIfNeeded: mixed)
        let step = UInt32(truncatingIfNeeded: mixed >> 16) | 1
        return (line * 64, (first & 511, (first &+ step) & 511, (first &+ 2 &* step) & 511, (first &+ 3 &* step) & 511))
    }

    @inline(__always)
    func insert(_ hash: TagHash, into bitmap: UnsafeMutableRawPointer) {
        guard blocked else {
            TagBloom.insert(hash, into: bitmap, bits: bits, hashes: Format.Tags.segmentHashes)
            return
        }
        let (line, b) = blockedBits(hash)
        setBlocked(b, line: line, into: bitmap)
    }

    /// Sets a version 2 tag's bits (from ``blockedBits(_:)``) in its line.
    @inline(__always)
    func setBlocked(_ b: (UInt32, UInt32, UInt32, UInt32), line: Int, into bitmap: UnsafeMutableRawPointer) {
        let base = bitmap + line
        @inline(__always) func set(_ bit: UInt32) {
            let byte = base.advanced(by: Int(bit >> 3))
            let old = byte.load(as: UInt8.self)
            let new = old | UInt8(1 << (bit & 7))
            if new != old { byte.storeBytes(of: new, as: UInt8.self) }
        }
        set(b.0)
        set(b.1)
        set(b.2)
        set(b.3)
    }

    @inline(__always)
    func mayContain(_ hash: TagHash, in bitmap: UnsafeRawPointer) -> Bool {
        guard blocked else {
            return TagBloom.mayContain(hash, in: bitmap, bits: bits, hashes: Format.Tags.segmentHashes)
        }
        let (line, b) = blockedBits(hash)
        let base = bitmap + line
        @inline(__always) func isSet(_ bit: UInt32) -> Bool {
            base.load(fromByteOffset: Int(bit >> 3), as: UInt8.self) & UInt8(1 << (bit & 7)) != 0
        }
        return isSet(b.0) && isSet(b.1) && isSet(b.2) && isSet(b.3)
    }
}

@testable import ExarCore
import ExarModel
import Foundation
import Testing

/// The tag file's segment bitmap: version 2 (sized by the segment, a tag's bits in one 512-bit
/// line) for new segments, version 1 (65,536 bits) still read.
@Suite struct TagFileTests {
    @Test func theBitmapIsSizedByTheSegmentWithinBounds() {
        #expect(SegmentBitmapLayout.forSegment(size: 16 * 1024).bits == 65536)
        #expect(SegmentBitmapLayout.forSegment(size: 64 * 1024 * 1024).bits == 8 * 1024 * 1024)
        #expect(SegmentBitmapLayout.forSegment(size: 100 * 1024 * 1024).bits == 16 * 1024 * 1024)
        #expect(SegmentBitmapLayout.forSegment(size: 1 << 40).bits == SegmentBitmapLayout.maximumBits)
        #expect(SegmentBitmapLayout.forSegment(size: 1 << 20).version == 2)
        #expect(SegmentBitmapLayout(version: 1, bits: 65536) == .classic)
        #expect(SegmentBitmapLayout(version: 1, bits: 131072) == nil)
        #expect(SegmentBitmapLayout(version: 2, bits: 65536 + 512) == nil)
        #expect(SegmentBitmapLayout(version: 2, bits: 32768) == nil)
        #expect(SegmentBitmapLayout(version: 2, bits: UInt32(SegmentBitmapLayout.maximumBits) * 2) == nil)
        #expect(SegmentBitmapLayout(version: 3, bits: 65536) == nil)
    }

    /// 100,000 distinct tags: the classic bitmap is saturated (nearly every absent tag passes), the
    /// version 2 bitmap of an 8 MiB segment (1 Mbit) still refuses nearly all; none present is refused.
    @Test func aSizedBitmapRefusesAbsentTagsWhereTheClassicOneIsSaturated() {
        func falsePositives(_ layout: SegmentBitmapLayout) -> Double {
            let bitmap = UnsafeMutableRawPointer.allocate(byteCount: layout.bytes, alignment: 64)
            defer { bitmap.deallocate() }
            bitmap.initializeMemory(as: UInt8.self, repeating: 0, count: layout.bytes)
            for number in 0..<100_000 { layout.insert(TagHash("order-\(number)"), into: bitmap) }
            for number in 0..<100_000 {
                #expect(layout.mayContain(TagHash("order-\(number)"), in: bitmap), "inserted tag \(number) refused")
            }
            let passed = (0..<100_000).filter { layout.mayContain(TagHash("absent-\($0)"), in: UnsafeRawPointer(bitmap)) }
            return Double(passed.count) / 100_000
        }
        let sized = SegmentBitmapLayout.forSegment(size: 8 * 1024 * 1024)
        #expect(sized.bits == 1 << 20)
        let classic = falsePositives(.classic)
        let blocked = falsePositives(sized)
        #expect(classic > 0.9, "classic false positive rate \(classic)")
        #expect(blocked < 0.03, "version 2 false positive rate \(blocked)")
    }

    /// A collection whose sealed segments carry version 1 tag files (as written before version 2)
    /// opens trusting them, answers tag reads and tags' last ids from them, and writes version 2 for
    /// the segments it creates.
    @Test func version1TagFilesStillRead() async throws {
        let folder = TemporaryFolder()
        let segmentSize = 16 * 1024
        var tagsOfId: [UInt64: [String]] = [:]
        func tags(_ number: Int) -> [String] {
            number % 97 == 0 ? ["rare", "t\(number % 5)"] : ["t\(number % 5)"]
        }
        do {
            let database = try makeDatabase(folder, segmentSize: segmentSize, indexInterval: 512)
            let collection = try database.collection("c")
            let ids = try await collection.publishNumbered(0, count: 2000, burst: 20, tags: tags)
            for (number, id) in ids.enumerated() { tagsOfId[id] = tags(number) }
            database.close()
        }
        let tagFiles = folder.files(in: "c", suffix: ".tags")
        #expect(tagFiles.count > 5)
        let bases = tagFiles.map { UInt64(($0 as NSString).lastPathComponent.dropLast(5))! }
        for (position, path) in tagFiles.enumerated().dropLast() {
            let view = try TagsFileView(path: path, baseId: bases[position])
            #expect(view.version == 2)
            #expect(view.segmentBits == 65536)
            try rewriteAsVersion1(path: path, ids: bases[position]..<bases[position + 1], tagsOfId: tagsOfId)
        }

        let database = try makeDatabase(folder, segmentSize: segmentSize, indexInterval: 512)
        defer { database.close() }
        let collection = try database.collection("c")
        for (position, path) in tagFiles.enumerated().dropLast() {
            #expect(try TagsFileView(path: path, baseId: bases[position]).version == 1, "\(path) was rebuilt")
        }
        let rare = tagsOfId.filter { $0.value.contains("rare") }.keys.sorted()
        #expect(try collection.read(Query(live: false, offset: 0, tag: "rare")).count == rare.count)
        #expect(collection.lastId(ofTag: "rare") == rare.last)
        #expect(collection.lastId(ofTag: "t3") == tagsOfId.filter { $0.value.contains("t3") }.keys.max())
        #expect(collection.lastId(ofTag: "never") == 0)

        // New segments get version 2 files.
        let more = try await collection.publishNumbered(2000, count: 1000, burst: 20, tags: tags)
        let newer = folder.files(in: "c", suffix: ".tags").filter { !tagFiles.contains($0) }
        #expect(!newer.isEmpty)
        for path in newer {
            let base = UInt64((path as NSString).lastPathComponent.dropLast(5))!
            #expect(try TagsFileView(path: path, baseId: base).version == 2)
        }
        let rareAfter = rare + more.enumerated().filter { tags(2000 + $0.offset).contains("rare") }.map(\.element)
        #expect(try collection.read(Query(live: false, offset: 0, tag: "rare")).count == rareAfter.count)
        #expect(collection.lastId(ofTag: "rare") == rareAfter.last)
    }

    /// Rewrites a sealed version 2 tag file as version 1: the same header and block bitmaps, the
    /// classic 65,536-bit segment bitmap of the tags of `ids`.
    private func rewriteAsVersion1(path: String, ids: Range<UInt64>, tagsOfId: [UInt64: [String]]) throws {
        let old = try Data(contentsOf: URL(fileURLWithPath: path))
        let oldBits = old.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: Format.Tags.segmentBitsOffset, as: UInt32.self) }
        let headerSize = Format.Tags.headerSize
        var header = old.prefix(headerSize)
        header.withUnsafeMutableBytes {
            $0.storeBytes(of: UInt32(1).littleEndian, toByteOffset: 8, as: UInt32.self)
            $0.storeBytes(of: UInt32(Format.Tags.segmentBits).littleEndian, toByteOffset: Format.Tags.segmentBitsOffset,
                          as: UInt32.self)
        }
        var bitmap = Data(count: Format.Tags.segmentBits / 8)
        bitmap.withUnsafeMutableBytes { raw in
            for id in ids { for tag in tagsOfId[id] ?? [] { SegmentBitmapLayout.classic.insert(TagHash(tag), into: raw.baseAddress!) } }
        }
        let blocks = old.dropFirst(headerSize + Int(UInt32(littleEndian: oldBits)) / 8)
        try (header + bitmap + blocks).write(to: URL(fileURLWithPath: path))
    }
}

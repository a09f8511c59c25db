import ArgumentParser
import ExarCore
import Foundation

struct Verify: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Check every batch's checksum, the index and tag bitmaps, and id continuity.",
        discussion: "Exits 0 when everything is consistent, 1 with the first bad file and position otherwise.")

    @Argument(help: "A collection folder or a segment file.") var path: String

    func run() throws {
        let files = try segmentFiles(path)
        var previousEnd: UInt64?
        var events: UInt64 = 0
        for file in files {
            let inspector: SegmentInspector
            do {
                inspector = try SegmentInspector(logPath: file)
            } catch {
                fail(file, 0, "cannot be read as a segment (\(error))")
            }
            let summary = inspector.summary()
            if let problem = summary.problem {
                fail(file, problem.position, problem.reason)
            }
            if let previousEnd, previousEnd != inspector.baseId {
                fail(file, 0, "ids jump: the previous segment ends before id \(previousEnd), this one starts at \(inspector.baseId)")
            }
            if summary.sealed && summary.recordedEnd != summary.dataEnd {
                fail(file, summary.dataEnd, "sealed with end of data \(summary.recordedEnd), but the batches end at \(summary.dataEnd)")
            }
            try verifyIndexAndTags(file, inspector: inspector, end: summary.dataEnd)
            previousEnd = inspector.baseId + summary.eventCount
            events += summary.eventCount
        }
        print("ok: \(files.count) segments, \(events) events, checksums, ids, index and tag bitmaps consistent")
    }

    private func verifyIndexAndTags(_ file: String, inspector: SegmentInspector, end: Int) throws {
        let indexPath = companion(file, ".index")
        let tagsPath = companion(file, ".tags")
        let index: IndexFileView
        let tags: TagsFileView
        do {
            index = try IndexFileView(path: indexPath, baseId: inspector.baseId)
            tags = try TagsFileView(path: tagsPath, baseId: inspector.baseId)
        } catch {
            fail(indexPath, 0, "missing or unreadable index or tag file (\(error)); the server rebuilds it on open")
        }
        let starts = inspector.batchStarts(upTo: end)
        var previous = 0
        var blockStarts: [Int] = []
        for (number, entry) in index.entries.enumerated() where entry.position < end {
            guard entry.position > previous, starts[entry.position] == entry.id else {
                fail(indexPath, 64 + number * 8, "entry \(number) (id \(entry.id), position \(entry.position)) does not point at a batch starting with that id")
            }
            previous = entry.position
            blockStarts.append(entry.position)
        }
        if end > 64 && blockStarts.first != 64 {
            fail(indexPath, 64, "the first batch has no index entry")
        }
        // A stored tag must pass its segment bitmap and the bitmap of its index block (blooms never miss).
        var problem: (Int, String)?
        inspector.forEachTag(upTo: end) { position, tag in
            guard problem == nil else { return }
            let block = lastIndex(in: blockStarts, notAfter: position)
            if !tags.mayContain(tag, block: block) {
                problem = (position, "tag '\(String(decoding: tag, as: UTF8.self))' of the batch at \(position) is missing from the tag bitmaps")
            }
        }
        if let problem { fail(tagsPath, problem.0, problem.1) }
    }

    /// The index of the last element `<= value` in an ascending array (binary search).
    private func lastIndex(in sorted: [Int], notAfter value: Int) -> Int? {
        var low = 0
        var high = sorted.count
        while low < high {
            let middle = (low + high) / 2
            if sorted[middle] <= value { low = middle + 1 } else { high = middle }
        }
        return low > 0 ? low - 1 : nil
    }

    private func fail(_ file: String, _ position: Int, _ reason: String) -> Never {
        FileHandle.standardError.write(Data("corrupt: \(file) at byte \(position): \(reason)\n".utf8))
        Foundation.exit(1)
    }
}

struct Repair: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Repair a collection as the server does on start: cut a torn tail, rebuild index and tag files.",
        discussion: """
            The only command that writes. Stop the server first: it refuses while a server has the
            collection open. Sealed segments are never changed; a damaged batch inside one stays
            (readers skip it). Prints what it did, or that there was nothing to do.
            """)

    @Argument(help: "A collection folder.") var path: String
    @Option(help: "The index interval for rebuilt index files (default: as recorded in the folder).")
    var indexIntervalBytes: Int?

    func run() throws {
        let notes = try CollectionRepair.repair(directory: path, indexIntervalBytes: indexIntervalBytes)
        if notes.isEmpty {
            print("nothing to repair in \(path)")
        }
        for note in notes {
            print("repaired: \(note)")
        }
    }
}

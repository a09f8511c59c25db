import ExarModel

/// Where a segment is in its life, as `exar-inspect list` shows it.
package enum SegmentState: String, Sendable {
    /// The header records the end of data: the segment is closed for writing.
    case sealed
    /// The last segment of the collection, not sealed: the one being written.
    case active
    /// Not sealed although a later segment follows (left so by a crash).
    case unsealed
}

/// One row of `exar-inspect list`: what a read-only walk of a segment found.
package struct SegmentListing: Sendable {
    /// The file name (`<20 digits>.log`), without its folder.
    package var name: String
    package var state: SegmentState
    package var events: UInt64
    package var firstId: UInt64?
    package var lastId: UInt64?
    /// The end of the valid batches.
    package var bytesUsed: Int
    package var fileSize: Int
    package var firstTimestamp: UInt64?
    package var lastTimestamp: UInt64?
    package var batches: Int
    /// Raw payload bytes over stored payload bytes (1 when nothing is compressed).
    package var lz4Ratio: Double
    /// The first bad position and why, when the walk stopped before zeros.
    package var problem: (position: Int, reason: String)?

    /// Walks the segment file `segmentFile` read-only.
    /// - Parameter isLast: whether it is the collection's last segment (unsealed, it is then `active`).
    package init(segmentFile: String, isLast: Bool) throws(ExarError) {
        let summary = try SegmentInspector(logPath: segmentFile).summary()
        name = segmentFile.split(separator: "/").last.map(String.init) ?? segmentFile
        state = summary.sealed ? .sealed : (isLast ? .active : .unsealed)
        events = summary.eventCount
        firstId = summary.firstId
        lastId = summary.lastId
        bytesUsed = summary.dataEnd
        fileSize = summary.fileSize
        firstTimestamp = summary.firstTimestamp
        lastTimestamp = summary.lastTimestamp
        batches = summary.batchCount
        lz4Ratio = summary.compressionRatio
        problem = summary.problem
    }
}

/// The result of ``CollectionVerifier/verify(directory:)``: all consistent, or the first problem.
package enum VerifyReport: Sendable, Equatable {
    /// Every checksum, id, sealed end, index entry, stored tag and time entry checked out.
    case ok(segments: Int, events: UInt64)
    /// The first bad file (the path as given), the byte position in it, and why.
    case corrupt(file: String, position: Int, reason: String)

    /// The line `exar-inspect verify` prints (on stdout when ok, on stderr when corrupt).
    package var message: String {
        switch self {
        case .ok(let segments, let events):
            "ok: \(segments) segments, \(events) events, checksums, ids, index, tag bitmaps and time index consistent"
        case .corrupt(let file, let position, let reason):
            "corrupt: \(file) at byte \(position): \(reason)"
        }
    }
}

/// The read-only reports of `exar-inspect list` and `verify`, for the tool and the running server.
/// Files are mapped read-only, so this works on a collection a server has open.
package enum CollectionVerifier {
    /// The segments of the collection folder `directory`, in id order.
    /// - Throws: when the folder cannot be read, holds no segment files, or a segment cannot be mapped.
    package static func list(directory: String) throws(ExarError) -> [SegmentListing] {
        try list(segmentFiles: segmentFiles(in: directory))
    }

    /// The segments `segmentFiles` (a folder's segment files in id order, or one segment file).
    package static func list(segmentFiles: [String]) throws(ExarError) -> [SegmentListing] {
        var listings: [SegmentListing] = []
        for (number, file) in segmentFiles.enumerated() {
            listings.append(try SegmentListing(segmentFile: file, isLast: number == segmentFiles.count - 1))
        }
        return listings
    }

    /// Checks the collection folder `directory`: every batch's checksum and records, id continuity
    /// across segments, the sealed end of data, the index entries and the tag bitmaps.
    /// A folder that cannot be read or holds no segment files is reported corrupt at byte 0.
    package static func verify(directory: String) -> VerifyReport {
        do {
            return try verify(segmentFiles: segmentFiles(in: directory))
        } catch {
            return .corrupt(file: directory, position: 0, reason: "\(error)")
        }
    }

    /// Checks the segments `segmentFiles` (a folder's segment files in id order, or one segment
    /// file) as ``verify(directory:)`` does; stops at the first problem.
    package static func verify(segmentFiles: [String]) -> VerifyReport {
        var previousEnd: UInt64?
        var events: UInt64 = 0
        var verified = 0
        for file in segmentFiles {
            let report = verify(file, previousEnd: &previousEnd, events: &events)
            // Retention of the running server deleted the oldest segments meanwhile: not a problem
            // while nothing after them was checked yet (the deleted ones are always a prefix).
            if case .corrupt = report, previousEnd == nil, FileSystem.size(of: file) == nil {
                continue
            }
            if case .corrupt = report { return report }
            verified += 1
        }
        return .ok(segments: verified, events: events)
    }

    /// Checks one segment file after those ending before `previousEnd`; `.ok` when it checks out.
    private static func verify(_ file: String, previousEnd: inout UInt64?, events: inout UInt64) -> VerifyReport {
        let inspector: SegmentInspector
        do {
            inspector = try SegmentInspector(logPath: file)
        } catch {
            return .corrupt(file: file, position: 0, reason: "cannot be read as a segment (\(error))")
        }
        let summary = inspector.summary()
        if let problem = summary.problem {
            return .corrupt(file: file, position: problem.position, reason: problem.reason)
        }
        if let previousEnd, previousEnd != inspector.baseId {
            return .corrupt(file: file, position: 0, reason:
                "ids jump: the previous segment ends before id \(previousEnd), this one starts at \(inspector.baseId)")
        }
        if summary.sealed && summary.recordedEnd != summary.dataEnd {
            return .corrupt(file: file, position: summary.dataEnd, reason:
                "sealed with end of data \(summary.recordedEnd), but the batches end at \(summary.dataEnd)")
        }
        if let problem = verifyIndexAndTags(file, inspector: inspector, end: summary.dataEnd) {
            return problem
        }
        if let problem = verifyTimeIndex(file, inspector: inspector, end: summary.dataEnd, sealed: summary.sealed) {
            return problem
        }
        previousEnd = inspector.baseId + summary.eventCount
        events += summary.eventCount
        return .ok(segments: 1, events: summary.eventCount)
    }

    /// The segment files of `directory`; throws when there are none.
    private static func segmentFiles(in directory: String) throws(ExarError) -> [String] {
        let files = try SegmentInspector.segmentPaths(in: directory)
        if files.isEmpty { throw .io(.notFound, "no segment files (<20 digits>.log) in \(directory)") }
        return files
    }

    /// Checks that every index entry below `end` points at a batch starting with its id, that the
    /// first batch has one, and that every stored tag passes the tag bitmaps.
    private static func verifyIndexAndTags(_ file: String, inspector: SegmentInspector, end: Int) -> VerifyReport? {
        let indexPath = String(file.dropLast(4)) + ".index"
        let tagsPath = String(file.dropLast(4)) + ".tags"
        let index: IndexFileView
        let tags: TagsFileView
        do {
            index = try IndexFileView(path: indexPath, baseId: inspector.baseId)
            tags = try TagsFileView(path: tagsPath, baseId: inspector.baseId)
        } catch {
            return .corrupt(file: indexPath, position: 0, reason:
                "missing or unreadable index or tag file (\(error)); the server rebuilds it on open")
        }
        let starts = inspector.batchStarts(upTo: end)
        var previous = 0
        var blockStarts: [Int] = []
        for (number, entry) in index.entries.enumerated() where entry.position < end {
            guard entry.position > previous, starts[entry.position] == entry.id else {
                return .corrupt(file: indexPath, position: Format.Index.headerSize + number * Format.Index.entrySize, reason:
                    "entry \(number) (id \(entry.id), position \(entry.position)) does not point at a batch starting with that id")
            }
            previous = entry.position
            blockStarts.append(entry.position)
        }
        if end > Format.Segment.headerSize && blockStarts.first != Format.Segment.headerSize {
            return .corrupt(file: indexPath, position: Format.Index.headerSize, reason: "the first batch has no index entry")
        }
        // A stored tag must pass its segment bitmap and the bitmap of its index block (blooms never miss).
        var problem: VerifyReport?
        inspector.forEachTag(upTo: end) { position, tag in
            guard problem == nil else { return }
            let block = lastIndex(in: blockStarts, notAfter: position)
            if !tags.mayContain(tag, block: block) {
                problem = .corrupt(file: tagsPath, position: position, reason:
                    "tag '\(String(decoding: tag, as: UTF8.self))' of the batch at \(position) is missing from the tag bitmaps")
            }
        }
        return problem
    }

    /// Checks that every time entry of an index entry below `end` holds the largest timestamp of the
    /// events before that entry's batch, and a sealed time file the segment's largest timestamp.
    private static func verifyTimeIndex(_ file: String, inspector: SegmentInspector, end: Int, sealed: Bool) -> VerifyReport? {
        let stem = String(file.dropLast(4))
        let timePath = stem + ".time"
        let index: IndexFileView
        let time: TimeFileView
        do {
            index = try IndexFileView(path: stem + ".index", baseId: inspector.baseId)
            time = try TimeFileView(path: timePath, baseId: inspector.baseId)
        } catch {
            return .corrupt(file: timePath, position: 0, reason:
                "missing or unreadable time index (\(error)); the server rebuilds it on open")
        }
        let entries = index.entries.filter { $0.position < end }
        if entries.count > time.capacity {
            return .corrupt(file: timePath, position: Format.Time.capacityOffset, reason:
                "room for \(time.capacity) time entries, but the index has \(entries.count)")
        }
        var expected: [UInt64] = []
        var next = 0
        var running: UInt64 = 0
        inspector.forEachTimestamp(upTo: end) { position, timestamp in
            while next < entries.count && entries[next].position <= position {
                expected.append(running)
                next += 1
            }
            running = max(running, timestamp)
        }
        while expected.count < entries.count { expected.append(running) }
        for (number, value) in expected.enumerated() where time.entry(number) != value {
            return .corrupt(file: timePath, position: Format.Time.headerSize + number * Format.Time.entrySize, reason:
                "time entry \(number) holds \(time.entry(number)), but the largest timestamp before its batch is \(value)")
        }
        if sealed && time.sealedCount == entries.count && time.sealedMaxTimestamp != running {
            return .corrupt(file: timePath, position: Format.Time.maxTimestampOffset, reason:
                "records \(time.sealedMaxTimestamp) as the segment's largest timestamp, but it is \(running)")
        }
        return nil
    }

    /// The index of the last element `<= value` in an ascending array (binary search).
    private static func lastIndex(in sorted: [Int], notAfter value: Int) -> Int? {
        var low = 0
        var high = sorted.count
        while low < high {
            let middle = (low + high) / 2
            if sorted[middle] <= value { low = middle + 1 } else { high = middle }
        }
        return low > 0 ? low - 1 : nil
    }
}

import ArgumentParser
import ExarCore
import ExarModel
import Foundation

/// `exar-inspect`: lists, dumps and verifies the segments of a collection, without changing them.
@main
struct ExarInspect: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "exar-inspect",
        abstract: "Inspect the segment files of an Exar DB collection (read-only).",
        discussion: "PATH is a collection folder (<logs_path>/<collection>) or one segment file (<20 digits>.log).",
        version: "0.1.0",
        subcommands: [List.self, Dump.self, Index.self, Tags.self, Verify.self, Repair.self],
        defaultSubcommand: List.self
    )
}

/// The segment files named by a folder or a file path.
func segmentFiles(_ path: String) throws -> [String] {
    var isDirectory: ObjCBool = false
    guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
        throw ValidationError("no such file or folder: \(path)")
    }
    if isDirectory.boolValue {
        let files = try SegmentInspector.segmentPaths(in: path)
        if files.isEmpty { throw ValidationError("no segment files (<20 digits>.log) in \(path)") }
        return files
    }
    return [path]
}

func companion(_ logPath: String, _ suffix: String) -> String {
    String(logPath.dropLast(4)) + suffix
}

struct List: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "The segments: ids, events, bytes used, timestamps, state, compression.")

    @Argument(help: "A collection folder or a segment file.") var path: String

    func run() throws {
        let files = try segmentFiles(path)
        print("segment\tstate\tevents\tfirst_id\tlast_id\tbytes_used\tfile_size\tfirst_ts\tlast_ts\tbatches\tlz4_ratio\tproblem")
        var listed: [SegmentListing] = []
        for (number, file) in files.enumerated() {
            // A first file the running server's retention deleted since the folder was read is left out.
            if listed.isEmpty && !FileManager.default.fileExists(atPath: file) { continue }
            let segment = try SegmentListing(segmentFile: file, isLast: number == files.count - 1)
            listed.append(segment)
            let problem = segment.problem.map { "at \($0.position): \($0.reason)" } ?? "-"
            let fields: [String] = [
                segment.name, segment.state.rawValue, String(segment.events),
                segment.firstId.map(String.init) ?? "-", segment.lastId.map(String.init) ?? "-",
                String(segment.bytesUsed), String(segment.fileSize),
                segment.firstTimestamp.map(String.init) ?? "-", segment.lastTimestamp.map(String.init) ?? "-",
                String(segment.batches), String(format: "%.2f", segment.lz4Ratio), problem,
            ]
            print(fields.joined(separator: "\t"))
        }
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue {
            print(Self.summary(of: listed, folder: path))
        }
    }

    /// The folder's line under the table: the first retained id (the first segment's; older ones
    /// may have been deleted by retention), the last id, and what the folder takes on disk.
    static func summary(of segments: [SegmentListing], folder: String) -> String {
        var bytes: UInt64 = 0
        for name in (try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? [] {
            var info = stat()
            if stat(folder + "/" + name, &info) == 0 { bytes += UInt64(info.st_blocks) * 512 }
        }
        let first = segments.lazy.compactMap(\.firstId).first
        let last = segments.reversed().lazy.compactMap(\.lastId).first
        return "# first retained id \(first.map(String.init) ?? "-"), last id \(last.map(String.init) ?? "-"), "
            + "\(segments.count) segments, \(bytes) bytes on disk"
    }
}

struct Dump: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "The events of a range or tag, as protocol lines or JSON lines.")

    @Argument(help: "A collection folder or a segment file.") var path: String
    @Option(help: "The first id to dump.") var from: UInt64 = 1
    @Option(help: "The last id to dump.") var to: UInt64 = UInt64.max
    @Option(help: "Only events with this tag.") var tag: String?
    @Flag(help: "JSON lines instead of protocol Event lines.") var json = false

    func run() throws {
        guard from <= to else { throw ValidationError("--from must not be after --to") }
        var out = FileHandle.standardOutput
        for file in try segmentFiles(path) {
            try SegmentInspector(logPath: file).forEachEvent(in: from...to, tag: tag) { event in
                let tags = String(decoding: event.tags, as: UTF8.self)
                let data = String(decoding: event.data, as: UTF8.self)
                if json {
                    let object: [String: Any] = ["id": event.id, "timestamp": event.timestamp,
                                                 "tags": tags.split(separator: " ").map(String.init), "data": data]
                    let bytes = try! JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
                    print(String(decoding: bytes, as: UTF8.self), to: &out)
                } else {
                    print("Event\t\(event.id)\t\(event.timestamp)\t\(tags)\t\(data)", to: &out)
                }
            }
        }
    }
}

extension FileHandle: @retroactive TextOutputStream {
    public func write(_ string: String) {
        write(Data(string.utf8))
    }
}

struct Index: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "The sparse index entries of each segment.")

    @Argument(help: "A collection folder or a segment file.") var path: String

    func run() throws {
        for file in try segmentFiles(path) {
            let inspector = try SegmentInspector(logPath: file)
            let index = try IndexFileView(path: companion(file, ".index"), baseId: inspector.baseId)
            print("# \(companion(file, ".index")): interval \(index.interval) bytes, \(index.entries.count) entries of \(index.capacity)")
            print("entry\tid\tposition")
            for (number, entry) in index.entries.enumerated() {
                print("\(number)\t\(entry.id)\t\(entry.position)")
            }
        }
    }
}

struct Tags: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Tag bitmap fill and false-positive estimate of each segment.")

    @Argument(help: "A collection folder or a segment file.") var path: String

    func run() throws {
        print("segment\tversion\tsegment_bitmap_bits\tblocks\tsegment_bitmap_fill\tfalse_positive_estimate")
        for file in try segmentFiles(path) {
            let inspector = try SegmentInspector(logPath: file)
            let tags = try TagsFileView(path: companion(file, ".tags"), baseId: inspector.baseId)
            let blocks = tags.sealedBlockCount > 0 ? String(tags.sealedBlockCount) : "unsealed"
            print("\(file.split(separator: "/").last ?? "")\t\(tags.version)\t\(tags.segmentBits)\t\(blocks)\t\(String(format: "%.4f", tags.segmentFill))\t\(String(format: "%.2e", tags.falsePositiveEstimate))")
        }
    }
}

import ExarCore
import ExarModel
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// One collection's log of the original (Rust) Exar DB: `<logs_path>/<name>.log`.
///
/// The original appends one line per event, `id TAB timestamp TAB tags TAB data LF`: ids count
/// from 1 without a gap (the writer's next id is the file's line count plus one), the timestamp
/// is in milliseconds (the writer stamps 0 with the current time, so 0 is never written), tags
/// are joined by single spaces, and the data is everything after the third TAB (it may hold TABs).
/// Its reader splits lines as Rust's `BufRead::lines` does, so a CR before the LF is not part of
/// the data. Beside it, `<name>.index.log` holds a line index (`lines bytes` pairs), which the
/// import does not need.
struct OriginalLog: Sendable, Equatable {
    /// The collection's name (the file name without `.log`).
    let name: String
    /// The path of the `.log` file.
    let path: String

    static let suffix = ".log"
    static let indexSuffix = ".index.log"

    /// The logs to import from `folder`: those of `names`, or, when `names` is empty, every regular
    /// `<name>.log` file except the `.index.log` files, sorted by name.
    /// - Throws: ``ImportError`` for a folder that cannot be read, a named log that does not
    ///   exist, a file name that is not a valid collection name, or a folder without logs.
    static func find(in folder: String, names: [String]) throws(ImportError) -> [OriginalLog] {
        var isFolder: ObjCBool = false
        guard FileManager.default.fileExists(atPath: folder, isDirectory: &isFolder), isFolder.boolValue else {
            throw ImportError("\(folder) is not a folder (give --from the original's logs_path)")
        }
        if !names.isEmpty {
            var logs: [OriginalLog] = []
            for name in names where !logs.contains(where: { $0.name == name }) {
                try validate(name: name)
                let path = folder + "/" + name + suffix
                guard isRegularFile(path) else {
                    throw ImportError("no original log for collection \(name): \(path) does not exist")
                }
                logs.append(OriginalLog(name: name, path: path))
            }
            return logs
        }
        let entries: [String]
        do {
            entries = try FileManager.default.contentsOfDirectory(atPath: folder)
        } catch {
            throw ImportError("cannot read the folder \(folder): \(error.localizedDescription)")
        }
        var logs: [OriginalLog] = []
        for entry in entries.sorted()
        where entry.hasSuffix(suffix) && !entry.hasSuffix(indexSuffix) && isRegularFile(folder + "/" + entry) {
            let name = String(entry.dropLast(suffix.count))
            try validate(name: name)
            logs.append(OriginalLog(name: name, path: folder + "/" + entry))
        }
        if logs.isEmpty {
            throw ImportError("no original logs (<name>.log) in \(folder)")
        }
        return logs
    }

    private static func validate(name: String) throws(ImportError) {
        do {
            try Database.validateName(name)
        } catch {
            throw ImportError("\(name) is not a valid collection name: \(error.plainText)")
        }
    }

    private static func isRegularFile(_ path: String) -> Bool {
        var status = stat()
        return stat(path, &status) == 0 && (status.st_mode & S_IFMT) == S_IFREG
    }
}

/// What is wrong with one line of an original log.
struct LineProblem: Error {
    let reason: String
}

/// One event of an original log, its tags and data pointing into the line it was parsed from.
struct OriginalEvent {
    var id: UInt64
    var timestamp: UInt64
    var tags: UnsafeRawBufferPointer
    var data: UnsafeRawBufferPointer

    /// Parses one line (without its LF) that must hold the event `expectedId`.
    /// - Throws: ``LineProblem`` for missing fields, an id that is not a number or not the expected
    ///   one, a bad timestamp, bad tags, bytes that are not UTF-8, or an event larger than
    ///   `maximumEventBytes`.
    static func parse(
        _ line: UnsafeRawBufferPointer, expectedId: UInt64, maximumEventBytes: Int
    ) throws(LineProblem) -> OriginalEvent {
        var line = line
        if line.last == UInt8(ascii: "\r") { line = UnsafeRawBufferPointer(rebasing: line.dropLast()) }
        if line.isEmpty { throw LineProblem(reason: "empty line") }
        guard let firstTab = line.firstIndex(of: UInt8(ascii: "\t")) else {
            throw LineProblem(reason: "missing fields: found 1 of 4 (id, timestamp, tags, data separated by TABs)")
        }
        let idField = UnsafeRawBufferPointer(rebasing: line[..<firstTab])
        guard let id = parseNumber(idField) else {
            throw LineProblem(reason: "bad id \(quoted(idField))")
        }
        if id != expectedId {
            throw LineProblem(reason: "id \(id) is not the next one (expected \(expectedId))")
        }
        let afterId = UnsafeRawBufferPointer(rebasing: line[(firstTab + 1)...])
        guard let secondTab = afterId.firstIndex(of: UInt8(ascii: "\t")) else {
            throw LineProblem(reason: "missing fields: found 2 of 4 (id, timestamp, tags, data separated by TABs)")
        }
        let timestampField = UnsafeRawBufferPointer(rebasing: afterId[..<secondTab])
        guard let timestamp = parseNumber(timestampField) else {
            throw LineProblem(reason: "bad timestamp \(quoted(timestampField))")
        }
        if timestamp == 0 {
            throw LineProblem(reason: "bad timestamp 0 (the original never writes it; it would be replaced by the import time)")
        }
        let afterTimestamp = UnsafeRawBufferPointer(rebasing: afterId[(secondTab + 1)...])
        guard let thirdTab = afterTimestamp.firstIndex(of: UInt8(ascii: "\t")) else {
            throw LineProblem(reason: "missing fields: found 3 of 4 (id, timestamp, tags, data separated by TABs)")
        }
        let tags = UnsafeRawBufferPointer(rebasing: afterTimestamp[..<thirdTab])
        let data = UnsafeRawBufferPointer(rebasing: afterTimestamp[(thirdTab + 1)...])
        do {
            try EventValidation.validateTagsField(tags)
        } catch {
            throw LineProblem(reason: "bad tags \(quoted(tags)): \(error.plainText)")
        }
        if let offset = UTF8Validation.firstInvalidByte(in: tags) {
            throw LineProblem(reason: "tags are not valid UTF-8 (byte \(offset + 1) of the tags)")
        }
        if let offset = UTF8Validation.firstInvalidByte(in: data) {
            throw LineProblem(reason: "data is not valid UTF-8 (byte \(offset + 1) of the data)")
        }
        if tags.count + data.count > maximumEventBytes {
            throw LineProblem(reason: "event of \(tags.count + data.count) bytes is larger than a segment can hold (\(maximumEventBytes)): raise segment_size")
        }
        return OriginalEvent(id: id, timestamp: timestamp, tags: tags, data: data)
    }

    /// A decimal number of 1 to 20 digits that fits 64 bits, or `nil`.
    static func parseNumber(_ field: UnsafeRawBufferPointer) -> UInt64? {
        guard !field.isEmpty, field.count <= 20 else { return nil }
        var value: UInt64 = 0
        for byte in field {
            guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") else { return nil }
            let (times10, overflow1) = value.multipliedReportingOverflow(by: 10)
            let (sum, overflow2) = times10.addingReportingOverflow(UInt64(byte - UInt8(ascii: "0")))
            if overflow1 || overflow2 { return nil }
            value = sum
        }
        return value
    }

    /// A field as an error message shows it: quoted, at most 40 bytes, invalid UTF-8 repaired.
    static func quoted(_ field: UnsafeRawBufferPointer) -> String {
        let shown = String(decoding: field.prefix(40), as: UTF8.self)
        return "\"" + shown + (field.count > 40 ? "...\"" : "\"")
    }
}

/// Reads a file line by line through one reused buffer (no String or Array per line), at most
/// `limit` bytes of it.
final class LineReader {
    let path: String
    private let descriptor: Int32
    private var buffer: UnsafeMutableRawBufferPointer
    /// The unconsumed bytes are `buffer[start..<end]`.
    private var start = 0
    private var end = 0
    private var remaining: Int
    private var atEnd = false
    /// The number of the last line handed out (1-based); 0 before the first.
    private(set) var lineNumber = 0
    /// The bytes of the lines handed out so far, LFs included.
    private(set) var consumedBytes = 0

    /// Opens `path`; reads at most `limit` bytes (all of it when `nil`).
    /// - Throws: ``ImportError`` when the file cannot be opened.
    init(path: String, limit: Int? = nil, bufferSize: Int = 1 << 22) throws(ImportError) {
        self.path = path
        descriptor = open(path, O_RDONLY | O_CLOEXEC)
        if descriptor < 0 {
            throw ImportError("cannot open \(path): \(String(cString: strerror(errno)))")
        }
        remaining = limit ?? Int.max
        buffer = .allocate(byteCount: bufferSize, alignment: 16)
    }

    deinit {
        close(descriptor)
        buffer.deallocate()
    }

    /// Makes sure at least one whole line is in the buffer, reading from the file as needed.
    /// - Returns: `false` at the end of the file (or of the limit).
    /// - Throws: ``ImportError`` for a read error or a last line without its LF.
    func refill() throws(ImportError) -> Bool {
        while true {
            if start < end, memchr(buffer.baseAddress! + start, Int32(UInt8(ascii: "\n")), end - start) != nil {
                return true
            }
            if atEnd {
                guard start == end else {
                    throw ImportError("\(path) line \(lineNumber + 1): the file does not end with a newline, so its last line may have been cut short (a crash of the original while writing?); check that line, then add the newline or remove the line")
                }
                return false
            }
            // Keep the partial line: move it to the front, or grow the buffer when it fills it.
            if start > 0 {
                if end > start { memmove(buffer.baseAddress!, buffer.baseAddress! + start, end - start) }
                end -= start
                start = 0
            }
            if end == buffer.count {
                let larger = UnsafeMutableRawBufferPointer.allocate(byteCount: buffer.count * 2, alignment: 16)
                larger.copyMemory(from: UnsafeRawBufferPointer(rebasing: buffer[..<end]))
                buffer.deallocate()
                buffer = larger
            }
            let wanted = min(buffer.count - end, remaining)
            if wanted == 0 {
                atEnd = true
                continue
            }
            let count = read(descriptor, buffer.baseAddress! + end, wanted)
            if count < 0 {
                if errno == EINTR { continue }
                throw ImportError("cannot read \(path): \(String(cString: strerror(errno)))")
            }
            if count == 0 {
                atEnd = true
                continue
            }
            end += count
            remaining -= count
        }
    }

    /// The next whole line already in the buffer (without its LF) and its number, or `nil` when the
    /// buffer holds no whole line (call ``refill()``); never reads the file. The bytes stay valid
    /// until the next ``refill()``.
    func nextLine() -> (line: UnsafeRawBufferPointer, number: Int)? {
        guard start < end else { return nil }
        let base = buffer.baseAddress!
        guard let newline = memchr(base + start, Int32(UInt8(ascii: "\n")), end - start) else { return nil }
        let length = UnsafeRawPointer(newline) - UnsafeRawPointer(base + start)
        let line = UnsafeRawBufferPointer(start: base + start, count: length)
        start += length + 1
        consumedBytes += length + 1
        lineNumber += 1
        return (line, lineNumber)
    }
}

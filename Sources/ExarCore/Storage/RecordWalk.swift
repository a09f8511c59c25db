/// One event record inside a raw (uncompressed) batch payload.
struct RecordView {
    var timestamp: UInt64
    var tags: UnsafeRawBufferPointer
    var data: UnsafeRawBufferPointer
}

/// Walks the records of a raw batch payload.
enum RecordWalk {
    /// Calls `body` for each record in order until it returns `false`; returns the number visited.
    /// Stops early (returning fewer) at a record whose lengths run past the payload.
    @discardableResult
    @inline(__always)
    static func forEach(_ payload: UnsafeRawBufferPointer, _ body: (RecordView) -> Bool) -> Int {
        guard let base = payload.baseAddress else { return 0 }
        var offset = 0
        var visited = 0
        let end = payload.count
        while offset + Format.Record.headerSize <= end {
            let timestamp = base.loadLE(at: offset, as: UInt64.self)
            let tagsLength = Int(base.loadLE(at: offset + 8, as: UInt32.self))
            let dataLength = Int(base.loadLE(at: offset + 12, as: UInt32.self))
            let tagsStart = offset + Format.Record.headerSize
            guard tagsLength <= end - tagsStart, dataLength <= end - tagsStart - tagsLength else { break }
            let record = RecordView(
                timestamp: timestamp,
                tags: UnsafeRawBufferPointer(start: base + tagsStart, count: tagsLength),
                data: UnsafeRawBufferPointer(start: base + tagsStart + tagsLength, count: dataLength))
            offset = tagsStart + tagsLength + dataLength
            visited += 1
            if !body(record) { break }
        }
        return visited
    }

    /// Whether `payload` holds exactly `count` records and nothing else.
    static func isWellFormed(_ payload: UnsafeRawBufferPointer, count: Int) -> Bool {
        var consumed = 0
        let visited = forEach(payload) { record in
            consumed = record.data.baseAddress! + record.data.count - payload.baseAddress!
            return true
        }
        return visited == count && consumed == payload.count
    }

    /// The size of one encoded record.
    @inline(__always)
    static func encodedSize(tags: Int, data: Int) -> Int {
        Format.Record.headerSize + tags + data
    }
}

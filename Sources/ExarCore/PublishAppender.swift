import ExarModel

#if canImport(Glibc)
import Glibc
#endif

/// The outcome of one publish call (a burst of events that got consecutive ids).
public struct PublishResult: Sendable, Equatable {
    /// The id of the burst's first event (when at least one was stored).
    public var firstId: UInt64
    /// How many of the burst's events were stored, in order: all of them unless `error` is set.
    public var storedCount: Int
    /// Why the rest of the burst was not stored.
    public var error: ExarError?

    /// Creates a result.
    public init(firstId: UInt64, storedCount: Int, error: ExarError? = nil) {
        self.firstId = firstId
        self.storedCount = storedCount
        self.error = error
    }

    /// The ids of the stored events.
    public var ids: ClosedRange<UInt64>? {
        storedCount > 0 ? firstId...(firstId + UInt64(storedCount) - 1) : nil
    }
}

/// Appends the events of one publish call straight into the collection's pending buffer.
///
/// Each event is validated and encoded in its on-disk record form, so the writer copies bytes
/// without decoding anything. Given to the closure of ``Collection/publish(_:completion:)``.
public struct PublishAppender: ~Copyable {
    var records: [UInt8]
    let startCount: Int
    let now: UInt64
    let maximumEventBytes: Int
    /// The number of events appended so far.
    public private(set) var count = 0

    init(records: consuming [UInt8], now: UInt64, maximumEventBytes: Int) {
        self.records = records
        self.startCount = self.records.count
        self.now = now
        self.maximumEventBytes = maximumEventBytes
    }

    /// Appends an event in its wire shape.
    /// - Parameters:
    ///   - timestamp: milliseconds since the Unix epoch, or `0` for now.
    ///   - tags: the tags field, tags separated by single spaces.
    ///   - data: the data bytes.
    /// - Throws: ``ExarError/validation(_:)`` for empty tags, a newline in the data, or an event too
    ///   large for a segment. Nothing of the event is appended then.
    public mutating func append(
        timestamp: UInt64, tags: UnsafeRawBufferPointer, data: UnsafeRawBufferPointer
    ) throws(ExarError) {
        try EventValidation.validateTagsField(tags)
        if memchr(data.baseAddress ?? UnsafeRawPointer(bitPattern: 1)!, Int32(UInt8(ascii: "\n")), data.count) != nil {
            throw .validation(ValidationMessage.newlineInData)
        }
        try appendValidated(timestamp: timestamp, tags: tags, data: data)
    }

    /// Appends an event whose tags field and data were already validated (by the protocol decoder).
    /// - Throws: ``ExarError/validation(_:)`` when the event is too large for a segment.
    public mutating func appendValidated(
        timestamp: UInt64, tags: UnsafeRawBufferPointer, data: UnsafeRawBufferPointer
    ) throws(ExarError) {
        try checkSize(tags: tags.count, data: data.count)
        encode(timestamp: timestamp, tags: tags, data: data)
    }

    /// Appends an ``Event`` given through the library API (its id is ignored).
    /// - Throws: ``ExarError/validation(_:)`` as ``Event/validated()`` does.
    public mutating func append(_ event: Event) throws(ExarError) {
        _ = try event.validated()
        var tags = event.tags.joined(separator: " ")
        var data = event.data
        try checkSize(tags: tags.utf8.count, data: data.utf8.count)
        tags.withUTF8 { tagBytes in
            data.withUTF8 { dataBytes in
                encode(timestamp: event.timestamp, tags: UnsafeRawBufferPointer(tagBytes), data: UnsafeRawBufferPointer(dataBytes))
            }
        }
    }

    private func checkSize(tags: Int, data: Int) throws(ExarError) {
        if tags + data > maximumEventBytes {
            throw .validation("event of \(tags + data) bytes is larger than a segment can hold (\(maximumEventBytes))")
        }
    }

    /// Writes one record in its on-disk form (see ``Format/Record``).
    private mutating func encode(timestamp: UInt64, tags: UnsafeRawBufferPointer, data: UnsafeRawBufferPointer) {
        records.appendLE(timestamp == 0 ? now : timestamp)
        records.appendLE(UInt32(tags.count))
        records.appendLE(UInt32(data.count))
        records.append(contentsOf: tags)
        records.append(contentsOf: data)
        count += 1
    }

    /// Gives the buffer back, without this call's events when `keep` is false.
    mutating func finish(keep: Bool) -> [UInt8] {
        var taken: [UInt8] = []
        swap(&taken, &records)
        if !keep {
            taken.removeSubrange(startCount...)
        }
        return taken
    }
}

/// Milliseconds since the Unix epoch, from the real-time clock.
func currentTimeMilliseconds() -> UInt64 {
    var spec = timespec()
    clock_gettime(CLOCK_REALTIME, &spec)
    return UInt64(spec.tv_sec) * 1000 + UInt64(spec.tv_nsec) / 1_000_000
}

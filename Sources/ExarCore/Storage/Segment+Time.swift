/// Finding events by time: the time index's entries run parallel to the offset index's, each
/// holding the largest timestamp of the segment's events before that entry's batch.
extension Segment {
    /// The time entry `number` (the largest timestamp before the batch of index entry `number`).
    @inline(__always)
    func timeEntry(_ number: Int) -> UInt64 {
        UnsafeRawPointer(time.base).loadLE(at: Format.Time.headerSize + number * Format.Time.entrySize, as: UInt64.self)
    }

    /// The id of the first committed event of this segment whose timestamp is at or after
    /// `timestamp`, or `nil` when it has none. Costs a binary search of the time index and a walk
    /// of one index block (about `index_interval_bytes` of events).
    func firstId(atOrAfter timestamp: UInt64, scratch: DecompressionBuffer) -> UInt64? {
        // Loaded before the end: the events it covers lie below the end loaded next.
        guard maxTimestamp.load(ordering: .acquiring) >= timestamp else { return nil }
        let end = committedEnd.load(ordering: .acquiring)
        let count = usableIndexCount(below: end)
        // The last entry whose earlier events are all before `timestamp`: the event is in its block.
        var low = 0
        var high = count
        while low < high {
            let middle = (low + high) / 2
            if timeEntry(middle) < timestamp { low = middle + 1 } else { high = middle }
        }
        var position = low > 0 ? indexEntry(low - 1).position : Format.Segment.headerSize
        let base = UnsafeRawPointer(log.base)
        let verified = verifiedEnd.load(ordering: .acquiring)
        // Normally the match lies within the block; the walk goes on to the end so that a time
        // index that is wrong (damage after a trusted open) costs time, never a wrong answer.
        while position < end {
            switch BatchProbe.probe(base, position: position, limit: end, expectedBaseId: nil,
                                    verifyChecksum: position >= verified) {
            case .end:
                return nil
            case .invalid:
                guard let next = nextIndexedPosition(after: position, count: count) else { return nil }
                position = next
            case .batch(let header):
                var found: UInt64?
                if let payload = scratch.payload(of: base + position, header) {
                    var id = header.baseId
                    RecordWalk.forEach(payload) { record in
                        if record.timestamp >= timestamp {
                            found = id
                            return false
                        }
                        id += 1
                        return true
                    }
                } else if let next = nextIndexedPosition(after: position, count: count) {
                    position = next
                    continue
                }
                if let found { return found }
                position += header.totalSize
            }
        }
        return nil
    }

    /// The position of the first indexed batch after `position` (to step over a damaged batch).
    private func nextIndexedPosition(after position: Int, count: Int) -> Int? {
        for number in 0..<count where indexEntry(number).position > position {
            return indexEntry(number).position
        }
        return nil
    }
}

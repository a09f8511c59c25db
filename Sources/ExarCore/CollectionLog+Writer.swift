import ExarModel
import Foundation

/// The collection's writer: passes on one of the shared writer lanes (``WorkLanes/writers``)
/// that write the bursts queued for it (those not written in place), roll segments, sync as the
/// policy says, and seal the active segment on close.
extension CollectionLog: LaneWork {
    /// Bytes reserved up front in each of the two pending buffers, so bursts do not regrow them.
    static let pendingReserve = 1 << 20

    /// One writer pass: takes everything pending and writes it. Scheduled by a publish that
    /// queues onto an empty queue, by an in-place write that leaves data unsynced (`interval`),
    /// and by `close`; asks for its next pass when an interval sync falls due.
    func runPass() -> LaneNext {
        // Wait for a publisher writing in place, then take what is pending.
        writeLock.lock()
        condition.lock()
        guard writerRunning else {
            condition.unlock()
            writeLock.unlock()
            return .idle
        }
        let stop = pendingBursts.isEmpty && closing
        // The pass's own buffers (moved, not copied: reused from pass to pass) for the pending ones.
        var records: [UInt8] = []
        var bursts: [PendingBurst] = []
        swap(&records, &writerRecords)
        swap(&bursts, &writerBursts)
        swap(&records, &pendingRecords)
        swap(&bursts, &pendingBursts)
        let conditional = pendingHasCondition
        pendingHasCondition = false
        condition.unlock()

        // Conditional bursts are checked one by one, in order; otherwise one write for all.
        let outcome = bursts.isEmpty || conditional ? nil : write(records)
        let results = bursts.isEmpty || !conditional ? nil : records.withUnsafeBytes { writeBursts($0, bursts) }
        syncIfDue()
        if !stop { writeLock.unlock() }  // else kept: nobody writes after the seal
        if let outcome {
            var before = 0
            for burst in bursts {
                burst.completion(outcome.result(ofBurstAt: before, count: burst.count))
                before += burst.count
            }
        }
        if let results {
            for (burst, result) in zip(bursts, results) { burst.completion(result) }
        }
        if !bursts.isEmpty {
            records.removeAll(keepingCapacity: true)
            bursts.removeAll(keepingCapacity: true)
        }
        writerRecords = records
        writerBursts = bursts
        if stop {
            finishWriting()
            return .idle
        }
        // Closing with bursts written in this pass: the next one seals.
        condition.lock()
        let closingNow = closing
        condition.unlock()
        if closingNow { return .again }
        let since = unsyncedSince.load(ordering: .relaxed)
        if since != 0, case .interval(let milliseconds) = configuration.sync {
            let elapsed = currentTimeMilliseconds() &- since
            return .at(WorkLanes.now + (elapsed >= UInt64(milliseconds) ? 0 : UInt64(milliseconds) - elapsed))
        }
        return .idle
    }

    /// The last pass's end (`writeLock` held): seals the active segment and lets the folder go.
    private func finishWriting() {
        defer { writeLock.unlock() }
        active.commit()
        active.seal(releasingTail: .waiting)
        condition.lock()
        let syncing = syncsOnClose
        condition.unlock()
        do {
            if syncing { try counters.timingSync { () throws(ExarError) in try active.sync() } }
        } catch {
            logHandler?(.error, "collection \(name): cannot sync on close: \(error)")
        }
        // The observers hold the scanners, which hold this log: let the cycle go.
        commitObservers = []
        // No retention pass may delete files once another process can take the folder.
        stopRetention()
        lock.release()
        condition.lock()
        writerRunning = false
        condition.broadcast()
        condition.unlock()
    }

    /// What one `write` stored: the first id and how many events, and why it stopped short.
    struct WriteOutcome {
        let firstId: UInt64
        let written: Int
        let failure: ExarError?

        /// The result of the burst whose events start `offset` events into the write.
        func result(ofBurstAt offset: Int, count: Int) -> PublishResult {
            let stored = min(count, max(0, written - offset))
            return PublishResult(firstId: firstId + UInt64(offset), storedCount: stored,
                                 error: stored < count ? (failure ?? .io(.other, "not stored")) : nil)
        }
    }

    /// Writes `records` as batches, commits, and syncs if asked; the callers complete the bursts
    /// once they let `writeLock` go.
    func write(_ records: [UInt8]) -> WriteOutcome {
        records.withUnsafeBytes { write($0) }
    }

    /// Writes `raw` (encoded records) as batches; see ``write(_:)-([UInt8])``.
    func write(_ raw: UnsafeRawBufferPointer) -> WriteOutcome {
        let firstId = active.nextId
        var failure: ExarError?
        var written = 0
        var writtenBytes = 0
        let compress = configuration.compression == .lz4
        let batchLimit = Format.Batch.rawPayloadLimit(indexInterval: configuration.indexIntervalBytes)
        do {
            var offset = 0
            while offset < raw.count {
                if mustRoll || active.freePayloadBytes < Format.Record.headerSize {
                    do throws(ExarError) {
                        try roll()
                    } catch {
                        failure = error
                        break
                    }
                }
                let room = min(active.freePayloadBytes, batchLimit)
                var end = offset
                var count = 0
                var firstTimestamp: UInt64 = 0
                var lastTimestamp: UInt64 = 0
                var batchBytes = 0
                while end < raw.count {
                    let tagsLength = Int(raw.baseAddress!.loadLE(at: end + 8, as: UInt32.self))
                    let dataLength = Int(raw.baseAddress!.loadLE(at: end + 12, as: UInt32.self))
                    let size = RecordWalk.encodedSize(tags: tagsLength, data: dataLength)
                    let fits = count == 0 ? size <= active.freePayloadBytes : end - offset + size <= room
                    if !fits { break }
                    lastTimestamp = raw.baseAddress!.loadLE(at: end, as: UInt64.self)
                    if count == 0 { firstTimestamp = lastTimestamp }
                    end += size
                    count += 1
                    batchBytes += tagsLength + dataLength
                }
                if count == 0 {
                    // Not even one event fits in what is left of this segment.
                    mustRoll = true
                    continue
                }
                do throws(ExarError) {
                    try reserve(payloadBytes: end - offset)
                } catch {
                    failure = error
                    break
                }
                active.append(records: UnsafeRawBufferPointer(rebasing: raw[offset..<end]), count: count,
                              firstTimestamp: firstTimestamp, lastTimestamp: lastTimestamp, compress: compress)
                offset = end
                written += count
                writtenBytes += batchBytes
            }
        }
        active.commit()
        if let retention, !retentionRequestedForActive, active.isCommittedPastHalf {
            // Past half: a pass now makes room for the segment the next roll creates.
            retentionRequestedForActive = true
            requestRetentionForNextSegment(retention)
        }
        if written > 0 {
            counters.appended(events: written, bytes: writtenBytes)
            lastCommittedId.store(active.nextId - 1, ordering: .releasing)
            for observer in commitObservers { observer() }
            switch configuration.sync {
            case .always:
                let started = DispatchTime.now().uptimeNanoseconds
                defer { lastSyncNanoseconds.store(DispatchTime.now().uptimeNanoseconds &- started, ordering: .relaxed) }
                do {
                    try counters.timingSync { () throws(ExarError) in try active.syncData() }
                } catch {
                    failure = failure ?? error
                    written = 0
                }
            case .interval:
                if unsyncedSince.load(ordering: .relaxed) == 0 { unsyncedSince.store(currentTimeMilliseconds(), ordering: .relaxed) }
            case .none:
                break
            }
        }
        if let failure {
            logHandler?(.error, "collection \(name): publishing failed after \(written) events: \(failure)")
        }
        return WriteOutcome(firstId: firstId, written: written, failure: failure)
    }

    /// Seals the active segment and starts a new one after it.
    func roll() throws(ExarError) {
        if !active.isSealed.load(ordering: .relaxed) {
            active.commit()
            active.seal(releasingTail: .background)
            if configuration.sync != .none {
                try counters.timingSync { () throws(ExarError) in try active.sync() }
            }
            active.releaseDescriptors()
        }
        mustRoll = true
        awaitRetentionPass()
        let next: Segment
        do {
            next = try createNextSegment()
        } catch {
            // A full disk with retention configured: delete what the policies allow now, then try once more.
            guard let retention, Self.isNoSpace(error) else { throw error }
            let deleted = retention.enforceNow()
            log(.warning, "no space for a new segment; retention deleted \(deleted) segments at once")
            next = try createNextSegment()
        }
        segmentList.withLock { $0.append(next) }
        active = next
        mustRoll = false
        retentionRequestedForActive = false
        retention?.request(self)
    }

    /// Allocates the active segment's room for the next batch. A full disk with retention
    /// configured: delete what the policies allow now, then try once more.
    private func reserve(payloadBytes: Int) throws(ExarError) {
        do {
            try active.reserve(payloadBytes: payloadBytes)
        } catch {
            guard let retention, Self.isNoSpace(error) else { throw error }
            let deleted = retention.enforceNow()
            log(.warning, "no space for the next batch; retention deleted \(deleted) segments at once")
            try active.reserve(payloadBytes: payloadBytes)
        }
    }

    private func createNextSegment() throws(ExarError) -> Segment {
        try Segment.create(directory: directory, baseId: active.nextId, size: configuration.segmentSize,
                           indexInterval: configuration.indexIntervalBytes)
    }

    func syncIfDue() {
        let since = unsyncedSince.load(ordering: .relaxed)
        guard since != 0, case .interval(let milliseconds) = configuration.sync,
            currentTimeMilliseconds() &- since >= UInt64(milliseconds)
        else { return }
        do {
            try counters.timingSync { () throws(ExarError) in try active.syncData() }
            unsyncedSince.store(0, ordering: .relaxed)
        } catch {
            logHandler?(.error, "collection \(name): interval sync failed: \(error)")
        }
    }
}

/// Sealing: the headers record the end of data, so a later open trusts them without a scan.
extension Segment {
    /// How a seal gives back the room allocated ahead: in the background (a roll: the segment
    /// is never written again), or before it returns (a close: the collection may reopen at once).
    enum TailRelease { case background, waiting }

    /// Records the end of data in the headers of the four files, so a later open needs no scan.
    /// `releasingTail`: also give back the disk allocated ahead past the data (the writer's
    /// roll and close; not recovery, which may keep bytes it does not serve).
    func seal(releasingTail: TailRelease? = nil) {
        let eventCount = nextId - baseId
        log.base.storeLE(UInt64(writeEnd), at: Format.Segment.sealedEndOffset)
        log.base.storeLE(eventCount, at: Format.Segment.eventCountOffset)
        log.base.storeLE(Format.Segment.sealedFlag, at: Format.Segment.flagsOffset)
        index.base.storeLE(UInt32(indexCount), at: Format.Index.countOffset)
        index.base.storeLE(UInt64(writeEnd), at: Format.Index.dataEndOffset)
        tags.base.storeLE(UInt32(indexCount), at: Format.Tags.blockCountOffset)
        // A tag file missing tags is not marked as agreeing with the segment: a reopen rebuilds it.
        let complete = segmentBitmapComplete.load(ordering: .relaxed)
        tags.base.storeLE(UInt64(complete ? writeEnd : 0), at: Format.Tags.dataEndOffset)
        time.base.storeLE(UInt32(indexCount), at: Format.Time.countOffset)
        time.base.storeLE(UInt64(writeEnd), at: Format.Time.dataEndOffset)
        time.base.storeLE(runningMaxTimestamp, at: Format.Time.maxTimestampOffset)
        isSealed.store(true, ordering: .releasing)
        log.adviseReading()
        if let releasingTail { log.releaseTail(from: writeEnd, waiting: releasingTail == .waiting) }
    }

    /// The files' unwritten pages are grown into, not read (see ``MappedFile/adviseGrowing(from:)``).
    func adviseGrowing() {
        log.adviseGrowing(from: writeEnd)
        index.adviseGrowing(from: 0)
        tags.adviseGrowing(from: 0)
        time.adviseGrowing(from: 0)
    }

    /// Clears the sealed marks of a segment reopened to take more events.
    func unseal() {
        log.base.storeLE(UInt32(0), at: Format.Segment.flagsOffset)
        log.base.storeLE(UInt64(0), at: Format.Segment.sealedEndOffset)
        log.base.storeLE(UInt64(0), at: Format.Segment.eventCountOffset)
        index.base.storeLE(UInt32(0), at: Format.Index.countOffset)
        index.base.storeLE(UInt64(0), at: Format.Index.dataEndOffset)
        tags.base.storeLE(UInt32(0), at: Format.Tags.blockCountOffset)
        tags.base.storeLE(UInt64(0), at: Format.Tags.dataEndOffset)
        time.base.storeLE(UInt32(0), at: Format.Time.countOffset)
        time.base.storeLE(UInt64(0), at: Format.Time.dataEndOffset)
        time.base.storeLE(UInt64(0), at: Format.Time.maxTimestampOffset)
        isSealed.store(false, ordering: .releasing)
        adviseGrowing()
    }
}

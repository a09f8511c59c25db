import ExarModel

/// The repair the server does when it opens a collection, run offline (`exar-inspect repair`):
/// a torn or corrupt tail of the last segment is cut, a too-small last segment file removed, and
/// missing or stale index and tag files rebuilt, and the last segment sealed as a clean close
/// leaves it. Events in sealed segments are only read.
package enum CollectionRepair {
    /// Repairs the collection folder `directory` and writes the result to the device.
    /// - Parameter indexIntervalBytes: the index interval for rebuilt index files; by default the
    ///   interval recorded in the folder's first readable index file, else the default (4096).
    /// - Returns: what was found and done (empty when the collection was already clean).
    /// - Throws: when another process (a running exar-db) has the collection open, or on I/O errors.
    package static func repair(directory: String, indexIntervalBytes: Int? = nil) throws(ExarError) -> [RecoveryNote] {
        let lock = try CollectionLock(directory: directory)
        defer { lock.release() }
        var configuration = CollectionConfiguration()
        configuration.indexIntervalBytes = indexIntervalBytes ?? recordedInterval(in: directory) ?? configuration.indexIntervalBytes
        // A segment made anew (in place of an unusable empty last one) gets the size of the others.
        if let size = segmentFileSize(in: directory) { configuration.segmentSize = size }
        var notes: [RecoveryNote] = []
        let segments = try CollectionLog.openSegments(directory: directory, configuration: configuration, notes: &notes)
        // Leave it as a clean close does: the last segment sealed (its header records the end of
        // data), so the next open trusts it without another scan or rebuild.
        if let last = segments.last, !last.isSealed.load(ordering: .relaxed) {
            last.commit()
            last.seal()
        }
        for segment in segments {
            try segment.sync()
        }
        return notes
    }

    /// The size of the first segment file (they all have the size the collection was configured with).
    private static func segmentFileSize(in directory: String) -> Int? {
        guard let names = try? FileSystem.contents(of: directory) else { return nil }
        return names.sorted().filter { $0.hasSuffix(".log") }.lazy
            .compactMap { FileSystem.size(of: directory + "/" + $0) }
            .first { $0 >= CollectionConfiguration.minimumSegmentSize }
    }

    /// The interval written in the first index file that has a valid header.
    private static func recordedInterval(in directory: String) -> Int? {
        guard let names = try? FileSystem.contents(of: directory) else { return nil }
        for name in names.sorted() where name.hasSuffix(".index") {
            guard let file = try? MappedFile.open(path: directory + "/" + name, writable: false),
                  file.size >= Format.Index.headerSize,
                  file.base.loadLE(at: 0, as: UInt64.self) == Format.Index.magic
            else { continue }
            let interval = Int(file.base.loadLE(at: Format.Index.intervalOffset, as: UInt32.self))
            if interval >= 64 { return interval }
        }
        return nil
    }
}

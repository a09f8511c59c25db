#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import Dispatch
import ExarModel
import Synchronization

/// Disk allocation of mapped files ahead of their writer.
///
/// Files are created at their full size as holes; the bytes a writer is about to write are
/// allocated first (`posix_fallocate`), so a full disk is an error the writer reports, never a
/// `SIGBUS` on a page of the mapping. A file grows in steps (``AllocationFront``), so a
/// collection costs on disk about what it holds, not its segment size.
extension MappedFile {
    static let pageSize = 4096

    /// Maps the pages under `range` writable now (`MADV_POPULATE_WRITE`, Linux 5.14), so the
    /// writer's first stores there take no page fault. Their content is unchanged; on an older
    /// kernel this does nothing and the writer faults them in itself.
    func prefault(_ range: Range<Int>) {
        let start = range.lowerBound & ~(Self.pageSize - 1)
        let end = min(size, range.upperBound)
        guard start < end else { return }
        _ = madvise(base + start, end - start, Self.populateWrite)
    }

    /// `MADV_POPULATE_WRITE`, which Swift's Glibc module does not export.
    private static let populateWrite: Int32 = 23

    /// Runs `body` with a writable descriptor of the file: its own if it kept one, else one opened
    /// for the call (segments keep none: a collection costs one descriptor, its lock). `nil`
    /// when the file cannot be opened (`errno` says why).
    private func withWritableDescriptor<Result>(_ body: (Int32) -> Result) -> Result? {
        descriptor.withLock { (fd: inout Int32) -> Result? in
            let own = fd < 0
            let open = own ? Glibc.open(path, O_RDWR | O_CLOEXEC) : fd
            guard open >= 0 else { return nil }
            defer { if own { close(open) } }
            return body(open)
        }
    }

    /// Allocates the pages under `range` (a no-op for pages allocated already).
    func allocate(_ range: Range<Int>) throws(ExarError) {
        guard !range.isEmpty, !allocationUnsupported.load(ordering: .relaxed) else { return }
        let start = range.lowerBound & ~(Self.pageSize - 1)
        let end = min(size, (range.upperBound + Self.pageSize - 1) & ~(Self.pageSize - 1))
        guard start < end else { return }
        let result = withWritableDescriptor { open -> Int32 in
            var result: Int32
            repeat {
                result = posix_fallocate(open, off_t(start), off_t(end - start))
            } while result == EINTR
            return result
        } ?? errno
        switch result {
        case 0:
            return
        case EOPNOTSUPP, EINVAL:
            // A file system without fallocate: pages are allocated when first written.
            allocationUnsupported.store(true, ordering: .relaxed)
        default:
            throw Syscall.error(result, "allocate \(end - start) bytes at \(start) of \(path)")
        }
    }
}

extension MappedFile {
    /// Gives back the disk (and the page cache) under the file's bytes from `offset` to its end,
    /// which must hold no data: a sealed segment's room allocated and prefaulted ahead of its
    /// writer. Runs on the allocation queue, after the allocations asked for before it; the file
    /// keeps its size, and the bytes read as zeros, as they did.
    ///
    /// `waiting`: returns once it is done. A collection's close must wait: the collection may be
    /// reopened and written at once, and a hole punched later would erase those events.
    func releaseTail(from offset: Int, waiting: Bool) {
        let start = (offset + Self.pageSize - 1) & ~(Self.pageSize - 1)
        guard start < size, let punch = Self.punchHole else { return }
        let work: @Sendable () -> Void = { [self] in
            // No descriptor when the file was deleted meanwhile (retention): nothing to give back.
            _ = withWritableDescriptor { punch($0, Self.punchHoleMode, off_t(start), off_t(size - start)) }
        }
        if waiting { BackgroundAllocation.queue.sync(execute: work) } else { BackgroundAllocation.queue.async(execute: work) }
    }

    /// `fallocate(2)`, which Swift's Glibc module does not export, looked up once.
    private static let punchHole: (@convention(c) (Int32, Int32, off_t, off_t) -> Int32)? = {
        guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "fallocate") else { return nil }
        return unsafeBitCast(symbol, to: (@convention(c) (Int32, Int32, off_t, off_t) -> Int32).self)
    }()

    /// `FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE`.
    private static let punchHoleMode: Int32 = 0x02 | 0x01
}

/// The end of the bytes allocated from some start of a file, moved ahead of a writer that
/// writes forward, in steps of an eighth of what it covers (between a minimum and 1 MiB), so a
/// small collection takes little disk and a busy one calls `fallocate` about once a megabyte.
///
/// `fallocate` can wait for the disk (ext4 reads a block group's bitmap the first time it
/// allocates there: 15 ms seen on this VM, on the thread that was publishing). So once a region
/// is past `backgroundFrom` bytes, each step also asks ``BackgroundAllocation`` to allocate the
/// next few steps ahead; the writer then finds them allocated and calls `fallocate` itself only
/// if it outruns that work (or for the first, small steps of a small collection).
final class AllocationFront: @unchecked Sendable {
    /// Bytes below it are allocated (by the writer or the background; only ever grows).
    private let allocated: Atomic<Int>
    /// The end the background was last asked to reach (writer only).
    private var requested: Int
    /// Where the region starts: steps are an eighth of what lies between it and the end.
    private let origin: Int
    private let minimumStep: Int
    private let backgroundFrom: Int
    static let maximumStep = 1 << 20
    /// How many steps the background keeps allocated ahead of the writer.
    static let stepsAhead = 2

    /// A region from `origin`, nothing of it known to be allocated; `minimumStep`: 16 KiB for a
    /// log file, a page for the small side files.
    init(origin: Int, minimumStep: Int, backgroundFrom: Int) {
        allocated = Atomic(origin)
        requested = origin
        self.origin = origin
        self.minimumStep = minimumStep
        self.backgroundFrom = backgroundFrom
    }

    var end: Int { allocated.load(ordering: .acquiring) }

    /// Makes sure the bytes below `needed` are allocated in `file` (writer only).
    @inline(__always)
    func ensure(_ needed: Int, in file: MappedFile) throws(ExarError) {
        let end = allocated.load(ordering: .acquiring)
        if needed <= end && needed + step(at: end) <= requested { return }
        try grow(to: needed, from: end, in: file)
    }

    private func step(at end: Int) -> Int {
        min(max((end - origin) / 8, minimumStep), Self.maximumStep)
    }

    private func grow(to needed: Int, from end: Int, in file: MappedFile) throws(ExarError) {
        let step = step(at: end)
        if needed > end {
            let target = min(file.size, max(needed, end + step))
            try file.allocate(end..<target)
            raise(to: max(needed, (target + MappedFile.pageSize - 1) & ~(MappedFile.pageSize - 1)))
        }
        guard needed - origin >= backgroundFrom else { return }
        let ahead = min(file.size, max(needed, self.end) + Self.stepsAhead * step)
        guard ahead > requested else { return }
        let from = max(requested, self.end)
        requested = ahead
        BackgroundAllocation.queue.async { [self] in
            // A failure (a full disk) is left to the writer, which meets it before it writes.
            guard (try? file.allocate(from..<ahead)) != nil else { return }
            file.prefault(from..<ahead)
            raise(to: ahead)
        }
    }

    private func raise(to value: Int) {
        var current = allocated.load(ordering: .relaxed)
        while current < value {
            let (exchanged, original) = allocated.compareExchange(
                expected: current, desired: value, successOrdering: .releasing, failureOrdering: .relaxed)
            if exchanged { return }
            current = original
        }
    }
}

/// The one queue (one thread at a time, for every collection) that allocates ahead of writers.
enum BackgroundAllocation {
    static let queue = DispatchQueue(label: "exar-allocate", qos: .utility)
}

/// Which pages of a region written anywhere (the segment tag bitmap) are allocated: a page is
/// allocated when a bit is first set in it. Writer only.
struct AllocatedPages {
    private var words: [UInt64]
    private let start: Int

    /// Pages of `file` from `start` for `count` bytes, none known to be allocated yet.
    init(start: Int, count: Int) {
        self.start = start
        words = Array(repeating: 0, count: (count / MappedFile.pageSize + 64) / 64)
    }

    /// Allocates the page holding `offset` (from the region's start) unless done before;
    /// `false` when the disk refused it.
    @inline(__always)
    mutating func ensure(_ offset: Int, in file: MappedFile) -> Bool {
        let page = offset / MappedFile.pageSize
        let bit = UInt64(1) << UInt64(page & 63)
        if words[page >> 6] & bit != 0 { return true }
        let at = start + page * MappedFile.pageSize
        guard (try? file.allocate(at..<(at + MappedFile.pageSize))) != nil else { return false }
        words[page >> 6] |= bit
        return true
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import ExarModel

/// Disk allocation of mapped files ahead of their writer.
///
/// Files are created at their full size as holes; the bytes a writer is about to write are
/// allocated first (`posix_fallocate`), so a full disk is an error the writer reports, never a
/// `SIGBUS` on a page of the mapping. A file grows in steps (``AllocationFront``), so a
/// collection costs on disk about what it holds, not its segment size.
extension MappedFile {
    static let pageSize = 4096

    /// Allocates the pages under `range` (a no-op for pages allocated already).
    func allocate(_ range: Range<Int>) throws(ExarError) {
        guard !range.isEmpty, !allocationUnsupported.load(ordering: .relaxed) else { return }
        let start = range.lowerBound & ~(Self.pageSize - 1)
        let end = min(size, (range.upperBound + Self.pageSize - 1) & ~(Self.pageSize - 1))
        guard start < end else { return }
        let result = descriptor.withLock { (fd: inout Int32) -> Int32 in
            guard fd >= 0 else { return EBADF }
            var result: Int32
            repeat {
                result = posix_fallocate(fd, off_t(start), off_t(end - start))
            } while result == EINTR
            return result
        }
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

/// The end of the bytes allocated from some start of a file, moved ahead of a writer that
/// writes forward: in steps of an eighth of what it covers, between a minimum and 1 MiB, so a
/// small collection takes little disk and a busy one calls `fallocate` about once a megabyte.
/// Writer only.
struct AllocationFront {
    /// Bytes below it are allocated.
    private(set) var end: Int
    /// Where the region starts: steps are an eighth of what lies between it and `end`.
    private let origin: Int
    private let minimumStep: Int
    static let maximumStep = 1 << 20

    /// A region from `origin`, nothing of it known to be allocated; `minimumStep`: 16 KiB for a
    /// log file, a page for the small side files.
    init(origin: Int, minimumStep: Int) {
        self.end = origin
        self.origin = origin
        self.minimumStep = minimumStep
    }

    /// Makes sure the bytes below `needed` are allocated in `file`.
    @inline(__always)
    mutating func ensure(_ needed: Int, in file: MappedFile) throws(ExarError) {
        if needed <= end { return }
        try grow(to: needed, in: file)
    }

    private mutating func grow(to needed: Int, in file: MappedFile) throws(ExarError) {
        let step = min(max((end - origin) / 8, minimumStep), Self.maximumStep)
        let target = min(file.size, max(needed, end + step))
        try file.allocate(end..<target)
        end = max(needed, (target + MappedFile.pageSize - 1) & ~(MappedFile.pageSize - 1))
    }
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

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import ExarModel
import Synchronization

/// A file of fixed size mapped read-write into memory; unmapped and closed exactly once, on deinit.
///
/// New files have their full size but only `allocate` bytes allocated on disk at first (the rest
/// is a hole that reads as zeros); whoever writes calls ``allocate(_:)`` (Allocation.swift)
/// before writing a page beyond that, so a full disk is an error there and never a `SIGBUS` when
/// a page of the mapping is first written.
final class MappedFile: @unchecked Sendable {
    let path: String
    let base: UnsafeMutableRawPointer
    let size: Int
    /// The open descriptor, or -1 once released (the mapping stays valid without it).
    let descriptor: Locked<Int32>
    /// Set when the file system cannot allocate ahead (no `fallocate`): pages are then allocated
    /// when first written, as on any mapping of such a file system.
    let allocationUnsupported = Atomic<Bool>(false)

    private init(path: String, descriptor: Int32, base: UnsafeMutableRawPointer, size: Int) {
        self.path = path
        self.descriptor = Locked(descriptor)
        self.base = base
        self.size = size
    }

    deinit {
        munmap(base, size)
        releaseDescriptor()
    }

    /// Closes the file descriptor; the mapping stays usable, ``sync(prefix:)`` falls back to
    /// `msync` and ``allocate(_:)`` opens the file for the call. Every segment releases its four
    /// once they are mapped, so a collection holds one descriptor (its lock) however many it has.
    func releaseDescriptor() {
        descriptor.withLock { fd in
            if fd >= 0 {
                close(fd)
                fd = -1
            }
        }
    }

    /// Creates (or replaces) `path` as a zero-filled file of `size` bytes, of which the first
    /// `allocate` (rounded up to pages) are allocated on disk, and maps it.
    static func create(path: String, size: Int, allocate: Int) throws(ExarError) -> MappedFile {
        let fd = try Syscall.retrying("open \(path)") { Glibc.open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644) }
        var file: MappedFile?
        do throws(ExarError) {
            _ = try Syscall.retrying("ftruncate \(path)") { ftruncate(fd, off_t(size)) }
            let mapped = try map(fd: fd, path: path, size: size)
            file = mapped
            mapped.adviseGrowing(from: 0)
            try mapped.allocate(0..<min(allocate, size))
            return mapped
        } catch {
            if file == nil { close(fd) }
            file = nil
            unlink(path)
            throw error
        }
    }

    /// Maps the existing file at `path` with its current size; read-only unless `writable`.
    static func open(path: String, writable: Bool = true) throws(ExarError) -> MappedFile {
        let flags = (writable ? O_RDWR : O_RDONLY) | O_CLOEXEC
        let fd = try Syscall.retrying("open \(path)") { Glibc.open(path, flags) }
        var info = stat()
        if fstat(fd, &info) != 0 {
            let code = errno
            close(fd)
            throw Syscall.error(code, "stat \(path)")
        }
        let size = Int(info.st_size)
        if size <= 0 {
            close(fd)
            throw .io(.unexpectedEof, "empty file: \(path)")
        }
        do throws(ExarError) {
            return try map(fd: fd, path: path, size: size, protection: writable ? PROT_READ | PROT_WRITE : PROT_READ)
        } catch {
            close(fd)
            throw error
        }
    }

    private static func map(fd: Int32, path: String, size: Int, protection: Int32 = PROT_READ | PROT_WRITE)
        throws(ExarError) -> MappedFile
    {
        let address = mmap(nil, size, protection, MAP_SHARED, fd, 0)
        guard let address, address != MAP_FAILED else {
            throw Syscall.error(errno, "mmap \(path)")
        }
        return MappedFile(path: path, descriptor: fd, base: address, size: size)
    }

    /// Tells the kernel that the pages from `offset` on are written as the file grows, not read:
    /// no read-ahead when they are first touched. Without it a first store into a fresh page of a
    /// file with holes read ahead around it, and ext4's large folios zero-filled megabytes per
    /// fault (perf: 83% of the time opening 1,500 collections was that memset, 37 ms each).
    func adviseGrowing(from offset: Int) {
        let start = min(size, offset & ~(Self.pageSize - 1))
        guard start < size else { return }
        _ = madvise(base + start, size - start, MADV_RANDOM)
    }

    /// Back to the kernel's default read-ahead for the whole file (a sealed segment is read, not grown).
    func adviseReading() {
        _ = madvise(base, size, MADV_NORMAL)
    }

    /// Writes the file's dirty pages (written through the mapping) and data to the device:
    /// `fdatasync` with a descriptor, else `msync` of the first `prefix` bytes (all by default),
    /// which is the same `fsync` of that range in the kernel.
    func sync(prefix: Int? = nil) throws(ExarError) {
        try descriptor.withLock { (fd: inout Int32) throws(ExarError) in
            if fd >= 0 {
                let open = fd
                _ = try Syscall.retrying("fdatasync \(path)") { fdatasync(open) }
            } else {
                let length = min(size, ((prefix ?? size) + 4095) & ~4095)
                _ = try Syscall.retrying("msync \(path)") { msync(base, length, MS_SYNC) }
            }
        }
    }

    /// The whole mapping as a read-only buffer.
    var bytes: UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(start: base, count: size)
    }
}

/// An exclusive `flock` on a collection's `.lock` file: one process at a time may write a
/// collection (a second server on the same folder, or `exar-inspect repair` while a server runs,
/// get a clear error instead of interleaving writes). Released by ``release()`` or when the
/// process ends, however it ends.
package final class CollectionLock: @unchecked Sendable {
    private let descriptor: Locked<Int32>

    /// Takes the lock of the collection folder `directory` (which must exist), waiting at most
    /// `patience` seconds for another holder to let go.
    ///
    /// The wait is for this process's own children: a child being spawned holds copies of the
    /// parent's descriptors (and so of the lock) until its `exec` closes them, so a collection
    /// closed and reopened while another thread spawns a process may find its own lock held a
    /// moment longer.
    package init(directory: String, patience: Double = 2) throws(ExarError) {
        let path = directory + "/.lock"
        let fd = try Syscall.retrying("open \(path)") { Glibc.open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644) }
        var waited = 0.0
        while flock(fd, LOCK_EX | LOCK_NB) != 0 {
            let code = errno
            if code == EINTR { continue }
            if code == EWOULDBLOCK && waited < patience {
                usleep(10_000)
                waited += 0.01
                continue
            }
            close(fd)
            if code == EWOULDBLOCK {
                throw .io(.wouldBlock, "collection folder \(directory) is in use by another process (exar-db or exar-inspect repair)")
            }
            throw Syscall.error(code, "lock \(path)")
        }
        descriptor = Locked(fd)
    }

    deinit { release() }

    /// Lets the lock go (idempotent).
    package func release() {
        descriptor.withLock { fd in
            if fd >= 0 {
                close(fd)
                fd = -1
            }
        }
    }
}

/// Small file-system helpers used by the engine.
enum FileSystem {
    static func exists(_ path: String) -> Bool {
        access(path, F_OK) == 0
    }

    /// Creates `path` and its missing parents (`mkdir -p`).
    static func createDirectories(_ path: String) throws(ExarError) {
        var partial = path.hasPrefix("/") ? "" : "."
        for component in path.split(separator: "/", omittingEmptySubsequences: true) {
            partial += "/" + component
            if mkdir(partial, 0o755) != 0 {
                let code = errno
                if code != EEXIST {
                    throw Syscall.error(code, "mkdir \(partial)")
                }
            }
        }
    }

    /// The names of the entries of a directory.
    static func contents(of path: String) throws(ExarError) -> [String] {
        guard let directory = opendir(path) else {
            throw Syscall.error(errno, "opendir \(path)")
        }
        defer { closedir(directory) }
        var names: [String] = []
        // A dirent is only as long as its name: read the name where it is, never copy the whole
        // 256-byte field (that reads past the entry's end).
        let nameOffset = MemoryLayout<dirent>.offset(of: \dirent.d_name)!
        while let entry = readdir(directory) {
            let name = String(cString: UnsafeRawPointer(entry).advanced(by: nameOffset).assumingMemoryBound(to: CChar.self))
            if name != "." && name != ".." { names.append(name) }
        }
        return names
    }

    static func remove(_ path: String) {
        unlink(path)
    }

    /// Renames `path` to `newPath` (atomic within one file system).
    static func rename(_ path: String, to newPath: String) throws(ExarError) {
        _ = try Syscall.retrying("rename \(path)") { Glibc.rename(path, newPath) }
    }

    /// The size of the file at `path`, or `nil` when it cannot be read.
    static func size(of path: String) -> Int? {
        var info = stat()
        guard stat(path, &info) == 0 else { return nil }
        return Int(info.st_size)
    }

    /// The bytes the file at `path` takes on disk (its allocated blocks), `0` when it cannot be read.
    static func allocatedSize(of path: String) -> UInt64 {
        var info = stat()
        guard stat(path, &info) == 0 else { return 0 }
        return UInt64(info.st_blocks) * 512
    }

    /// Bytes allocated to a file or folder and everything under it (symbolic links not followed).
    static func allocatedSize(ofTree path: String) -> UInt64 {
        var info = stat()
        guard lstat(path, &info) == 0 else { return 0 }
        var total = UInt64(info.st_blocks) * 512
        if (info.st_mode & S_IFMT) == S_IFDIR {
            for name in (try? contents(of: path)) ?? [] {
                total += allocatedSize(ofTree: path + "/" + name)
            }
        }
        return total
    }

    /// Bytes free for unprivileged users on the file system holding `path` (`0` when unknown).
    static func freeBytes(at path: String) -> UInt64 {
        var info = statvfs()
        guard statvfs(path, &info) == 0 else { return 0 }
        return UInt64(info.f_bavail) * UInt64(info.f_frsize)
    }

    /// Flushes a directory's entries (new file names) to the device.
    static func syncDirectory(_ path: String) {
        let fd = Glibc.open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if fd >= 0 {
            fsync(fd)
            close(fd)
        }
    }
}

import ExarModel
#if canImport(Glibc)
import Glibc
#endif

/// A group's durable state: two files, `groups/<name>.0` and `.1`, written in turn, each holding
/// one whole snapshot with a sequence number and a CRC. Opening reads both and keeps the valid one
/// with the larger sequence, so a write cut short (a crash, a full disk) leaves the previous
/// snapshot intact. Byte table in docs/FORMAT.md.
struct GroupFile {
    static let magic: UInt32 = 0x5247_5845  // "EXGR" little endian
    static let version: UInt16 = 1
    static let fixedSize = 64

    let directory: String
    let name: String
    private(set) var sequence: UInt64 = 0

    init(directory: String, name: String) {
        self.directory = directory
        self.name = name
    }

    func path(_ slot: UInt64) -> String { directory + "/" + name + "." + String(slot & 1) }

    /// The names of the groups saved in `directory`.
    static func groupNames(in directory: String) -> [String] {
        let files = (try? FileSystem.contents(of: directory)) ?? []
        var names = Set<String>()
        for file in files where file.hasSuffix(".0") || file.hasSuffix(".1") {
            names.insert(String(file.dropLast(2)))
        }
        return names.sorted()
    }

    /// The newest valid snapshot, `nil` when there is none.
    mutating func load() -> GroupState? {
        var best: (UInt64, GroupState)?
        for slot: UInt64 in [0, 1] {
            guard let bytes = Self.read(path(slot)), let (sequence, state) = Self.decode(bytes, name: name) else { continue }
            if best == nil || sequence > best!.0 { best = (sequence, state) }
        }
        guard let best else { return nil }
        sequence = best.0
        return best.1
    }

    /// Writes `state` over the older of the two files; with `sync`, `fdatasync`s it.
    mutating func save(_ state: GroupState, sync: Bool) throws(ExarError) {
        let next = sequence + 1
        let bytes = Self.encode(state, name: name, sequence: next)
        let path = self.path(next)
        let created = !FileSystem.exists(path)
        if created { try FileSystem.createDirectories(directory) }
        let fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw Syscall.error(errno, "open \(path)") }
        defer { close(fd) }
        var written = 0
        while written < bytes.count {
            let n = bytes.withUnsafeBytes { pwrite(fd, $0.baseAddress! + written, $0.count - written, off_t(written)) }
            if n < 0 {
                if errno == EINTR { continue }
                throw Syscall.error(errno, "write \(path)")
            }
            written += n
        }
        if ftruncate(fd, off_t(bytes.count)) != 0 { throw Syscall.error(errno, "truncate \(path)") }
        if sync {
            if fdatasync(fd) != 0 { throw Syscall.error(errno, "fdatasync \(path)") }
            if created { FileSystem.syncDirectory(directory) }
        }
        sequence = next
    }

    /// Removes both files.
    func remove() {
        FileSystem.remove(path(0))
        FileSystem.remove(path(1))
    }

    // MARK: Encoding

    static func encode(_ state: GroupState, name: String, sequence: UInt64) -> [UInt8] {
        let nameBytes = Array(name.utf8)
        let tag = state.tag ?? []
        var bytes: [UInt8] = []
        bytes.reserveCapacity(fixedSize + nameBytes.count + tag.count + 12 * (state.pending.count + state.parked.count) + 4)
        bytes.appendLE(magic)
        bytes.appendLE(version)
        bytes.appendLE(UInt16(state.tag == nil ? 0 : 1))  // flags: bit 0, the group reads one tag
        bytes.appendLE(UInt32(0))  // total length, set below
        bytes.appendLE(sequence)
        bytes.appendLE(state.readNext)
        bytes.appendLE(state.lost)
        bytes.appendLE(state.redelivered)
        bytes.appendLE(state.parkedTotal)
        bytes.appendLE(UInt32(state.pending.count))
        bytes.appendLE(UInt32(state.parked.count))
        bytes.appendLE(UInt16(nameBytes.count))
        bytes.appendLE(UInt16(tag.count))
        bytes += nameBytes
        bytes += tag
        state.pending.forEach { id, entry in
            bytes.appendLE(id)
            bytes.appendLE(entry.deliveries)
        }
        for (id, deliveries) in state.parked.sorted(by: { $0.key < $1.key }) {
            bytes.appendLE(id)
            bytes.appendLE(deliveries)
        }
        let total = UInt32(bytes.count + 4)
        withUnsafeBytes(of: total.littleEndian) { bytes.replaceSubrange(8..<12, with: $0) }
        let crc = bytes.withUnsafeBytes { CRC32C.update(0, $0) }
        bytes.appendLE(crc)
        return bytes
    }

    /// The sequence and state of a snapshot, `nil` if it is not a whole, valid one of group `name`.
    static func decode(_ bytes: [UInt8], name: String) -> (UInt64, GroupState)? {
        guard bytes.count >= fixedSize else { return nil }
        return bytes.withUnsafeBytes { raw -> (UInt64, GroupState)? in
            let base = raw.baseAddress!
            guard base.loadLE(at: 0, as: UInt32.self) == magic, base.loadLE(at: 4, as: UInt16.self) == version else { return nil }
            let total = Int(base.loadLE(at: 8, as: UInt32.self))
            guard total == bytes.count,
                  CRC32C.update(0, UnsafeRawBufferPointer(rebasing: raw[0..<total - 4])) == base.loadLE(at: total - 4, as: UInt32.self)
            else { return nil }
            let flags = base.loadLE(at: 6, as: UInt16.self)
            let sequence = base.loadLE(at: 12, as: UInt64.self)
            let pendingCount = Int(base.loadLE(at: 52, as: UInt32.self))
            let parkedCount = Int(base.loadLE(at: 56, as: UInt32.self))
            let nameLength = Int(base.loadLE(at: 60, as: UInt16.self))
            let tagLength = Int(base.loadLE(at: 62, as: UInt16.self))
            let entries = fixedSize + nameLength + tagLength
            guard entries + 12 * (pendingCount + parkedCount) + 4 == total,
                  Array(raw[fixedSize..<fixedSize + nameLength]) == Array(name.utf8) else { return nil }
            let tag = flags & 1 == 1 ? Array(raw[fixedSize + nameLength..<entries]) : nil
            var state = GroupState(tag: tag, readNext: base.loadLE(at: 20, as: UInt64.self))
            state.lost = base.loadLE(at: 28, as: UInt64.self)
            state.redelivered = base.loadLE(at: 36, as: UInt64.self)
            state.parkedTotal = base.loadLE(at: 44, as: UInt64.self)
            var offset = entries
            for _ in 0..<pendingCount {
                state.pending[base.loadLE(at: offset, as: UInt64.self)] =
                    GroupState.Pending(deliveries: base.loadLE(at: offset + 8, as: UInt32.self))
                offset += 12
            }
            for _ in 0..<parkedCount {
                state.parked[base.loadLE(at: offset, as: UInt64.self)] = base.loadLE(at: offset + 8, as: UInt32.self)
                offset += 12
            }
            state.releaseAllForRestart()
            return (sequence, state)
        }
    }

    private static func read(_ path: String) -> [UInt8]? {
        guard let size = FileSystem.size(of: path), size >= fixedSize, size < 1 << 30 else { return nil }
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var bytes = [UInt8](repeating: 0, count: size)
        var done = 0
        while done < size {
            let n = bytes.withUnsafeMutableBytes { pread(fd, $0.baseAddress! + done, size - done, off_t(done)) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { return nil }
            done += n
        }
        return bytes
    }
}

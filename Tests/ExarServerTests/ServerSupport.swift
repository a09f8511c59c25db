import ExarCore
import ExarServer
import Foundation
import Logging
import Synchronization
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// A real server on a loopback port chosen by the kernel, over a database in a temp folder.
final class TestServer: @unchecked Sendable {
    let folder: String
    let database: Database
    let server: ExarServer
    let port: Int

    init(folder: String? = nil, username: String? = nil, password: String? = nil, maxLineBytes: Int = 1 << 20,
         segmentSize: Int = 1 << 20, maxConnections: Int = 10_000, maxLoginFailures: Int = 5,
         groups: GroupSettings = GroupSettings(ackWaitMilliseconds: 3_600_000), sync: SyncPolicy = .none) async throws {
        let folder = folder ?? NSTemporaryDirectory() + "exar-server-tests-" + UUID().uuidString
        self.folder = folder
        var defaults = CollectionConfiguration(segmentSize: segmentSize)
        // An hour to acknowledge unless a test says otherwise: a sanitizer's slow run must not
        // make a group redeliver what a test counts on seeing once.
        defaults.groups = groups
        defaults.sync = sync
        database = try Database(configuration: DatabaseConfiguration(logsPath: folder, defaults: defaults))
        server = ExarServer(
            configuration: ServerConfiguration(port: 0, username: username, password: password,
                                               maxLineBytes: maxLineBytes, threads: 2,
                                               maxConnections: maxConnections, maxLoginFailures: maxLoginFailures),
            database: database, logger: Logger(label: "test"))
        port = try await server.start().port!
    }

    func stop() async throws {
        try await server.shutdown()
    }

    func removeFiles() {
        try? FileManager.default.removeItem(atPath: folder)
    }
}

/// A plain blocking TCP client speaking lines, to test the server byte for byte. Used by one
/// thread at a time (it may move to a Dispatch thread for a blocking read).
final class LineClient: @unchecked Sendable {
    private let fd: Int32
    private var pending = [UInt8]()
    private var pendingStart = 0

    /// - Parameter receiveBuffer: `SO_RCVBUF` set before connecting (set later, the kernel keeps
    ///   the window it already offered and the connection crawls).
    init(port: Int, receiveBuffer: Int32? = nil) throws {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        if var size = receiveBuffer {
            setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, socklen_t(MemoryLayout<Int32>.size))
        }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard result == 0 else { throw POSIXError(.ECONNREFUSED) }
        var timeout = timeval(tv_sec: 10, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    }

    deinit {
        close(fd)
    }

    /// The socket, for tests that need a call of their own on it.
    var descriptor: Int32 { fd }

    func send(_ text: String) {
        send(Array(text.utf8))
    }

    func send(_ bytes: [UInt8]) {
        var offset = 0
        while offset < bytes.count {
            let sent = bytes[offset...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if sent <= 0 { return }
            offset += sent
        }
    }

    /// The next line (without `\n`), or `nil` when the server closed or nothing came within the timeout.
    func readLine() -> String? {
        while true {
            if let line = takeLine() { return line }
            var chunk = [UInt8](repeating: 0, count: 65536)
            let count = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if count <= 0 { return nil }
            pending.append(contentsOf: chunk[..<count])
        }
    }

    /// A whole line of what was read, if there is one. Lines are taken from `pendingStart` on and
    /// the array compacted now and then: taking each line off the front would move the rest of a
    /// large read once per line (a live stream of a thousand lines a read was slowed to a crawl).
    private func takeLine() -> String? {
        let newline = pending.withUnsafeBufferPointer { bytes -> Int? in
            guard pendingStart < bytes.count,
                  let found = memchr(bytes.baseAddress! + pendingStart, Int32(UInt8(ascii: "\n")), bytes.count - pendingStart) else { return nil }
            return UnsafeRawPointer(found) - UnsafeRawPointer(bytes.baseAddress!)
        }
        guard let newline else {
            if pendingStart > 0 {
                pending.removeSubrange(..<pendingStart)
                pendingStart = 0
            }
            return nil
        }
        let line = String(decoding: pending[pendingStart..<newline], as: UTF8.self)
        pendingStart = newline + 1
        return line
    }

    func readLines(_ count: Int) -> [String] {
        var lines: [String] = []
        while lines.count < count, let line = readLine() { lines.append(line) }
        return lines
    }

    /// Whether the server closed the connection (reads end) within the timeout.
    func isClosedByServer() -> Bool {
        while readLine() != nil {}
        var byte: UInt8 = 0
        return recv(fd, &byte, 1, Int32(MSG_DONTWAIT)) == 0
    }

    /// Shuts the sending side down (`shutdown(SHUT_WR)`, as `nc -N` does); reading goes on.
    func shutdownWrite() {
        shutdown(fd, Int32(SHUT_WR))
    }

    /// Every line until the server closes the connection (or the timeout passes: then `nil`),
    /// and a last piece without a newline, if any.
    func readUntilClosed() -> (lines: [String], rest: String)? {
        var lines: [String] = []
        while true {
            if let line = takeLine() {
                lines.append(line)
                continue
            }
            var chunk = [UInt8](repeating: 0, count: 65536)
            let count = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if count == 0 { return (lines, String(decoding: pending, as: UTF8.self)) }
            if count < 0 { return nil }
            pending.append(contentsOf: chunk[..<count])
        }
    }

    func setReceiveTimeout(milliseconds: Int) {
        var timeout = timeval(tv_sec: milliseconds / 1000, tv_usec: (milliseconds % 1000) * 1000)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    }
}

/// A flag one thread sets and others watch.
final class StopFlag: Sendable {
    private let value = Atomic<Bool>(false)
    var isSet: Bool { value.load(ordering: .acquiring) }
    func set() { value.store(true, ordering: .releasing) }
}

/// Whether this process may mount a tmpfs (root with CAP_SYS_ADMIN, as in CI's containers).
let canMountTmpfs: Bool = {
    guard getuid() == 0 else { return false }
    let probe = NSTemporaryDirectory() + "exar-mount-probe-" + UUID().uuidString
    guard mkdir(probe, 0o755) == 0 else { return false }
    defer { rmdir(probe) }
    guard mount("tmpfs", probe, "tmpfs", 0, "size=64k") == 0 else { return false }
    umount(probe)
    return true
}()

/// Mounts a tmpfs of `size` (as `mount -o size=`) at `path`, creating the folder; records an
/// issue and returns `false` when the mount fails. Unmount it with `umount2(path, MNT_DETACH)`.
func mountTmpfs(at path: String, size: String) throws -> Bool {
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    guard mount("tmpfs", path, "tmpfs", 0, "size=\(size)") == 0 else {
        Issue.record("mount failed: errno \(errno)")
        return false
    }
    return true
}

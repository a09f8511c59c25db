import ExarModel
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// A file operation of the logging that failed: the operation, the path and `errno`.
struct LogFileError: Error, CustomStringConvertible {
    let operation: String
    let path: String
    let reason: String

    init(operation: String, path: String, code: Int32) {
        self.init(operation: operation, path: path, reason: String(cString: strerror(code)))
    }

    init(operation: String, path: String, reason: String) {
        self.operation = operation
        self.path = path
        self.reason = reason
    }

    var description: String { "cannot \(operation) \(path): \(reason)" }
}

/// Where pattern handlers write: standard output or error, or a log file (rolled by a
/// ``RollingPolicy`` when it has one). One lock serialises the writes and the rolling, so lines
/// from the many threads that log never interleave and a roll never loses one.
final class LogOutput: Sendable {
    private struct Sink {
        var descriptor: Int32
        /// Bytes in the current file (0 for a terminal or pipe, where it does not matter).
        var size: UInt64
        /// The last roll failed (said once on standard error; every line past the limit tries again).
        var rollFailed = false
    }

    let isTerminal: Bool
    /// The log file, `nil` for standard output and error.
    let path: String?
    let policy: RollingPolicy?
    private let sink: Locked<Sink>

    private init(descriptor: Int32, size: UInt64, path: String?, policy: RollingPolicy?) {
        isTerminal = isatty(descriptor) == 1
        self.path = path
        self.policy = policy
        sink = Locked(Sink(descriptor: descriptor, size: size))
    }

    deinit {
        guard path != nil else { return }
        sink.withLock { sink in
            if sink.descriptor >= 0 { close(sink.descriptor) }
        }
    }

    static let standardOutput = LogOutput(descriptor: STDOUT_FILENO, size: 0, path: nil, policy: nil)
    static let standardError = LogOutput(descriptor: STDERR_FILENO, size: 0, path: nil, policy: nil)

    /// Opens (creating it and its folders) the log file `path`: appended to, or emptied when `append` is false.
    static func file(path: String, append: Bool, policy: RollingPolicy? = nil) throws(LogFileError) -> LogOutput {
        try RollingPolicy.makeFolders((path as NSString).deletingLastPathComponent, for: path)
        let descriptor = try open(path, truncating: !append)
        var status = stat()
        let size = fstat(descriptor, &status) == 0 ? UInt64(status.st_size) : 0
        return LogOutput(descriptor: descriptor, size: size, path: path, policy: policy)
    }

    private static func open(_ path: String, truncating: Bool) throws(LogFileError) -> Int32 {
        let flags = O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | (truncating ? O_TRUNC : 0)
        let descriptor = Glibc.open(path, flags, 0o644)
        guard descriptor >= 0 else { throw LogFileError(operation: "open", path: path, code: errno) }
        return descriptor
    }

    /// Writes `text` whole; then, past the policy's limit, rolls the file and starts a fresh one.
    func write(_ text: String) {
        var text = text
        sink.withLock { sink in
            if sink.descriptor < 0, let path {
                // The file could not be reopened after the last roll: try again.
                guard let descriptor = try? Self.open(path, truncating: false) else { return }
                sink.descriptor = descriptor
            }
            let written = text.withUTF8 { Self.writeAll(sink.descriptor, $0) }
            sink.size += UInt64(written)
            if let policy, let path, sink.size > policy.limit {
                roll(&sink, path: path, policy: policy)
            }
        }
    }

    private func roll(_ sink: inout Sink, path: String, policy: RollingPolicy) {
        close(sink.descriptor)
        sink.descriptor = -1
        do {
            try policy.roll(path)
            sink.rollFailed = false
            sink.size = 0
            sink.descriptor = (try? Self.open(path, truncating: true)) ?? -1
        } catch {
            // Nowhere else to say it: the log is what failed. Keep what the file holds and go on appending.
            if !sink.rollFailed {
                Self.standardError.write("exar-db: log file \(path) could not be rolled (logging goes on in it): \(error)\n")
            }
            sink.rollFailed = true
            sink.descriptor = (try? Self.open(path, truncating: false)) ?? -1
        }
    }

    /// Writes all of `bytes`, retrying on `EINTR` and short writes; returns the bytes written.
    private static func writeAll(_ descriptor: Int32, _ bytes: UnsafeBufferPointer<UInt8>) -> Int {
        var offset = 0
        while offset < bytes.count {
            let count = Glibc.write(descriptor, bytes.baseAddress! + offset, bytes.count - offset)
            if count < 0 && errno == EINTR { continue }
            guard count > 0 else { break }
            offset += count
        }
        return offset
    }
}

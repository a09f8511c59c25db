import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// log4rs's `compound` policy of a `rolling_file` appender: a `size` trigger and a roller.
struct RollingPolicy: Sendable, Equatable {
    enum Roller: Sendable, Equatable {
        /// The file is deleted.
        case delete
        /// The file becomes archive `base`, after archive `i` became `i + 1` for every `i` below
        /// `base + count - 1` (the oldest, `base + count - 1`, is replaced). `count = 0` deletes.
        case fixedWindow(pattern: String, base: Int, count: Int, gzip: Bool)
    }

    /// The file rolls once it holds more than this many bytes.
    var limit: UInt64
    var roller: Roller

    /// A size as log4rs's `limit` reads it: a number of bytes, optionally followed (spaces allowed)
    /// by `b`, `kb`/`kib`, `mb`/`mib`, `gb`/`gib` or `tb`/`tib` in any case, all binary multiples.
    static func size(_ text: String) -> UInt64? {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        let digits = trimmed.prefix { $0.isASCII && $0.isNumber }
        guard let number = UInt64(digits) else { return nil }
        let unit = trimmed.dropFirst(digits.count).trimmingCharacters(in: .whitespaces).lowercased()
        let shift: UInt64
        switch unit {
        case "", "b": shift = 0
        case "kb", "kib": shift = 10
        case "mb", "mib": shift = 20
        case "gb", "gib": shift = 30
        case "tb", "tib": shift = 40
        default: return nil
        }
        let (result, overflow) = number.multipliedReportingOverflow(by: 1 << shift)
        return overflow ? nil : result
    }

    /// The archive name of index `index`: every `{}` of the pattern replaced by it.
    static func archive(_ pattern: String, _ index: Int) -> String {
        pattern.replacingOccurrences(of: "{}", with: String(index))
    }

    /// Moves the full log file `path` out of the way as the roller says (the caller then starts a fresh one).
    func roll(_ path: String) throws(LogFileError) {
        switch roller {
        case .delete:
            try Self.remove(path)
        case .fixedWindow(_, _, let count, _) where count == 0:
            try Self.remove(path)
        case .fixedWindow(let pattern, let base, let count, let gzip):
            for index in stride(from: base + count - 2, through: base, by: -1) {
                try Self.move(Self.archive(pattern, index), to: Self.archive(pattern, index + 1))
            }
            let newest = Self.archive(pattern, base)
            try Self.createFolder(of: newest)
            if gzip {
                try GzipStoredWriter.write(contentsOf: path, to: newest)
                try Self.remove(path)
            } else {
                try Self.move(path, to: newest)
            }
        }
    }

    private static func remove(_ path: String) throws(LogFileError) {
        guard unlink(path) == 0 || errno == ENOENT else { throw LogFileError(operation: "delete", path: path, code: errno) }
    }

    private static func createFolder(of path: String) throws(LogFileError) {
        try makeFolders((path as NSString).deletingLastPathComponent, for: path)
    }

    /// Creates `folder` and the folders above it that are missing (for the file `path`, named in the error).
    static func makeFolders(_ folder: String, for path: String) throws(LogFileError) {
        guard !folder.isEmpty else { return }
        var status = stat()
        if stat(folder, &status) == 0 {
            guard status.st_mode & S_IFMT == S_IFDIR else {
                throw LogFileError(operation: "create the folder of", path: path, reason: "\(folder) is not a folder")
            }
            return
        }
        try makeFolders((folder as NSString).deletingLastPathComponent, for: path)
        guard mkdir(folder, 0o755) == 0 || errno == EEXIST else {
            throw LogFileError(operation: "create the folder of", path: path, code: errno)
        }
    }

    /// Renames `source` to `destination` (replacing it); a missing source is not an error. Across
    /// file systems, copies then deletes.
    private static func move(_ source: String, to destination: String) throws(LogFileError) {
        guard access(source, F_OK) == 0 else { return }
        try createFolder(of: destination)
        if rename(source, destination) == 0 { return }
        guard errno == EXDEV else { throw LogFileError(operation: "rename", path: source, code: errno) }
        do {
            if FileManager.default.fileExists(atPath: destination) { try FileManager.default.removeItem(atPath: destination) }
            try FileManager.default.copyItem(atPath: source, toPath: destination)
        } catch {
            throw LogFileError(operation: "copy", path: source, reason: "\(error)")
        }
        try remove(source)
    }
}

import Foundation
import Logging
import TOMLKit

/// The log4rs configuration file of the original server, read into swift-log handlers: console
/// and file appenders, each with an encoder pattern, and the root level and appenders.
struct Log4rsConfig {
    struct Appender {
        enum Kind { case console, file(path: String) }
        var kind: Kind
        var pattern: LogPattern
    }

    var level: Logger.Level = .info
    var appenders: [Appender] = [Appender(kind: .console, pattern: LogPattern.default)]

    static let defaultPattern = "[{d(%+)(local)}] [{h({l})}] [{t}] {m}{n}"

    static func parse(_ text: String) throws -> Log4rsConfig {
        let table: TOMLTable
        do {
            table = try TOMLTable(string: text)
        } catch let error as TOMLParseError {
            throw ConfigError(key: "", message: "invalid log4rs TOML at \(error.source.begin): \(error.description)")
        }
        var root = TableReader(table: table, path: "")
        var definitions: [String: Appender] = [:]
        if var appenders = try root.table("appenders") {
            for name in appenders.keys {
                guard var appender = try appenders.table(name) else { continue }
                let kind = try appender.string("kind") ?? "console"
                var pattern = defaultPattern
                if var encoder = try appender.table("encoder") {
                    pattern = try encoder.string("pattern") ?? defaultPattern
                    try encoder.rejectUnknownKeys()
                }
                switch kind {
                case "console":
                    _ = try appender.string("target")
                    definitions[name] = Appender(kind: .console, pattern: LogPattern(pattern))
                case "file":
                    guard let path = try appender.string("path") else {
                        throw ConfigError(key: "appenders.\(name).path", message: "a file appender needs a path")
                    }
                    _ = try appender.string("append")
                    definitions[name] = Appender(kind: .file(path: expandTilde(path)), pattern: LogPattern(pattern))
                default:
                    throw ConfigError(key: "appenders.\(name).kind", message: "must be \"console\" or \"file\", got \"\(kind)\"")
                }
                try appender.rejectUnknownKeys()
            }
            try appenders.rejectUnknownKeys()
        }
        var config = Log4rsConfig()
        if var rootTable = try root.table("root") {
            if let level = try rootTable.string("level") {
                guard let parsed = Self.level(level) else {
                    throw ConfigError(key: "root.level", message: "must be one of off error warn info debug trace, got \"\(level)\"")
                }
                config.level = parsed
            }
            if let names = try rootTable.array("appenders") {
                config.appenders = try names.map { value in
                    guard let name = value.string, let appender = definitions[name] else {
                        throw ConfigError(key: "root.appenders", message: "unknown appender \(value)")
                    }
                    return appender
                }
            } else {
                config.appenders = Array(definitions.values)
            }
            try rootTable.rejectUnknownKeys()
        }
        // log4rs keys this server accepts but does not use.
        root.ignore("refresh_rate")
        root.ignore("loggers")
        try root.rejectUnknownKeys()
        return config
    }

    static func level(_ text: String) -> Logger.Level? {
        switch text.lowercased() {
        case "trace": .trace
        case "debug": .debug
        case "info": .info
        case "warn", "warning": .warning
        case "error": .error
        case "off": .critical
        default: nil
        }
    }

    /// Installs the handlers as swift-log's backend.
    func bootstrap() throws {
        var built: [PatternLogHandler] = []
        for appender in appenders {
            let output: LogOutput
            switch appender.kind {
            case .console: output = .console
            case .file(let path): output = try .file(path: path)
            }
            var handler = PatternLogHandler(label: "exar-db", output: output, pattern: appender.pattern)
            handler.logLevel = level
            built.append(handler)
        }
        let handlers = built
        let level = self.level
        LoggingSystem.bootstrap { label in
            var multiplex = MultiplexLogHandler(handlers.map { handler in
                var copy = handler
                copy.label = label
                return copy
            })
            multiplex.logLevel = level
            return multiplex
        }
    }
}

/// Where a pattern handler writes.
final class LogOutput: @unchecked Sendable {
    private let handle: FileHandle
    private let lock = NSLock()
    let isTerminal: Bool

    private init(handle: FileHandle, isTerminal: Bool) {
        self.handle = handle
        self.isTerminal = isTerminal
    }

    static let console = LogOutput(handle: .standardOutput, isTerminal: isatty(STDOUT_FILENO) == 1)

    static func file(path: String) throws -> LogOutput {
        if !FileManager.default.fileExists(atPath: path) {
            guard FileManager.default.createFile(atPath: path, contents: nil) else {
                throw ConfigError(key: "appenders.file.path", message: "cannot create log file \(path)")
            }
        }
        guard let handle = FileHandle(forWritingAtPath: path) else {
            throw ConfigError(key: "appenders.file.path", message: "cannot open log file \(path)")
        }
        handle.seekToEndOfFile()
        return LogOutput(handle: handle, isTerminal: false)
    }

    func write(_ text: String) {
        lock.withLock { handle.write(Data(text.utf8)) }
    }
}

/// A log4rs encoder pattern: `{d(...)}` date, `{h(...)}` highlight, `{l}` level, `{t}` target,
/// `{m}` message, `{n}` newline; other text is copied.
struct LogPattern {
    enum Piece {
        case text(String)
        case date
        case level(highlight: Bool)
        case target
        case message
        case newline
    }

    let pieces: [Piece]

    static let `default` = LogPattern(Log4rsConfig.defaultPattern)

    init(_ pattern: String) {
        var pieces: [Piece] = []
        var text = ""
        var index = pattern.startIndex
        while index < pattern.endIndex {
            let character = pattern[index]
            if character == "{", let close = Self.matchingBrace(pattern, from: index) {
                let body = String(pattern[pattern.index(after: index)..<close])
                if !text.isEmpty { pieces.append(.text(text)); text = "" }
                pieces.append(Self.piece(body))
                index = pattern.index(after: close)
                continue
            }
            text.append(character)
            index = pattern.index(after: index)
        }
        if !text.isEmpty { pieces.append(.text(text)) }
        self.pieces = pieces
    }

    private static func matchingBrace(_ text: String, from start: String.Index) -> String.Index? {
        var depth = 0
        var index = start
        while index < text.endIndex {
            if text[index] == "{" { depth += 1 }
            if text[index] == "}" {
                depth -= 1
                if depth == 0 { return index }
            }
            index = text.index(after: index)
        }
        return nil
    }

    private static func piece(_ body: String) -> Piece {
        if body.hasPrefix("h(") { return .level(highlight: true) }
        switch body.prefix(while: { $0 != "(" }) {
        case "d", "date": return .date
        case "l", "level": return .level(highlight: false)
        case "t", "target": return .target
        case "m", "message": return .message
        case "n": return .newline
        default: return .text("{\(body)}")
        }
    }

    func render(level: Logger.Level, target: String, message: String, colors: Bool) -> String {
        var out = ""
        for piece in pieces {
            switch piece {
            case .text(let text): out += text
            case .date: out += Self.timestamp()
            case .level(let highlight):
                let name = Self.name(level)
                out += highlight && colors ? Self.color(level) + name + "\u{1B}[0m" : name
            case .target: out += target
            case .message: out += message
            case .newline: out += "\n"
            }
        }
        return out
    }

    static func name(_ level: Logger.Level) -> String {
        switch level {
        case .trace: "TRACE"
        case .debug: "DEBUG"
        case .info: "INFO"
        case .notice: "INFO"
        case .warning: "WARN"
        case .error: "ERROR"
        case .critical: "ERROR"
        }
    }

    private static func color(_ level: Logger.Level) -> String {
        switch level {
        case .error, .critical: "\u{1B}[31m"
        case .warning: "\u{1B}[33m"
        case .info, .notice: "\u{1B}[32m"
        case .debug: "\u{1B}[36m"
        case .trace: "\u{1B}[37m"
        }
    }

    /// Local time in RFC 3339 with milliseconds, as chrono's `%+`.
    private static func timestamp() -> String {
        var now = timeval()
        gettimeofday(&now, nil)
        var seconds = time_t(now.tv_sec)
        var local = tm()
        localtime_r(&seconds, &local)
        let offset = local.tm_gmtoff
        let sign = offset < 0 ? "-" : "+"
        return String(format: "%04d-%02d-%02dT%02d:%02d:%02d.%03d%@%02d:%02d",
                      Int(local.tm_year) + 1900, Int(local.tm_mon) + 1, Int(local.tm_mday), Int(local.tm_hour),
                      Int(local.tm_min), Int(local.tm_sec), Int(now.tv_usec) / 1000, sign,
                      abs(offset) / 3600, (abs(offset) % 3600) / 60)
    }
}

/// A swift-log handler writing lines rendered by a ``LogPattern``.
struct PatternLogHandler: LogHandler {
    var label: String
    let output: LogOutput
    let pattern: LogPattern
    var logLevel: Logger.Level = .info
    var metadata: Logger.Metadata = [:]

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        var text = "\(event.message)"
        let merged = metadata.merging(event.metadata ?? [:]) { $1 }
        if !merged.isEmpty {
            text += " " + merged.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
        }
        output.write(pattern.render(level: event.level, target: label, message: text, colors: output.isTerminal))
    }
}

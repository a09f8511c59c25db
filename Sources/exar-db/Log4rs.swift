import Foundation
import Logging
import TOMLKit

/// The log4rs configuration file of the original server, read into swift-log handlers: console,
/// file and rolling-file appenders, each with a pattern encoder and threshold filters, and the
/// root level and appenders. What log4rs accepts and this server does not do is a warning (in
/// ``warnings``) and ignored; only what log4rs itself would refuse is an error.
struct Log4rsConfig {
    struct Appender {
        enum Kind: Equatable {
            case console(standardError: Bool, ttyOnly: Bool)
            case file(path: String, append: Bool)
            case rollingFile(path: String, append: Bool, policy: RollingPolicy?)
        }
        var name: String
        var kind: Kind
        var pattern: LogPattern
        /// The most verbose level a `threshold` filter lets through; `nil`: none passes.
        var threshold: Logger.Level? = .trace
    }

    /// The root level; `nil` is `off`.
    var level: Logger.Level? = .info
    var appenders: [Appender] = [Appender(name: "console", kind: .console(standardError: false, ttyOnly: false),
                                          pattern: LogPattern(defaultPattern))]
    /// What was ignored, each naming its key.
    var warnings: [String] = []

    /// The console pattern when there is no log4rs file (the original's example).
    static let defaultPattern = "[{d(%+)(local)}] [{h({l})}] [{t}] {m}{n}"

    static func parse(_ text: String) throws -> Log4rsConfig {
        let table: TOMLTable
        do {
            table = try TOMLTable(string: text)
        } catch let error as TOMLParseError {
            throw ConfigError(key: "", message: "invalid log4rs TOML at \(error.source.begin): \(error.description)")
        }
        var config = Log4rsConfig()
        var root = TableReader(table: table, path: "")
        var definitions: [String: Appender] = [:]
        var unsupported: Set<String> = []
        if var appenders = try root.table("appenders") {
            for name in appenders.keys.sorted() {
                guard var appender = try appenders.table(name) else { continue }
                if let parsed = try parseAppender(name, &appender, warnings: &config.warnings) {
                    definitions[name] = parsed
                } else {
                    unsupported.insert(name)
                }
            }
        }
        // Without `[root]` or its `appenders`, every appender defined is used.
        if !definitions.isEmpty || !unsupported.isEmpty {
            config.appenders = definitions.keys.sorted().compactMap { definitions[$0] }
        }
        if var rootTable = try root.table("root") {
            if let level = try rootTable.string("level") {
                guard let parsed = Self.level(level) else {
                    throw ConfigError(key: "root.level", message: "must be one of off error warn info debug trace, got \"\(level)\"")
                }
                config.level = parsed
            }
            if let names = try rootTable.array("appenders") {
                config.appenders = try names.compactMap { value in
                    guard let name = value.string, definitions[name] != nil || unsupported.contains(name) else {
                        throw ConfigError(key: "root.appenders", message: "unknown appender \(value)")
                    }
                    return definitions[name]
                }
            }
            warnUnknown(rootTable, &config.warnings)
        }
        if root.table["refresh_rate"] != nil {
            root.ignore("refresh_rate")
            config.warnings.append("refresh_rate: ignored (the file is read once, at start)")
        }
        if let loggers = root.table["loggers"]?.table {
            root.ignore("loggers")
            for name in loggers.keys.sorted() {
                config.warnings.append("loggers.\(name): per-logger settings are not supported: ignored (root applies to every logger)")
            }
        }
        warnUnknown(root, &config.warnings)
        return config
    }

    /// One `[appenders.NAME]`; `nil` for a kind this server does not have (warned).
    private static func parseAppender(_ name: String, _ appender: inout TableReader, warnings: inout [String]) throws
        -> Appender?
    {
        let kind = try appender.string("kind") ?? "console"
        guard ["console", "file", "rolling_file"].contains(kind) else {
            warnings.append("appenders.\(name).kind: \"\(kind)\" appenders are not supported: appender \(name) ignored")
            return nil
        }
        var pattern = LogPattern.log4rsDefault
        if var encoder = try appender.table("encoder") {
            let encoderKind = try encoder.string("kind") ?? "pattern"
            if encoderKind == "pattern" {
                pattern = try encoder.string("pattern") ?? LogPattern.log4rsDefault
            } else {
                warnings.append("\(encoder.keyPath("kind")): the \"\(encoderKind)\" encoder is not supported: using the pattern \(LogPattern.log4rsDefault)")
                encoder.ignore("pattern")
            }
            warnUnknown(encoder, &warnings)
        }
        let parsedPattern = LogPattern(pattern)
        for problem in parsedPattern.problems {
            warnings.append("\(appender.keyPath("encoder.pattern")): \(problem)")
        }
        var result = Appender(name: name, kind: .console(standardError: false, ttyOnly: false), pattern: parsedPattern)
        if let filters = try appender.array("filters") {
            result.threshold = try parseFilters(filters, key: appender.keyPath("filters"), warnings: &warnings)
        }
        switch kind {
        case "console":
            let target = try appender.string("target") ?? "stdout"
            guard target == "stdout" || target == "stderr" else {
                throw ConfigError(key: appender.keyPath("target"), message: "must be \"stdout\" or \"stderr\", got \"\(target)\"")
            }
            result.kind = .console(standardError: target == "stderr", ttyOnly: try appender.bool("tty_only") ?? false)
        case "file":
            let path = try filePath(&appender, kind: "file")
            result.kind = .file(path: path, append: try appender.bool("append") ?? true)
        default:
            let path = try filePath(&appender, kind: "rolling_file")
            let append = try appender.bool("append") ?? true
            guard var policy = try appender.table("policy") else {
                throw ConfigError(key: appender.keyPath("policy"), message: "a rolling_file appender needs a policy")
            }
            result.kind = .rollingFile(path: path, append: append, policy: try parsePolicy(&policy, warnings: &warnings))
        }
        warnUnknown(appender, &warnings)
        return result
    }

    private static func filePath(_ appender: inout TableReader, kind: String) throws -> String {
        guard let path = try appender.string("path"), !path.isEmpty else {
            throw ConfigError(key: appender.keyPath("path"), message: "a \(kind) appender needs a path")
        }
        return expandTilde(expandEnvironment(path))
    }

    /// `$ENV{NAME}` becomes the variable's value, as log4rs does (left as written when it is not set).
    static func expandEnvironment(_ path: String) -> String {
        var result = ""
        var rest = Substring(path)
        while let start = rest.range(of: "$ENV{"), let end = rest[start.upperBound...].firstIndex(of: "}") {
            result += rest[..<start.lowerBound]
            let name = String(rest[start.upperBound..<end])
            result += ProcessInfo.processInfo.environment[name] ?? String(rest[start.lowerBound...end])
            rest = rest[rest.index(after: end)...]
        }
        return result + rest
    }

    /// `filters = [{ kind = "threshold", level = "warn" }, ...]`: the most verbose level all let through.
    private static func parseFilters(_ filters: TOMLArray, key: String, warnings: inout [String]) throws -> Logger.Level? {
        var threshold: Logger.Level? = .trace
        for (index, value) in filters.enumerated() {
            let path = "\(key)[\(index)]"
            guard let table = value.table else {
                throw ConfigError(key: path, message: "expected a table, got \(value.type)")
            }
            var filter = TableReader(table: table, path: path)
            let kind = try filter.string("kind") ?? ""
            guard kind == "threshold" else {
                warnings.append("\(path).kind: \"\(kind)\" filters are not supported: ignored")
                continue
            }
            guard let text = try filter.string("level"), let level = Self.level(text) else {
                throw ConfigError(key: path + ".level", message: "a threshold filter needs a level: off error warn info debug trace")
            }
            switch (threshold, level) {
            case (nil, _), (_, nil): threshold = nil
            case (let current?, let new?): threshold = max(current, new)
            }
            warnUnknown(filter, &warnings)
        }
        return threshold
    }

    /// `policy = { kind = "compound", trigger = { kind = "size", limit = ... }, roller = { ... } }`;
    /// `nil` (warned: the file never rolls) for triggers and rollers this server does not have.
    private static func parsePolicy(_ policy: inout TableReader, warnings: inout [String]) throws -> RollingPolicy? {
        defer { warnUnknown(policy, &warnings) }
        let kind = try policy.string("kind") ?? "compound"
        guard kind == "compound" else {
            warnings.append("\(policy.keyPath("kind")): \"\(kind)\" policies are not supported: the file is not rolled")
            policy.ignoreAll()
            return nil
        }
        guard var trigger = try policy.table("trigger") else {
            throw ConfigError(key: policy.keyPath("trigger"), message: "a compound policy needs a trigger")
        }
        guard var roller = try policy.table("roller") else {
            throw ConfigError(key: policy.keyPath("roller"), message: "a compound policy needs a roller")
        }
        defer { warnUnknown(trigger, &warnings) }
        defer { warnUnknown(roller, &warnings) }
        let triggerKind = try trigger.string("kind") ?? ""
        guard triggerKind == "size" else {
            warnings.append("\(trigger.keyPath("kind")): \"\(triggerKind)\" triggers are not supported: the file is not rolled")
            trigger.ignoreAll()
            roller.ignoreAll()
            return nil
        }
        let limit = try sizeLimit(&trigger)
        switch try roller.string("kind") ?? "" {
        case "delete":
            return RollingPolicy(limit: limit, roller: .delete)
        case "fixed_window":
            guard let pattern = try roller.string("pattern") else {
                throw ConfigError(key: roller.keyPath("pattern"), message: "a fixed_window roller needs a pattern")
            }
            guard pattern.contains("{}") else {
                throw ConfigError(key: roller.keyPath("pattern"), message: "must contain {}, got \"\(pattern)\"")
            }
            guard let count = try roller.int("count") else {
                throw ConfigError(key: roller.keyPath("count"), message: "a fixed_window roller needs a count")
            }
            let base = try roller.int("base") ?? 0
            guard (0...Int(UInt32.max)).contains(count) else {
                throw ConfigError(key: roller.keyPath("count"), message: "must be between 0 and \(UInt32.max), got \(count)")
            }
            guard (0...Int(UInt32.max)).contains(base) else {
                throw ConfigError(key: roller.keyPath("base"), message: "must be between 0 and \(UInt32.max), got \(base)")
            }
            let gzip = pattern.hasSuffix(".gz")
            if gzip {
                warnings.append("\(roller.keyPath("pattern")): archives ending in .gz are written as gzip files of stored (uncompressed) blocks: gunzip and zcat read them, but they are not smaller")
            }
            return RollingPolicy(limit: limit, roller: .fixedWindow(pattern: expandTilde(expandEnvironment(pattern)),
                                                                    base: base, count: count, gzip: gzip))
        case let other:
            warnings.append("\(roller.keyPath("kind")): \"\(other)\" rollers are not supported: the file is not rolled")
            roller.ignoreAll()
            return nil
        }
    }

    private static func sizeLimit(_ trigger: inout TableReader) throws -> UInt64 {
        let key = trigger.keyPath("limit")
        guard let value = trigger.value("limit") else {
            throw ConfigError(key: key, message: "a size trigger needs a limit")
        }
        if let bytes = value.int {
            guard bytes >= 0 else { throw ConfigError(key: key, message: "must not be negative, got \(bytes)") }
            return UInt64(bytes)
        }
        guard let text = value.string, let bytes = RollingPolicy.size(text) else {
            throw ConfigError(key: key, message: "must be bytes or a size such as \"10 mb\" (b, kb, mb, gb, tb), got \(value)")
        }
        return bytes
    }

    private static func warnUnknown(_ table: TableReader, _ warnings: inout [String]) {
        for key in table.unknownKeyPaths {
            warnings.append("\(key): not supported: ignored")
        }
    }

    /// A log4rs level filter; `.some(nil)` is `off`.
    static func level(_ text: String) -> Logger.Level?? {
        switch text.lowercased() {
        case "trace": .some(.trace)
        case "debug": .some(.debug)
        case "info": .some(.info)
        case "warn", "warning": .some(.warning)
        case "error": .some(.error)
        case "off": .some(nil)
        default: nil
        }
    }

    /// The handlers the appenders make; those that can never log are left out. Every file is
    /// opened (created, or emptied when `append = false`) even then, as log4rs does.
    func makeHandlers() throws -> [PatternLogHandler] {
        var handlers: [PatternLogHandler] = []
        for appender in appenders {
            let output: LogOutput
            var ttyOnly = false
            do {
                switch appender.kind {
                case .console(let standardError, let onlyOnTerminal):
                    output = standardError ? .standardError : .standardOutput
                    ttyOnly = onlyOnTerminal
                case .file(let path, let append):
                    output = try .file(path: path, append: append)
                case .rollingFile(let path, let append, let policy):
                    output = try .file(path: path, append: append, policy: policy)
                }
            } catch {
                throw ConfigError(key: "appenders.\(appender.name).path", message: "\(error)")
            }
            guard let level, let threshold = appender.threshold, !ttyOnly || output.isTerminal else { continue }
            var handler = PatternLogHandler(label: "exar-db", output: output, pattern: appender.pattern)
            handler.logLevel = max(level, threshold)
            handlers.append(handler)
        }
        return handlers
    }

    /// Installs the handlers as swift-log's backend, then reports the warnings: in the log, and on
    /// standard error too unless a console appender already shows them.
    func bootstrap() throws {
        let handlers = try makeHandlers()
        LoggingSystem.bootstrap { label in
            guard !handlers.isEmpty else { return SwiftLogNoOpLogHandler() }
            return MultiplexLogHandler(handlers.map { handler in
                var copy = handler
                copy.label = label
                return copy
            })
        }
        guard !warnings.isEmpty else { return }
        let logger = Logger(label: "exar_db")
        for warning in warnings { logger.warning("log4rs configuration: \(warning)") }
        let consoleShowsWarnings = handlers.contains { $0.output.path == nil && $0.logLevel <= .warning }
        if !consoleShowsWarnings {
            for warning in warnings { LogOutput.standardError.write("exar-db: warning: log4rs configuration: \(warning)\n") }
        }
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
        let record = LogRecord(level: event.level, target: label, message: text, metadata: merged,
                               file: event.file, line: event.line, module: event.source)
        output.write(pattern.render(record, colors: output.isTerminal))
    }
}

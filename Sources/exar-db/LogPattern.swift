import Foundation
import Logging

#if canImport(Glibc)
import Glibc
#endif

/// What a pattern renders: one log event, as a handler sees it.
struct LogRecord {
    var level: Logger.Level
    /// The logger's label (log4rs's target).
    var target: String
    /// The message, with its metadata appended.
    var message: String
    var metadata: Logger.Metadata = [:]
    var file: String = ""
    var line: UInt = 0
    /// swift-log's source: the module that logged.
    var module: String = ""
}

/// A log4rs pattern-encoder pattern (`{d} {l} {t} - {m}{n}`), parsed once.
///
/// Formatters: `d`/`date` (with an optional chrono format and `(local)` or `(utc)`), `h`/`highlight`,
/// `l`/`level`, `t`/`target`, `m`/`message`, `n`, `f`/`file`, `L`/`line`, `M`/`module`, `T`/`thread`,
/// `P`/`pid`, `X`/`mdc` (a metadata value, with an optional default), and the unnamed
/// group `{(...)}`; each takes a format spec `:[[fill]<|>][min][.max]`. `{{` `}}` `((` `))` and a
/// backslash escape the special characters.
struct LogPattern: Sendable {
    struct FormatSpec: Sendable, Equatable {
        var fill: Character = " "
        var rightAlign = false
        var minimumWidth: Int?
        var maximumWidth: Int?
    }

    indirect enum Node: Sendable {
        case text(String)
        case date(StrftimeFormat, utc: Bool)
        case level
        case highlight([Piece])
        case target
        case message
        case newline
        case file
        case line
        case module
        case thread
        case processID
        case metadata(key: String, default: String)
        case group([Piece])
    }

    struct Piece: Sendable {
        var node: Node
        var spec: FormatSpec?
    }

    let pieces: [Piece]
    /// What the pattern has that log4rs would not accept or this server does not support (copied as text).
    let problems: [String]

    /// log4rs's default pattern, used when an encoder gives none.
    static let log4rsDefault = "{d} {l} {t} - {m}{n}"

    init(_ pattern: String) {
        var parser = Parser(Array(pattern))
        pieces = parser.parseFormatString(inArgument: false)
        problems = parser.problems
    }

    /// Renders `record` as logged at `instant` (`CLOCK_REALTIME`); `colors` styles `{h(...)}` with ANSI
    /// colours as log4rs does.
    func render(_ record: LogRecord, at instant: timespec, colors: Bool) -> String {
        var out = ""
        Self.render(pieces, record, instant, colors, into: &out)
        return out
    }

    /// Renders `record` at the current time.
    func render(_ record: LogRecord, colors: Bool) -> String {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        return render(record, at: now, colors: colors)
    }

    private static func render(_ pieces: [Piece], _ record: LogRecord, _ instant: timespec, _ colors: Bool,
                               into out: inout String) {
        for piece in pieces {
            guard let spec = piece.spec else {
                render(piece.node, record, instant, colors, into: &out)
                continue
            }
            var text = ""
            render(piece.node, record, instant, colors, into: &text)
            out += apply(spec, to: text)
        }
    }

    private static func render(_ node: Node, _ record: LogRecord, _ instant: timespec, _ colors: Bool,
                               into out: inout String) {
        switch node {
        case .text(let text): out += text
        case .date(let format, let utc): out += format.format(LogTime(instant, utc: utc))
        case .level: out += name(record.level)
        case .highlight(let inner):
            let style = colors ? color(record.level) : nil
            if let style { out += style }
            render(inner, record, instant, colors, into: &out)
            if style != nil { out += "\u{1B}[0m" }
        case .target: out += record.target
        case .message: out += record.message
        case .newline: out += "\n"
        case .file: out += record.file
        case .line: out += String(record.line)
        case .module: out += record.module
        case .thread: out += threadName()
        case .processID: out += String(getpid())
        case .metadata(let key, let fallback): out += record.metadata[key].map { "\($0)" } ?? fallback
        case .group(let inner): render(inner, record, instant, colors, into: &out)
        }
    }

    /// Truncates to the maximum width, then pads to the minimum (in characters).
    static func apply(_ spec: FormatSpec, to text: String) -> String {
        var result = text
        if let maximum = spec.maximumWidth, result.count > maximum { result = String(result.prefix(maximum)) }
        if let minimum = spec.minimumWidth, result.count < minimum {
            let fill = String(repeating: spec.fill, count: minimum - result.count)
            result = spec.rightAlign ? fill + result : result + fill
        }
        return result
    }

    static func name(_ level: Logger.Level) -> String {
        switch level {
        case .trace: "TRACE"
        case .debug: "DEBUG"
        case .info, .notice: "INFO"
        case .warning: "WARN"
        case .error, .critical: "ERROR"
        }
    }

    /// log4rs's highlight styles: intense red for errors, red for warnings, blue for info, none otherwise.
    private static func color(_ level: Logger.Level) -> String? {
        switch level {
        case .error, .critical: "\u{1B}[1;31m"
        case .warning: "\u{1B}[31m"
        case .info, .notice: "\u{1B}[34m"
        case .debug, .trace: nil
        }
    }

    private static func threadName() -> String {
        guard let name = Thread.current.name, !name.isEmpty else { return "unnamed" }
        return name
    }

    /// A recursive-descent reader of log4rs's pattern grammar.
    private struct Parser {
        let characters: [Character]
        var index = 0
        var problems: [String] = []

        init(_ characters: [Character]) {
            self.characters = characters
        }

        private func peek(_ offset: Int = 0) -> Character? {
            index + offset < characters.count ? characters[index + offset] : nil
        }

        /// Text and formatters up to the end, or (in an argument) up to the `)` that closes it.
        mutating func parseFormatString(inArgument: Bool) -> [Piece] {
            var pieces: [Piece] = []
            var text = ""
            func flush() {
                if !text.isEmpty { pieces.append(Piece(node: .text(text))); text = "" }
            }
            while let character = peek() {
                switch character {
                case "\\" where peek(1) != nil:
                    text.append(peek(1)!)
                    index += 2
                case "{" where peek(1) == "{", "}" where peek(1) == "}", "(" where peek(1) == "(",
                     ")" where peek(1) == ")":
                    text.append(character)
                    index += 2
                case "{":
                    flush()
                    let start = index
                    if let piece = parseFormatter() {
                        pieces.append(piece)
                    } else {
                        let written = String(characters[start..<min(index, characters.count)])
                        problems.append("unfinished formatter \(written)")
                        text += written
                    }
                case ")" where inArgument:
                    flush()
                    return pieces
                default:
                    // A lone `}`, `(` or `)` log4rs would refuse; copy it.
                    text.append(character)
                    index += 1
                }
            }
            flush()
            return pieces
        }

        /// `{name(arg)(arg):spec}`, the index at the `{`; `nil` when it does not close.
        private mutating func parseFormatter() -> Piece? {
            let start = index
            index += 1
            var name = ""
            while let character = peek(), character.isLetter || character.isNumber || character == "_" {
                name.append(character)
                index += 1
            }
            var arguments: [[Piece]] = []
            while peek() == "(" && peek(1) != "(" {
                index += 1
                arguments.append(parseFormatString(inArgument: true))
                guard peek() == ")" else { return nil }
                index += 1
            }
            var spec: FormatSpec?
            if peek() == ":" {
                index += 1
                spec = parseSpec()
            }
            guard peek() == "}" else { return nil }
            index += 1
            let written = String(characters[start..<index])
            return Piece(node: node(name, arguments, written: written), spec: spec)
        }

        /// `[[fill]align][min][.max]` up to the closing `}`.
        private mutating func parseSpec() -> FormatSpec {
            var spec = FormatSpec()
            if let first = peek(), let second = peek(1), second == "<" || second == ">", first != "}" {
                spec.fill = first
                spec.rightAlign = second == ">"
                index += 2
            } else if let first = peek(), first == "<" || first == ">" {
                spec.rightAlign = first == ">"
                index += 1
            }
            func number() -> Int? {
                var digits = ""
                while let character = peek(), character.isASCII, character.isNumber {
                    digits.append(character)
                    index += 1
                }
                return Int(digits)
            }
            spec.minimumWidth = number()
            if peek() == "." {
                index += 1
                spec.maximumWidth = number()
            }
            return spec
        }

        private mutating func node(_ name: String, _ arguments: [[Piece]], written: String) -> Node {
            func plain(_ argument: [Piece]) -> String {
                argument.map { piece in
                    if case .text(let text) = piece.node { return text }
                    return ""
                }.joined()
            }
            switch name {
            case "d", "date":
                let format = arguments.first.map { StrftimeFormat(plain($0)) } ?? StrftimeFormat.iso8601
                for unknown in format.unknownSpecifiers {
                    problems.append("\(written): unknown date specifier \(unknown) (copied as text)")
                }
                var utc = false
                if arguments.count > 1 {
                    switch plain(arguments[1]) {
                    case "utc": utc = true
                    case "local": utc = false
                    default: problems.append("\(written): time zone must be (local) or (utc); using local")
                    }
                }
                return .date(format, utc: utc)
            case "h", "highlight": return .highlight(arguments.first ?? [])
            case "l", "level": return .level
            case "t", "target": return .target
            case "m", "message": return .message
            case "n": return .newline
            case "f", "file": return .file
            case "L", "line": return .line
            case "M", "module": return .module
            case "T", "thread": return .thread
            case "P", "pid": return .processID
            case "X", "mdc":
                return .metadata(key: arguments.first.map(plain) ?? "", default: arguments.count > 1 ? plain(arguments[1]) : "")
            case "": return .group(arguments.first ?? [])
            default:
                problems.append("unknown formatter \(written) (copied as text)")
                return .text(written)
            }
        }
    }
}

import ExarModel
import NIOCore

/// A message the server sends, as a client reads it.
public enum ServerMessage: Sendable, Equatable {
    /// `Connected`: the connection is bound to the collection of its `Connect`.
    case connected
    /// `Published\t<id>`: the event was appended with this id.
    case published(UInt64)
    /// `Subscribed`: the query was accepted; events follow.
    case subscribed
    /// `Event\t<id>\t<timestamp>\t<tags>\t<data>`: one event of a subscription.
    case event(Event)
    /// `EndOfEventStream`: the subscription ended.
    case endOfEventStream
    /// `Authenticated`: the credentials of an `Authenticate` were accepted.
    case authenticated
    /// `Selected`: the connection is bound to the collection of its `Select`.
    case selected
    /// `Dropped`: the collection of a `Drop` was deleted.
    case dropped
    /// `Located\t<offset>`: the answer to a `Locate`.
    case located(UInt64)
    /// `Error\t<error>`: the request failed.
    case error(ExarError)

    /// Parses one line from the server (without its terminator).
    /// - Throws: ``ExarError/parse(_:)`` for a line that is not a server message.
    public static func parse(_ line: ByteBuffer) throws(ExarError) -> ServerMessage {
        let text = String(decoding: line.readableBytesView, as: UTF8.self)
        let (type, rest) = split(text)
        switch type {
        case "Connected": return .connected
        case "Subscribed": return .subscribed
        case "EndOfEventStream": return .endOfEventStream
        case "Authenticated": return .authenticated
        case "Selected": return .selected
        case "Dropped": return .dropped
        case "Published":
            guard let id = UInt64(rest ?? "") else { throw .parse(.parseError("bad Published line: \(text)")) }
            return .published(id)
        case "Located":
            guard let offset = UInt64(rest ?? "") else { throw .parse(.parseError("bad Located line: \(text)")) }
            return .located(offset)
        case "Event":
            let fields = (rest ?? "").split(separator: "\t", maxSplits: 3, omittingEmptySubsequences: false)
            guard fields.count == 4, let id = UInt64(fields[0]), let timestamp = UInt64(fields[1]) else {
                throw .parse(.parseError("bad Event line: \(text)"))
            }
            return .event(Event(id: id, timestamp: timestamp, tags: fields[2].split(separator: " ").map(String.init),
                                data: String(fields[3])))
        case "Error":
            return .error(parseError(rest ?? ""))
        default:
            throw .parse(.parseError("unknown TCP message: \(type)"))
        }
    }

    private static func split(_ text: String) -> (String, String?) {
        guard let tab = text.firstIndex(of: "\t") else { return (text, nil) }
        return (String(text[..<tab]), String(text[text.index(after: tab)...]))
    }

    /// The error of an `Error\t...` line (the part after `Error\t`).
    static func parseError(_ text: String) -> ExarError {
        let (kind, rest) = split(text)
        switch kind {
        case "AuthenticationError": return .authentication
        case "ConnectionError": return .connection("")
        case "SubscriptionError": return .subscription("")
        case "ValidationError": return .validation(rest ?? "")
        case "ConflictError":
            guard let actual = UInt64(rest ?? "") else { return .io(.other, text) }
            return .conflict(actual)
        case "EventStreamError": return .eventStream(rest == "Empty" ? .empty : .closed)
        case "IoError":
            let (ioKind, description) = split(rest ?? "")
            return .io(IoErrorKind(rawValue: ioKind) ?? .other, description ?? "")
        case "ParseError":
            let (parseKind, description) = split(rest ?? "")
            if parseKind == "MissingField", let index = Int(description ?? "") {
                return .parse(.missingField(index))
            }
            return .parse(.parseError(description ?? ""))
        default:
            return .io(.other, text)
        }
    }
}

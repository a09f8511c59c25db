/// The errors of Exar DB, one case for each error of the wire protocol.
///
/// The set is closed on purpose: every case has an exact text on the wire (`wireText`), which
/// existing clients parse.
public enum ExarError: Error, Sendable, Hashable, CustomStringConvertible {
    /// Wrong or missing credentials.
    case authentication
    /// The connection to a collection failed (for example an invalid collection name).
    case connection(String)
    /// The event stream failed.
    case eventStream(EventStreamErrorKind)
    /// An I/O error, with the kind and a description.
    case io(IoErrorKind, String)
    /// A field could not be parsed.
    case parse(ParseErrorKind)
    /// The subscription could not be set up.
    case subscription(String)
    /// The event failed validation.
    case validation(String)
    /// A `PublishIf` found another last event of its tag (extension): that event's id, `0` for none.
    case conflict(UInt64)

    /// The text after `Error\t` on the wire.
    public var wireText: String {
        switch self {
        case .authentication: "AuthenticationError"
        case .connection: "ConnectionError"
        case .eventStream(let kind): "EventStreamError\t\(kind.rawValue)"
        case .io(let kind, let description): "IoError\t\(kind.rawValue)\t\(description)"
        case .parse(.parseError(let description)): "ParseError\tParseError\t\(description)"
        case .parse(.missingField(let index)): "ParseError\tMissingField\t\(index)"
        case .subscription: "SubscriptionError"
        case .validation(let description): "ValidationError\t\(description)"
        case .conflict(let actual): "ConflictError\t\(actual)"
        }
    }

    public var description: String {
        switch self {
        case .connection(let reason) where !reason.isEmpty: "ConnectionError: \(reason)"
        case .subscription(let reason) where !reason.isEmpty: "SubscriptionError: \(reason)"
        default: wireText.replacingTabs()
        }
    }
}

extension ExarError {
    /// The error as a client may see it: an I/O error's file paths are given relative to the data
    /// folder `folder` (`orders/00000000000000000001.log`, the folder itself as `.`), so answers do
    /// not tell where the server keeps its data.
    package func withPaths(relativeTo folder: String) -> ExarError {
        guard case .io(let kind, let message) = self, !folder.isEmpty, message.contains(folder) else { return self }
        let prefix = folder.hasSuffix("/") ? folder : folder + "/"
        return .io(kind, message.replacingOccurrences(of: prefix, with: "").replacingOccurrences(of: folder, with: "."))
    }
}

/// Why an event stream failed.
public enum EventStreamErrorKind: String, Sendable, Hashable {
    case empty = "Empty"
    case closed = "Closed"
}

/// Why a field could not be parsed.
public enum ParseErrorKind: Sendable, Hashable {
    /// A field was present but could not be parsed.
    case parseError(String)
    /// A required field is missing; the index counts from 0 within the part being parsed.
    case missingField(Int)
}

/// The kinds of I/O error the protocol names (those of Rust's `std::io::ErrorKind`).
public enum IoErrorKind: String, Sendable, Hashable, CaseIterable {
    case notFound = "NotFound"
    case permissionDenied = "PermissionDenied"
    case connectionRefused = "ConnectionRefused"
    case connectionReset = "ConnectionReset"
    case connectionAborted = "ConnectionAborted"
    case notConnected = "NotConnected"
    case addrInUse = "AddrInUse"
    case addrNotAvailable = "AddrNotAvailable"
    case brokenPipe = "BrokenPipe"
    case alreadyExists = "AlreadyExists"
    case wouldBlock = "WouldBlock"
    case invalidInput = "InvalidInput"
    case invalidData = "InvalidData"
    case timedOut = "TimedOut"
    case writeZero = "WriteZero"
    case interrupted = "Interrupted"
    case other = "Other"
    case unexpectedEof = "UnexpectedEof"
}

extension String {
    fileprivate func replacingTabs() -> String {
        String(self.map { $0 == "\t" ? " " : $0 })
    }
}

import ExarModel
import ExarNet

/// The protocol logic of one connection, without any I/O: unbound until a `Connect` or `Select`,
/// then bound to a collection, streaming while a subscription runs. Each input returns what the
/// handler must do.
struct ConnectionStateMachine {
    enum State: Equatable {
        case idle
        case bound
        case streaming
    }

    enum Action: Equatable {
        /// Open the collection and answer `Connected` (credentials already checked).
        case connect(collection: String)
        /// Open the collection and answer `Selected`.
        case select(collection: String)
        /// Drop the collection and answer `Dropped`.
        case drop(collection: String)
        /// Answer `Authenticated`.
        case authenticated
        /// Validate this event and append it to the current burst.
        case publish(PublishFields)
        /// Validate this conditional event and hand it to the collection as a burst of its own.
        case publishIf(tag: String, expectedId: UInt64, PublishFields, tagIsValid: Bool)
        /// Start the subscription and answer `Subscribed`.
        case subscribe(Query)
        /// Join the consumer group and answer `Subscribed`.
        case join(group: String, offset: UInt64, maxInFlight: UInt64, tag: String?)
        /// Answer `Located` with the offset of the first event at or after this time.
        case locate(timestamp: UInt64)
        /// Answer this error; the connection stays usable.
        case answerError(ExarError)
        /// Wrong credentials: answer `AuthenticationError` after `delayMilliseconds`, then close the
        /// connection when `close` is set.
        case refuseLogin(delayMilliseconds: Int, close: Bool)
    }

    private(set) var state: State = .idle
    /// Whether the client proved the credentials (by `Authenticate` or `Connect`), or the server has none.
    private(set) var authenticated: Bool
    let credentials: Credentials?
    /// Wrong credentials allowed before the connection is closed.
    let maxLoginFailures: Int
    private(set) var loginFailures = 0

    init(credentials: Credentials?, maxLoginFailures: Int = 5) {
        self.credentials = credentials
        self.maxLoginFailures = maxLoginFailures
        self.authenticated = credentials == nil
    }

    /// A parsed line (or its parse error). Lines received while streaming are not given here:
    /// they wait until the stream ends (an `Unsubscribe` among them ends it at once).
    mutating func receive(_ parsed: Result<ClientRequest, ExarError>) -> Action {
        precondition(state != .streaming, "lines wait while a subscription streams")
        let request: ClientRequest
        switch parsed {
        case .success(let value): request = value
        case .failure(let error): return .answerError(error)
        }
        switch (state, request) {
        case (.idle, .connect(let collection, let username, let password)):
            // After an `Authenticate`, a `Connect` needs no credentials of its own (given ones are checked).
            let alreadyProven = authenticated && username == nil && password == nil
            if !alreadyProven, let refusal = checkCredentials(username: username, password: password) { return refusal }
            return .connect(collection: collection)
        case (_, .authenticate(let username, let password)):
            if let refusal = checkCredentials(username: username, password: password) { return refusal }
            authenticated = true
            return .authenticated
        case (_, .select(let collection)):
            return authenticated ? .select(collection: collection) : .answerError(.authentication)
        case (_, .drop(let collection)):
            return authenticated ? .drop(collection: collection) : .answerError(.authentication)
        case (.bound, .publish(let fields)):
            return .publish(fields)
        case (.bound, .publishIf(let tag, let expectedId, let fields, let tagIsValid)):
            return .publishIf(tag: tag, expectedId: expectedId, fields, tagIsValid: tagIsValid)
        case (.bound, .subscribe(let query)):
            return .subscribe(query)
        case (.bound, .join(let group, let offset, let maxInFlight, let tag)):
            return .join(group: group, offset: offset, maxInFlight: maxInFlight, tag: tag)
        case (.bound, .locate(let timestamp)):
            return .locate(timestamp: timestamp)
        default:
            return .answerError(.io(.invalidData, "unexpected TCP message"))
        }
    }

    /// `nil` when the credentials are right (or the server has none), else the refusal, slower
    /// with each failure.
    private mutating func checkCredentials(username: String?, password: String?) -> Action? {
        guard let credentials, !credentials.accepts(username: username, password: password) else { return nil }
        loginFailures += 1
        let delay = Credentials.loginDelayMilliseconds(afterFailures: loginFailures)
        return .refuseLogin(delayMilliseconds: delay, close: loginFailures >= maxLoginFailures)
    }

    /// The collection of a `Connect` was opened.
    mutating func connected() {
        precondition(state == .idle)
        state = .bound
        authenticated = true
    }

    /// The collection of a `Select` was opened: the connection is bound to it.
    mutating func selected() {
        precondition(state != .streaming)
        state = .bound
    }

    /// The subscription started streaming.
    mutating func streamStarted() {
        precondition(state == .bound)
        state = .streaming
    }

    /// The subscription ended; lines are handled again.
    mutating func streamEnded() {
        if state == .streaming { state = .bound }
    }

    var isStreaming: Bool { state == .streaming }
}

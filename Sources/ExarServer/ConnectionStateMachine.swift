import ExarModel
import ExarNet

/// The protocol logic of one connection, without any I/O: idle until a `Connect`, then connected,
/// streaming while a subscription runs. Each input returns what the handler must do.
struct ConnectionStateMachine {
    enum State: Equatable {
        case idle
        case connected
        case streaming
    }

    enum Action: Equatable {
        /// Open the collection and answer `Connected` (credentials already checked).
        case connect(collection: String)
        /// Append this event to the current burst.
        case publish(PublishFields)
        /// Start the subscription and answer `Subscribed`.
        case subscribe(Query)
        /// Answer this error; the connection stays usable.
        case answerError(ExarError)
    }

    private(set) var state: State = .idle
    let credentials: Credentials?

    init(credentials: Credentials?) {
        self.credentials = credentials
    }

    /// A parsed line (or its parse error). Lines received while streaming are not given here:
    /// they wait until the stream ends.
    mutating func receive(_ parsed: Result<ClientRequest, ExarError>) -> Action {
        precondition(state != .streaming, "lines wait while a subscription streams")
        let request: ClientRequest
        switch parsed {
        case .success(let value): request = value
        case .failure(let error): return .answerError(error)
        }
        switch (state, request) {
        case (.idle, .connect(let collection, let username, let password)):
            if let credentials, !credentials.accepts(username: username, password: password) {
                return .answerError(.authentication)
            }
            return .connect(collection: collection)
        case (.connected, .publish(let fields)):
            return .publish(fields)
        case (.connected, .subscribe(let query)):
            return .subscribe(query)
        default:
            return .answerError(.io(.invalidData, "unexpected TCP message"))
        }
    }

    /// The collection was opened.
    mutating func connected() {
        precondition(state == .idle)
        state = .connected
    }

    /// The subscription started streaming.
    mutating func streamStarted() {
        precondition(state == .connected)
        state = .streaming
    }

    /// The subscription ended; lines are handled again.
    mutating func streamEnded() {
        if state == .streaming { state = .connected }
    }
}

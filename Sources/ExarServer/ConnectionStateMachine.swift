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
        /// Wrong credentials: answer `AuthenticationError` after `delayMilliseconds`, then close the
        /// connection when `close` is set.
        case refuseLogin(delayMilliseconds: Int, close: Bool)
    }

    private(set) var state: State = .idle
    let credentials: Credentials?
    /// Wrong credentials allowed before the connection is closed.
    let maxLoginFailures: Int
    private(set) var loginFailures = 0

    /// The delay before the first refusal; it doubles with each further one, up to ``maximumLoginDelay``.
    static let firstLoginDelayMilliseconds = 100
    static let maximumLoginDelayMilliseconds = 3200

    init(credentials: Credentials?, maxLoginFailures: Int = 5) {
        self.credentials = credentials
        self.maxLoginFailures = maxLoginFailures
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
                loginFailures += 1
                let doublings = min(loginFailures - 1, 16)
                let delay = min(Self.firstLoginDelayMilliseconds << doublings, Self.maximumLoginDelayMilliseconds)
                return .refuseLogin(delayMilliseconds: delay, close: loginFailures >= maxLoginFailures)
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

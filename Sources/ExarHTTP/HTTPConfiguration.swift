import ExarModel

/// The settings of the HTTP side (`[http]`, and the credentials and limits it shares with the
/// protocol port).
public struct HTTPConfiguration: Sendable, Equatable {
    /// The address to listen on.
    public var host: String
    /// The port to listen on; `0` picks a free one (tests).
    public var port: Int
    /// When both are set, every route requires them by HTTP Basic.
    public var username: String?
    public var password: String?
    /// Wrong guesses in a row from one address before its connection is closed after the answer.
    public var maxLoginFailures: Int
    /// The largest request body (a `POST` of events).
    public var maxBodyBytes: Int
    /// The version `/api/v1/server` and `exar_build_info` report.
    public var version: String

    /// The default port of the HTTP side.
    public static let defaultPort = 38581

    /// Creates a configuration; every parameter has the documented default.
    public init(host: String = "127.0.0.1", port: Int = Self.defaultPort, username: String? = nil,
                password: String? = nil, maxLoginFailures: Int = 5, maxBodyBytes: Int = 4 * 1024 * 1024,
                version: String = "0.1.0") {
        self.host = host
        self.port = port
        self.username = username
        self.password = password
        self.maxLoginFailures = maxLoginFailures
        self.maxBodyBytes = maxBodyBytes
        self.version = version
    }

    var credentials: Credentials? {
        guard let username, let password else { return nil }
        return Credentials(username: username, password: password)
    }
}

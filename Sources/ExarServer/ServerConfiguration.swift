import ExarModel
import NIOCore

/// The settings of the TCP server.
public struct ServerConfiguration: Sendable, Equatable {
    /// The address to listen on.
    public var host: String
    /// The port to listen on; `0` picks a free one (tests).
    public var port: Int
    /// When both are set, `Connect` must carry them.
    public var username: String?
    public var password: String?
    /// The longest accepted line; a longer one is answered with an error and the connection closed.
    public var maxLineBytes: Int
    /// Event loop threads; `0` means ``defaultThreads``.
    public var threads: Int
    /// Open client connections at most; a connection over it is answered with an error and closed.
    public var maxConnections: Int
    /// Wrong credentials on one connection before it is closed; each failure also delays the
    /// answer (100 ms, doubling, at most 3.2 s).
    public var maxLoginFailures: Int

    /// The event loops of `threads = 0`: half the cores, at least one. The other half is left to
    /// the collections' writer and scanner threads and to the kernel's network work. Measured on
    /// 2 cores with the clients on the same machine, one loop beat two in every publish load
    /// (at 50 connections x 1 in flight by 40%: two loops and the client kept putting each other
    /// to sleep); docs/BENCHMARKS.md has the figures.
    public static var defaultThreads: Int { max(1, System.coreCount / 2) }

    /// The default port of Exar DB.
    public static let defaultPort = 38580

    /// Creates a configuration; every parameter has the documented default.
    public init(host: String = "127.0.0.1", port: Int = Self.defaultPort, username: String? = nil,
                password: String? = nil, maxLineBytes: Int = 4 * 1024 * 1024, threads: Int = 0,
                maxConnections: Int = 10_000, maxLoginFailures: Int = 5) {
        self.host = host
        self.port = port
        self.username = username
        self.password = password
        self.maxLineBytes = maxLineBytes
        self.threads = threads
        self.maxConnections = maxConnections
        self.maxLoginFailures = maxLoginFailures
    }

    /// The credentials to check, when the server has them.
    var credentials: Credentials? {
        guard let username, let password else { return nil }
        return Credentials(username: username, password: password)
    }
}

import ExarCore
import ExarModel
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import ServiceLifecycle

/// The HTTP side of exar-db: the console's files, the JSON API, live tails as Server-Sent Events
/// and `/metrics`, on Hummingbird over event loops it is given (the protocol port's).
///
/// Run it as a `Service` in the same `ServiceGroup` as the protocol server, after it in the list:
/// a graceful shutdown then stops this side first (its live tails end, running requests finish)
/// while the event loops still run.
public final class ExarHTTPServer: Service, Sendable {
    /// The settings it runs with.
    public let configuration: HTTPConfiguration
    let database: Database
    let logger: Logger
    let eventLoopGroup: any EventLoopGroup
    /// The protocol server's figures (connections, publish durations and refusals).
    let serverStatistics: @Sendable () -> ServerStatistics
    let streams = LiveStreams()
    let metrics: MetricsExporter
    let startedAt = Date()
    private let listening = Locked<ListeningState>(ListeningState())

    private struct ListeningState {
        var address: SocketAddress?
        var failed = false
        var waiters: [CheckedContinuation<SocketAddress?, Never>] = []
    }

    /// Creates the HTTP side; nothing listens until ``run()``.
    /// - Parameters:
    ///   - configuration: address, port, credentials and limits.
    ///   - database: the database the protocol port serves.
    ///   - eventLoopGroup: the event loops to run on (the protocol port's).
    ///   - serverStatistics: the protocol server's figures, read at each request that reports them.
    ///   - logger: where requests' failures are logged.
    public init(configuration: HTTPConfiguration, database: Database, eventLoopGroup: any EventLoopGroup,
                serverStatistics: @escaping @Sendable () -> ServerStatistics, logger: Logger) {
        self.configuration = configuration
        self.database = database
        self.eventLoopGroup = eventLoopGroup
        self.serverStatistics = serverStatistics
        self.logger = logger
        self.metrics = MetricsExporter(version: configuration.version)
    }

    /// Listens and serves until a graceful shutdown of the service group it runs in.
    public func run() async throws {
        let application = Application(
            router: makeRouter(),
            configuration: .init(address: .hostname(configuration.host, port: configuration.port),
                                 serverName: "exar-db"),
            onServerRunning: { [weak self] channel in self?.listened(channel.localAddress) },
            eventLoopGroupProvider: .shared(eventLoopGroup),
            logger: logger)
        do {
            try await withGracefulShutdownHandler {
                try await application.run()
            } onGracefulShutdown: { [streams] in
                streams.endAll()
            }
        } catch {
            listened(nil)
            throw error
        }
        listened(nil)
    }

    /// The address it listens on once it does (its real port when the configuration asked for 0);
    /// `nil` when it stopped or could not listen.
    public func listeningAddress() async -> SocketAddress? {
        await withCheckedContinuation { continuation in
            let ready = listening.withLock { state -> SocketAddress?? in
                if let address = state.address { return .some(address) }
                if state.failed { return .some(nil) }
                state.waiters.append(continuation)
                return nil
            }
            if let ready { continuation.resume(returning: ready) }
        }
    }

    private func listened(_ address: SocketAddress?) {
        let waiters = listening.withLock { state in
            if let address { state.address = address } else { state.failed = state.address == nil }
            defer { state.waiters = [] }
            return state.waiters
        }
        if let address { logger.info("console: http://\(Self.urlHost(address)):\(address.port ?? 0)/") }
        for waiter in waiters { waiter.resume(returning: address) }
    }

    static func urlHost(_ address: SocketAddress) -> String {
        let host = address.ipAddress ?? "localhost"
        return host.contains(":") ? "[\(host)]" : host
    }

    func makeRouter() -> Router<ExarRequestContext> {
        let router = Router(context: ExarRequestContext.self)
        router.add(middleware: ErrorAndHeadersMiddleware<ExarRequestContext>(dataFolder: database.configuration.logsPath))
        if let credentials = configuration.credentials {
            router.add(middleware: BasicAuthenticationMiddleware(
                credentials: credentials, throttle: LoginThrottle(maxFailures: configuration.maxLoginFailures)))
        }
        addServerRoutes(to: router)
        addEventRoutes(to: router)
        addGroupRoutes(to: router)
        addStreamRoute(to: router)
        addConsoleRoutes(to: router)
        return router
    }
}

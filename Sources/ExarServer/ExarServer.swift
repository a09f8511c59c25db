import ExarCore
import ExarModel
import ExarNet
import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle
import Synchronization

/// The Exar DB TCP server: SwiftNIO (epoll on Linux) serving the Exar text protocol over a
/// ``Database``.
public final class ExarServer: Service, Sendable {
    /// The server's settings.
    public let configuration: ServerConfiguration
    private let database: Database
    private let logger: Logger
    private let group: MultiThreadedEventLoopGroup
    private let state = Locked<State>(State())
    private let connectionsOpened = Atomic<UInt64>(0)

    private struct State {
        var listener: (any Channel)?
        var connections: [ObjectIdentifier: any Channel] = [:]
        var batchers: [ObjectIdentifier: PublishBatcher] = [:]
        var stopped = false
    }

    /// Creates a server; nothing listens until ``start()`` or ``run()``.
    public init(configuration: ServerConfiguration, database: Database, logger: Logger) {
        self.configuration = configuration
        self.database = database
        self.logger = logger
        let threads = configuration.threads > 0 ? configuration.threads : ServerConfiguration.defaultThreads
        self.group = MultiThreadedEventLoopGroup(numberOfThreads: threads)
    }

    /// Binds and starts accepting connections.
    /// - Returns: the address bound (its port is the real one when the configuration asked for 0).
    @discardableResult
    public func start() async throws -> SocketAddress {
        let credentials = configuration.credentials
        let maxLine = configuration.maxLineBytes
        let maxLoginFailures = configuration.maxLoginFailures
        let database = self.database
        let logger = self.logger
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 1024)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelOption(.maxMessagesPerRead, value: 16)
            .childChannelOption(.autoRead, value: true)
            // A client that shuts its side down (`nc -N`, `shutdown(SHUT_WR)`) still gets every answer.
            .childChannelOption(.allowRemoteHalfClosure, value: true)
            .childChannelInitializer { [weak self] channel in
                channel.eventLoop.makeCompletedFuture {
                    guard let self else { throw ChannelError.ioOnClosedChannel }
                    guard self.track(channel) else {
                        try channel.pipeline.syncOperations.addHandler(
                            RefusingHandler(limit: self.configuration.maxConnections, logger: logger))
                        return
                    }
                    try channel.pipeline.syncOperations.addHandler(
                        ConnectionHandler(database: database, credentials: credentials, maxLineBytes: maxLine,
                                          maxLoginFailures: maxLoginFailures, logger: logger,
                                          batcher: self.batcher(for: channel.eventLoop)))
                }
            }
        let listener = try await bootstrap.bind(host: configuration.host, port: configuration.port).get()
        state.withLock { $0.listener = listener }
        let address = listener.localAddress!
        logger.info("exar-db listening on \(address)")
        return address
    }

    /// The publish batcher of an event loop, made with its first connection.
    private func batcher(for eventLoop: any EventLoop) -> PublishBatcher {
        state.withLock { state in
            let key = ObjectIdentifier(eventLoop)
            if let batcher = state.batchers[key] { return batcher }
            let batcher = PublishBatcher(eventLoop: eventLoop)
            state.batchers[key] = batcher
            return batcher
        }
    }

    /// Counts a new connection; `false` when it is one over `max_connections` (it is then refused).
    private func track(_ channel: any Channel) -> Bool {
        let id = ObjectIdentifier(channel)
        let limit = configuration.maxConnections
        enum Admission { case accepted, stopped, overLimit }
        let admission = state.withLock { state -> Admission in
            if state.stopped { return .stopped }
            if state.connections.count >= limit { return .overLimit }
            state.connections[id] = channel
            return .accepted
        }
        switch admission {
        case .stopped:
            channel.close(promise: nil)
            return true
        case .overLimit:
            return false
        case .accepted:
            connectionsOpened.add(1, ordering: .relaxed)
            channel.closeFuture.whenComplete { [weak self] _ in
                _ = self?.state.withLock { $0.connections.removeValue(forKey: id) }
            }
            return true
        }
    }

    /// The number of open client connections.
    public var connectionCount: Int {
        state.withLock { $0.connections.count }
    }

    /// The event loops of the protocol port, for other listeners of the process to share (the HTTP
    /// side). They stop in ``shutdown()``: stop those listeners first.
    public var eventLoopGroup: any EventLoopGroup { group }

    /// The server's own figures: connections, publish durations and refusals.
    public var statistics: ServerStatistics {
        ServerStatistics(
            connectionsActive: connectionCount, connectionsOpened: connectionsOpened.load(ordering: .relaxed),
            publishDurations: database.publishCounters.durations.snapshot,
            publishRejected: database.publishCounters.rejections)
    }

    /// Stops accepting, lets in-flight publishes finish and be answered, seals the database,
    /// closes every connection and stops the event loops.
    public func shutdown() async throws {
        let (listener, alreadyStopped) = state.withLock { state in
            defer { state.stopped = true }
            return (state.listener, state.stopped)
        }
        guard !alreadyStopped else { return }
        try? await listener?.close()
        // Writes everything pending and calls every completion; their answers go out on the loops.
        database.close()
        let connections = state.withLock { $0.connections.values.map { $0 } }
        for channel in connections {
            // Let the answers queued on the loop go out before closing.
            try? await channel.eventLoop.submit {}.get()
            try? await channel.close()
        }
        try await group.shutdownGracefully()
        logger.info("exar-db stopped")
    }

    /// Runs until a graceful shutdown (SIGTERM / SIGINT through a `ServiceGroup`), then shuts down.
    public func run() async throws {
        try await start()
        try? await gracefulShutdown()
        try await shutdown()
    }
}

import ExarModel
import ExarNet
import Foundation
import NIOCore
import NIOPosix

/// An async/await client of an Exar DB server.
///
/// ```swift
/// let client = try await ExarClient.connect(collection: "orders")
/// let id = try await client.publish(Event(tags: ["created"], data: "{\"id\":7}"))
/// for try await event in try await client.subscribe(Query(live: true)) { print(event) }
/// ```
/// Requests may be issued from several tasks at once: they are pipelined on the one connection
/// and answered in order. While a subscription streams, the server handles no other request of
/// this connection (the protocol's rule): use a second client to publish meanwhile.
public final class ExarClient: Sendable {
    let channel: any Channel
    let handler: NIOLoopBound<ClientHandler>

    private init(channel: any Channel, handler: NIOLoopBound<ClientHandler>) {
        self.channel = channel
        self.handler = handler
    }

    /// Connects to a server and, given a collection, binds the connection to it.
    ///
    /// With a collection this sends `Connect` (with the credentials, if any). Without one it
    /// sends `Authenticate` when credentials are given and nothing otherwise; bind a collection
    /// later with ``select(_:)``.
    /// - Parameters:
    ///   - host: the server's address.
    ///   - port: the server's port.
    ///   - collection: the collection to bind the connection to (created on first use), or `nil`.
    ///   - username: the user, when the server has credentials.
    ///   - password: the password, when the server has credentials.
    ///   - maxLineBytes: the longest line accepted from the server.
    /// - Throws: ``ExarError/authentication`` for wrong credentials, other ``ExarError``s as the
    ///   server answers, or the connection's error.
    public static func connect(
        host: String = "127.0.0.1", port: Int = 38580, collection: String? = nil, username: String? = nil,
        password: String? = nil, maxLineBytes: Int = 64 * 1024 * 1024
    ) async throws -> ExarClient {
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(
                        ByteToMessageHandler(LineFrameDecoder(maximumLineBytes: maxLineBytes)))
                    try channel.pipeline.syncOperations.addHandler(ClientHandler())
                }
            }
            .connect(host: host, port: port).get()
        let handler = try await channel.eventLoop.submit {
            NIOLoopBound(try channel.pipeline.syncOperations.handler(type: ClientHandler.self), eventLoop: channel.eventLoop)
        }.get()
        let client = ExarClient(channel: channel, handler: handler)
        do {
            if let collection {
                try checkCollection(collection)
                if let username, let password {
                    try checkField(username, "username")
                    try checkLine(password, "password")
                }
                var line = channel.allocator.buffer(capacity: 64)
                line.writeConnect(collection: collection, username: username, password: password)
                try await client.request(line, answered: .connected)
            } else if let username, let password {
                try await client.authenticate(username: username, password: password)
            }
        } catch {
            try? await channel.close()
            throw error
        }
        return client
    }

    /// Authenticates the connection (`Authenticate`), which lets it ``select(_:)`` and ``drop(_:)``.
    /// - Throws: ``ExarError/authentication`` for wrong credentials, or the connection's error.
    public func authenticate(username: String, password: String) async throws {
        try Self.checkField(username, "username")
        try Self.checkLine(password, "password")
        var line = channel.allocator.buffer(capacity: 32 + username.utf8.count + password.utf8.count)
        line.writeAuthenticate(username: username, password: password)
        try await request(line, answered: .authenticated)
    }

    /// Binds the connection to `collection` (`Select`), creating it on first use; later publishes
    /// and subscriptions of this client use it.
    /// - Throws: ``ExarError/authentication`` on a server with credentials before they were given,
    ///   ``ExarError/connection(_:)`` for a name the server refuses, or the connection's error.
    public func select(_ collection: String) async throws {
        try Self.checkCollection(collection)
        var line = channel.allocator.buffer(capacity: 8 + collection.utf8.count)
        line.writeSelect(collection: collection)
        try await request(line, answered: .selected)
    }

    /// Deletes `collection` with its events and files (`Drop`). Its running subscriptions end;
    /// connections bound to it get ``ExarError/connection(_:)`` until they select again, and a
    /// collection of that name made later starts again at id 1.
    /// - Throws: ``ExarError/authentication`` on a server with credentials before they were given,
    ///   ``ExarError/connection(_:)`` for a name the server refuses, or the connection's error.
    public func drop(_ collection: String) async throws {
        try Self.checkCollection(collection)
        var line = channel.allocator.buffer(capacity: 6 + collection.utf8.count)
        line.writeDrop(collection: collection)
        try await request(line, answered: .dropped)
    }

    /// Publishes one event; returns its id.
    @discardableResult
    public func publish(_ event: Event) async throws -> UInt64 {
        var line = channel.allocator.buffer(capacity: 32 + event.data.utf8.count)
        line.writePublish(tags: event.tags, timestamp: event.timestamp, data: event.data)
        let answer = try await send(line, expecting: .answers(1))[0]
        switch answer {
        case .published(let id): return id
        case .error(let error): throw error
        default: throw ExarError.io(.invalidData, "unexpected answer \(answer)")
        }
    }

    /// Publishes `event` only if the last event carrying `expectation.tag` has id
    /// `expectation.lastId` (`0`: no event carries it yet) when it is appended (`PublishIf`);
    /// returns its id. The check and the append are one step on the server, whatever other
    /// clients publish.
    /// - Throws: ``ConflictError`` with the actual last id when another event came first (nothing
    ///   is stored), ``ExarError/validation(_:)`` for a tag that is not one tag, or the server's error.
    @discardableResult
    public func publish(_ event: Event, expecting expectation: Expectation) async throws -> UInt64 {
        try EventValidation.validateTag(Array(expectation.tag.utf8))
        var line = channel.allocator.buffer(capacity: 48 + expectation.tag.utf8.count + event.data.utf8.count)
        line.writePublishIf(tag: expectation.tag, expectedId: expectation.lastId, tags: event.tags,
                            timestamp: event.timestamp, data: event.data)
        let answer = try await send(line, expecting: .answers(1))[0]
        switch answer {
        case .published(let id): return id
        case .error(.conflict(let actual)): throw ConflictError(expectation: expectation, actualId: actual)
        case .error(let error): throw error
        default: throw ExarError.io(.invalidData, "unexpected answer \(answer)")
        }
    }

    /// Publishes events pipelined in one write; returns their ids in order.
    /// - Throws: the first error the server answered (events before it are stored).
    public func publish(_ events: [Event]) async throws -> [UInt64] {
        guard !events.isEmpty else { return [] }
        var line = channel.allocator.buffer(capacity: events.count * 64)
        for event in events {
            line.writePublish(tags: event.tags, timestamp: event.timestamp, data: event.data)
        }
        let answers = try await send(line, expecting: .answers(events.count))
        var ids: [UInt64] = []
        ids.reserveCapacity(events.count)
        for answer in answers {
            switch answer {
            case .published(let id): ids.append(id)
            case .error(let error): throw error
            default: throw ExarError.io(.invalidData, "unexpected answer \(answer)")
            }
        }
        return ids
    }

    /// Subscribes; the events arrive through the returned sequence, which ends at the server's
    /// `EndOfEventStream`. Leaving its loop early or cancelling its task unsubscribes.
    /// - Throws: the server's error for the query, or the connection's error.
    public func subscribe(_ query: Query) async throws -> Subscription {
        let buffer = SubscriptionBuffer(limits: .standard, handler: handler, eventLoop: channel.eventLoop)
        // Made before the request, so that its end unsubscribes whatever happens to this call.
        let subscription = Subscription(buffer)
        var line = channel.allocator.buffer(capacity: 64)
        line.writeSubscribe(query)
        let answer = try await send(line, expecting: .subscription(buffer))[0]
        switch answer {
        case .subscribed: return subscription
        case .error(let error): throw error
        default: throw ExarError.subscription("unexpected answer \(answer)")
        }
    }

    /// The offset from which a subscription delivers the events stamped at or after `date`
    /// (`Locate`): the id before the first such event, or the last id when there is none.
    /// - Throws: the server's error (``ExarError/connection(_:)`` for a dropped collection), or
    ///   the connection's error.
    public func locate(_ date: Date) async throws -> UInt64 {
        var line = channel.allocator.buffer(capacity: 32)
        line.writeLocate(timestamp: Self.milliseconds(date))
        let answer = try await send(line, expecting: .answers(1))[0]
        switch answer {
        case .located(let offset): return offset
        case .error(let error): throw error
        default: throw ExarError.io(.invalidData, "unexpected answer \(answer)")
        }
    }

    /// Subscribes from the first event stamped at or after `date`: a `Locate`, then a `Subscribe`
    /// from its offset (an id, so events published between the two are delivered too).
    public func subscribe(since date: Date, live: Bool = true, limit: UInt64? = nil, tag: String? = nil)
        async throws -> Subscription
    {
        let offset = try await locate(date)
        return try await subscribe(Query(live: live, offset: offset, limit: limit, tag: tag))
    }

    /// Milliseconds since the Unix epoch, 0 for earlier dates.
    static func milliseconds(_ date: Date) -> UInt64 {
        let value = (date.timeIntervalSince1970 * 1000).rounded(.down)
        return value <= 0 ? 0 : value >= 1.8e19 ? UInt64.max : UInt64(value)
    }

    /// Closes the connection; a running subscription ends with an error.
    public func close() async {
        try? await channel.close()
    }

    /// Sends one request and checks that it got `expected`.
    private func request(_ line: ByteBuffer, answered expected: ServerMessage) async throws {
        let answer = try await send(line, expecting: .answers(1))[0]
        if answer == expected { return }
        if case .error(let error) = answer { throw error }
        throw ExarError.io(.invalidData, "unexpected answer \(answer)")
    }

    func send(_ lines: ByteBuffer, expecting expectation: ClientHandler.Expectation) async throws -> [ServerMessage] {
        let promise = channel.eventLoop.makePromise(of: [ServerMessage].self)
        let handler = self.handler
        channel.eventLoop.execute {
            handler.value.send(lines, expecting: expectation, promise: promise)
        }
        return try await promise.futureResult.get()
    }

    /// A collection name the server would refuse because it would split the line (as the server
    /// refuses control characters: ``ExarError/connection(_:)``).
    private static func checkCollection(_ name: String) throws {
        if name.utf8.contains(where: { $0 == 9 || $0 == 10 || $0 == 13 }) {
            throw ExarError.connection("collection name must not contain tabs or newlines")
        }
    }

    /// A field that is not the last of its line: no TAB, CR or LF, which would split the line.
    static func checkField(_ text: String, _ what: String) throws {
        if text.utf8.contains(where: { $0 == 9 || $0 == 10 || $0 == 13 }) {
            throw ExarError.io(.invalidInput, "\(what) must not contain tabs or newlines")
        }
    }

    /// The last field of a line: no CR or LF.
    static func checkLine(_ text: String, _ what: String) throws {
        if text.utf8.contains(where: { $0 == 10 || $0 == 13 }) {
            throw ExarError.io(.invalidInput, "\(what) must not contain newlines")
        }
    }
}

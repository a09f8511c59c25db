import ExarCore
import ExarModel
import HTTPTypes
import Hummingbird
import NIOCore

/// `GET .../stream`: a live tail as Server-Sent Events.
///
/// The events come from an ordinary subscription through an ``EventStream`` of a bounded buffer:
/// each write waits until the connection takes it (the response writer waits for the channel's
/// writability), and while it waits the buffer fills and the subscription pauses, for this
/// stream alone. Memory per stream is bounded by the buffer and what the socket holds.
extension ExarHTTPServer {
    /// Events buffered per stream before its subscription pauses.
    static let streamBuffer = 256

    func addStreamRoute(to router: Router<ExarRequestContext>) {
        router.get("/api/v1/collections/:name/stream") { [self] request, context in
            // Held until the tail's subscription exists (which keeps the collection open itself).
            let lease = try await existing(context)
            let collection = lease.collection
            defer { withExtendedLifetime(lease) {} }
            let query = request.uri.queryParameters
            var offset = collection.lastId
            if let text = query["offset"] {
                guard let value = UInt64(text) else { throw APIError.parse("offset must be a whole number, got '\(text)'") }
                offset = value
            }
            if let text = query["since"] {
                guard let value = UInt64(text) else {
                    throw APIError.parse("since must be a time in ms since the Unix epoch, got '\(text)'")
                }
                guard query["offset"] == nil else { throw APIError.parse("give offset or since, not both") }
                offset = await offloaded { collection.locate(timestamp: value) }
            }
            // An id this server did not send is ignored rather than refused: a 400 would end a
            // browser's EventSource for good.
            if let text = request.headers[.lastEventID], let value = UInt64(text.trimmingCharacters(in: .whitespaces)) {
                offset = value
            }
            let tag = query["tag"].flatMap { $0.isEmpty ? nil : String($0) }
            let events = try collection.events(Query(live: true, offset: offset, limit: nil, tag: tag),
                                               bufferSize: Self.streamBuffer)
            let channel = context.channel
            let token = streams.add(events, channel: channel)
            // A tail with no new events never writes, so it would not see its client leave: the
            // client's FIN (the connection allows half-closure) or the channel's close ends it.
            let watcher = InputClosedWatcher { events.cancel() }
            channel.pipeline.addHandler(watcher, position: .first).whenFailure { _ in events.cancel() }
            channel.closeFuture.whenComplete { _ in events.cancel() }
            let headers: HTTPFields = [
                .contentType: "text/event-stream; charset=utf-8",
                .cacheControl: "no-store",
            ]
            let body = ResponseBody { [streams] writer in
                defer {
                    streams.remove(token)
                    channel.pipeline.removeHandler(watcher, promise: nil)
                }
                // Tells the browser how soon to reconnect, and opens the stream at once.
                try await writer.write(ByteBuffer(string: "retry: 1000\n\n"))
                do {
                    for try await event in events {
                        var out = JSONWriter(ByteBuffer())
                        out.raw("id: ")
                        out.number(event.id)
                        out.raw("\ndata: ")
                        out.eventObject(event)
                        out.raw("\n\n")
                        try await writer.write(out.buffer)
                    }
                } catch {
                    events.cancel()
                    // The client went away, or the server is stopping: the response just ends.
                    if !(error is ExarError) { throw error }
                }
                try await writer.finish(nil)
            }
            return Response(status: .ok, headers: headers, body: body)
        }
    }
}

/// The streamed answers running now (live tails and exports), ended together when the server
/// stops: a tail never ends by itself, and a client that stopped reading holds its answer's
/// writer forever, so their connections are closed too (after a moment, so that a client that
/// reads gets the end of its answer).
final class LiveStreams: Sendable {
    private struct Entry {
        var stream: EventStream?
        var channel: any Channel
    }

    private struct State {
        var entries: [Int: Entry] = [:]
        var next = 0
        var ended = false
    }

    private let state = Locked(State())

    /// How long an ended answer has to go out before its connection is closed.
    static let closeDelay = TimeAmount.milliseconds(500)

    func add(_ stream: EventStream?, channel: any Channel) -> Int {
        let (token, ended) = state.withLock { state -> (Int, Bool) in
            state.next += 1
            if !state.ended { state.entries[state.next] = Entry(stream: stream, channel: channel) }
            return (state.next, state.ended)
        }
        if ended { Self.end(Entry(stream: stream, channel: channel)) }
        return token
    }

    func remove(_ token: Int) {
        _ = state.withLock { $0.entries.removeValue(forKey: token) }
    }

    func endAll() {
        let entries = state.withLock { state in
            state.ended = true
            defer { state.entries = [:] }
            return Array(state.entries.values)
        }
        for entry in entries { Self.end(entry) }
    }

    private static func end(_ entry: Entry) {
        entry.stream?.cancel()
        let channel = entry.channel
        channel.eventLoop.scheduleTask(in: closeDelay) { channel.close(promise: nil) }
    }
}

/// Calls `onInputClosed` when the client closes its side of the connection (or the connection
/// goes), for a live tail that would otherwise wait for its next event to find out.
final class InputClosedWatcher: ChannelInboundHandler, RemovableChannelHandler, Sendable {
    typealias InboundIn = NIOAny
    typealias InboundOut = NIOAny

    let onInputClosed: @Sendable () -> Void

    init(_ onInputClosed: @escaping @Sendable () -> Void) {
        self.onInputClosed = onInputClosed
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? ChannelEvent, event == .inputClosed { onInputClosed() }
        context.fireUserInboundEventTriggered(event)
    }

    func channelInactive(context: ChannelHandlerContext) {
        onInputClosed()
        context.fireChannelInactive()
    }
}

extension JSONWriter {
    /// An ``Event`` (already copied out of storage) as the API's event object.
    mutating func eventObject(_ event: Event) {
        raw("{\"id\":")
        number(event.id)
        raw(",\"timestamp\":")
        number(event.timestamp)
        raw(",\"tags\":[")
        for (number, tag) in event.tags.enumerated() {
            if number > 0 { raw(",") }
            string(tag)
        }
        raw("],\"data\":")
        string(event.data)
        raw("}")
    }
}

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
            let collection = try await existing(context)
            let query = request.uri.queryParameters
            var offset = collection.lastId
            if let text = query["offset"] {
                guard let value = UInt64(text) else { throw APIError.parse("offset must be a whole number, got '\(text)'") }
                offset = value
            }
            if let text = request.headers[.lastEventID] {
                guard let value = UInt64(text.trimmingCharacters(in: .whitespaces)) else {
                    throw APIError.parse("Last-Event-ID must be an event id, got '\(text)'")
                }
                offset = value
            }
            let tag = query["tag"].flatMap { $0.isEmpty ? nil : String($0) }
            let events = try collection.events(Query(live: true, offset: offset, limit: nil, tag: tag),
                                               bufferSize: Self.streamBuffer)
            let token = streams.add(events)
            // A tail with no new events never writes, so it would not see its client leave.
            context.channel.closeFuture.whenComplete { _ in events.cancel() }
            let headers: HTTPFields = [
                .contentType: "text/event-stream; charset=utf-8",
                .cacheControl: "no-store",
            ]
            let body = ResponseBody { [streams] writer in
                defer { streams.remove(token) }
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

/// The open live tails, ended together when the server stops (a tail never ends by itself).
final class LiveStreams: Sendable {
    private struct State {
        var streams: [Int: EventStream] = [:]
        var next = 0
        var ended = false
    }

    private let state = Locked(State())

    func add(_ stream: EventStream) -> Int {
        let (token, ended) = state.withLock { state -> (Int, Bool) in
            state.next += 1
            if !state.ended { state.streams[state.next] = stream }
            return (state.next, state.ended)
        }
        if ended { stream.cancel() }
        return token
    }

    func remove(_ token: Int) {
        _ = state.withLock { $0.streams.removeValue(forKey: token) }
    }

    func endAll() {
        let streams = state.withLock { state in
            state.ended = true
            defer { state.streams = [:] }
            return Array(state.streams.values)
        }
        for stream in streams { stream.cancel() }
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

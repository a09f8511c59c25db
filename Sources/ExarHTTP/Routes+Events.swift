import Dispatch
import ExarCore
import ExarModel
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

/// `GET .../events` (a page as JSON, or the whole answer streamed as NDJSON or CSV) and
/// `POST .../events`.
extension ExarHTTPServer {
    /// Events of one JSON page at most.
    static let maximumPageLimit: UInt64 = 10_000
    /// Events written per chunk of a streamed export.
    static let exportChunk: UInt64 = 2_000

    func addEventRoutes(to router: Router<ExarRequestContext>) {
        router.get("/api/v1/collections/:name/events") { [self] request, context in
            let lease = try await existing(context)
            let collection = lease.collection
            defer { withExtendedLifetime(lease) {} }
            let query = request.uri.queryParameters
            var parameters = try EventsParameters { query[$0[...]] }
            if let since = parameters.since {
                parameters.offset = await offloaded { collection.locate(timestamp: since) }
            }
            switch parameters.format {
            case .json: return try await page(collection, parameters)
            case .ndjson, .csv: return export(lease, parameters, channel: context.channel)
            }
        }
        router.post("/api/v1/collections/:name/events") { [self] request, context in
            try Self.requireJSONContentType(request)
            let name = try Self.collectionName(context)
            let body: ByteBuffer
            do {
                body = try await request.body.collect(upTo: configuration.maxBodyBytes)
            } catch {
                database.publishCounters.rejected(.tooLarge)
                throw APIError(.contentTooLarge, "ValidationError",
                               "request body larger than \(configuration.maxBodyBytes) bytes")
            }
            let received = MonotonicClock.nanoseconds()
            let (events, single) = try PostedEvents.parse(body, counters: database.publishCounters)
            let lease = try await offloaded { [database] () throws(ExarError) in try database.lease(name) }
            let ids = try await publish(events, to: lease.collection)
            withExtendedLifetime(lease) {}
            database.publishCounters.durations.observe(
                nanoseconds: MonotonicClock.nanoseconds() &- received, count: UInt64(events.count))
            var writer = JSONWriter(ByteBuffer())
            if single {
                writer.raw("{"); writer.key("id"); writer.number(ids.lowerBound); writer.raw("}\n")
            } else {
                writer.raw("{"); writer.key("ids"); writer.raw("[")
                for id in ids {
                    if id != ids.lowerBound { writer.raw(",") }
                    writer.number(id)
                }
                writer.raw("]}\n")
            }
            return Self.json(writer, status: .created)
        }
    }

    /// Stores the events together, counting a refusal by its reason.
    private func publish(_ events: [PostedEvents.Event], to collection: ExarCore.Collection) async throws -> ClosedRange<UInt64> {
        let counters = database.publishCounters
        let result: PublishResult = try await withCheckedThrowingContinuation { continuation in
            func fill(_ appender: inout PublishAppender) throws(ExarError) {
                for event in events {
                    let appended = event.tags.withUnsafeBytes { tags in
                        event.data.withUnsafeBytes { data in
                            Result { () throws(ExarError) in
                                try appender.append(timestamp: event.timestamp, tags: tags, data: data)
                            }
                        }
                    }
                    try appended.get()
                }
            }
            do throws(ExarError) {
                // `expect` is only ever on a single event (PostedEvents refuses it in an array).
                if let condition = events.first?.expect {
                    try collection.publish(expecting: condition, fill, completion: { continuation.resume(returning: $0) })
                } else {
                    try collection.publish(fill, completion: { continuation.resume(returning: $0) })
                }
            } catch {
                if case .validation(let message) = error {
                    counters.rejected(message.contains("larger than") ? .tooLarge : .validation, count: UInt64(events.count))
                } else if case .connection = error {
                    counters.rejected(.dropped, count: UInt64(events.count))
                }
                continuation.resume(throwing: error)
            }
        }
        guard result.storedCount == events.count else {
            let conflict: Bool
            if case .conflict = result.error { conflict = true } else { conflict = false }
            counters.rejected(conflict ? .conflict : .storage, count: UInt64(events.count - result.storedCount))
            throw result.error ?? .io(.other, "not stored")
        }
        return result.firstId...(result.firstId + UInt64(events.count) - 1)
    }

    /// One page: `limit + 1` events are read to know whether there is a next page.
    private func page(_ collection: ExarCore.Collection, _ parameters: EventsParameters) async throws -> Response {
        let limit = parameters.limit ?? 100
        guard limit > 0 else { throw APIError.parse("limit must be at least 1 for format=json") }
        guard limit <= Self.maximumPageLimit else {
            throw APIError.parse("limit must be at most \(Self.maximumPageLimit) for format=json (use ndjson or csv to export more)")
        }
        let (buffer, next) = try await offloaded { () throws(ExarError) -> (ByteBuffer, UInt64?) in
            var writer = JSONWriter(ByteBuffer())
            writer.raw("{"); writer.key("events"); writer.raw("[")
            var count: UInt64 = 0
            var lastWritten: UInt64 = 0
            var more = false
            let visit = { (event: EventView) -> Bool in
                if count == limit {
                    more = true
                    return false
                }
                if count > 0 { writer.raw(",") }
                writer.event(event)
                lastWritten = event.id
                count += 1
                return true
            }
            if parameters.descending {
                try EventPaging.readDescending(collection, before: parameters.offset, tag: parameters.tag, visit)
            } else {
                try EventPaging.readAscending(collection, after: parameters.offset, limit: limit + 1, tag: parameters.tag, visit)
            }
            writer.raw("]")
            let next: UInt64? = more ? lastWritten : nil
            return (writer.buffer, next)
        }
        var writer = JSONWriter(buffer)
        writer.raw(","); writer.key("next")
        if let next { writer.number(next) } else { writer.raw("null") }
        writer.raw("}\n")
        return Self.json(writer)
    }

    /// The whole answer, streamed in chunks as the client takes them: the next chunk is read
    /// only once the previous one is written.
    private func export(_ lease: CollectionLease, _ parameters: EventsParameters, channel: any Channel) -> Response {
        let collection = lease.collection
        let csv = parameters.format == .csv
        let fileName = collection.name.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? "events"
        var headers: HTTPFields = [
            .contentType: csv ? "text/csv; charset=utf-8" : "application/x-ndjson; charset=utf-8",
            .contentDisposition: "attachment; filename=\"\(fileName).\(csv ? "csv" : "ndjson")\"",
        ]
        headers[.cacheControl] = "no-store"
        let body = ResponseBody { [self] writer in
            // The export reads the collection until its last chunk: it holds the lease that long.
            defer { withExtendedLifetime(lease) {} }
            let token = streams.add(nil, channel: channel)
            defer { streams.remove(token) }
            if csv { try await writer.write(ByteBuffer(string: "id,timestamp,tags,data\r\n")) }
            // As on the wire, limit 0 means no limit.
            var remaining = parameters.limit.flatMap { $0 == 0 ? nil : $0 } ?? UInt64.max
            var offset = parameters.offset
            while remaining > 0 {
                let want = min(remaining, Self.exportChunk)
                let after = offset
                let (chunk, count, last) = try await offloaded { () throws(ExarError) -> (ByteBuffer, UInt64, UInt64) in
                    var writer = JSONWriter(ByteBuffer())
                    var count: UInt64 = 0
                    var last: UInt64 = 0
                    let visit = { (event: EventView) -> Bool in
                        guard count < want else { return false }
                        if csv { writer.csvRow(event) } else { writer.event(event); writer.raw("\n") }
                        count += 1
                        last = event.id
                        return true
                    }
                    if parameters.descending {
                        try EventPaging.readDescending(collection, before: after, tag: parameters.tag, visit)
                    } else {
                        try EventPaging.readAscending(collection, after: after, limit: want, tag: parameters.tag, visit)
                    }
                    return (writer.buffer, count, last)
                }
                if count > 0 { try await writer.write(chunk) }
                if count < want || (parameters.descending && last <= 1) { break }
                remaining -= count
                offset = last
            }
            try await writer.finish(nil)
        }
        return Response(status: .ok, headers: headers, body: body)
    }
}

extension JSONWriter {
    /// `id,timestamp,tags,data` with RFC 4180 quoting (a field with a comma, quote or line break
    /// is quoted, quotes doubled).
    mutating func csvRow(_ event: EventView) {
        number(event.id)
        raw(",")
        number(event.timestamp)
        raw(",")
        csvField(event.tags)
        raw(",")
        csvField(event.data)
        raw("\r\n")
    }

    private mutating func csvField(_ bytes: UnsafeRawBufferPointer) {
        let needsQuotes = bytes.contains { $0 == UInt8(ascii: ",") || $0 == UInt8(ascii: "\"") || $0 == UInt8(ascii: "\r") || $0 == UInt8(ascii: "\n") }
        guard needsQuotes else {
            buffer.writeBytes(bytes)
            return
        }
        buffer.writeInteger(UInt8(ascii: "\""))
        for byte in bytes {
            if byte == UInt8(ascii: "\"") { buffer.writeInteger(byte) }
            buffer.writeInteger(byte)
        }
        buffer.writeInteger(UInt8(ascii: "\""))
    }
}

extension HTTPField.Name {
    static let contentDisposition = HTTPField.Name("Content-Disposition")!
}

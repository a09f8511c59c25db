import Dispatch
import ExarCore
import ExarModel
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

/// `/api/v1/server`, the collections' figures and settings, `DELETE`, and `/metrics`.
extension ExarHTTPServer {
    func addServerRoutes(to router: Router<ExarRequestContext>) {
        router.get("/api/v1/server") { [self] _, _ in
            try await serverFigures()
        }
        router.get("/api/v1/collections") { [self] _, _ in
            // The figures of each collection, opened (and left to the cache) if it was not open.
            let figures = try await offloaded { [database] () throws(ExarError) in
                var found: [CollectionStatistics] = []
                for name in database.collectionNames() {
                    if let lease = try database.existingLease(name) { found.append(lease.collection.statistics) }
                }
                return found
            }
            var writer = JSONWriter(ByteBuffer())
            writer.raw("[")
            for (number, statistics) in figures.enumerated() {
                if number > 0 { writer.raw(",") }
                writer.collectionFigures(statistics, settings: nil)
            }
            writer.raw("]\n")
            return Self.json(writer)
        }
        router.get("/api/v1/collections/:name") { [self] _, context in
            let lease = try await existing(context)
            let collection = lease.collection
            var writer = JSONWriter(ByteBuffer())
            writer.collectionFigures(collection.statistics, settings: collection.configuration)
            writer.raw("\n")
            return Self.json(writer)
        }
        router.delete("/api/v1/collections/:name") { [self] request, context in
            try Self.requireJSONContentType(request)
            let name = try Self.collectionName(context)
            try await offloaded { [database] () throws(ExarError) in try database.drop(name) }
            var writer = JSONWriter(ByteBuffer())
            writer.raw("{")
            writer.key("dropped")
            writer.string(name)
            writer.raw("}\n")
            return Self.json(writer)
        }
        router.get("/metrics") { [self] _, _ in
            let statistics = await offloaded { [database] in database.statistics() }
            let text = metrics.render(collections: statistics, server: serverStatistics(),
                                      freeBytes: database.diskUsage().freeBytes)
            return Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                            body: ResponseBody(byteBuffer: ByteBuffer(bytes: text)))
        }
    }

    private func serverFigures() async throws -> Response {
        let (collections, usage) = await offloaded { [database] in (database.statistics(), database.diskUsage()) }
        let server = serverStatistics()
        var writer = JSONWriter(ByteBuffer())
        writer.raw("{")
        writer.key("version"); writer.string(configuration.version)
        writer.raw(","); writer.key("uptimeSeconds"); writer.number(Date().timeIntervalSince(startedAt))
        writer.raw(","); writer.key("startedAt"); writer.number(UInt64(startedAt.timeIntervalSince1970 * 1000))
        writer.raw(","); writer.key("dataBytes"); writer.number(usage.bytes)
        writer.raw(","); writer.key("diskFreeBytes"); writer.number(usage.freeBytes)
        writer.raw(","); writer.key("connections"); writer.number(server.connectionsActive)
        writer.raw(","); writer.key("connectionsOpened"); writer.number(server.connectionsOpened)
        writer.raw(","); writer.key("subscriptions"); writer.number(collections.reduce(0) { $0 + $1.subscriptionsActive })
        writer.raw(","); writer.key("collections"); writer.number(database.collectionNames().count)
        writer.raw(","); writer.key("eventsAppended"); writer.number(collections.reduce(0) { $0 + $1.eventsAppended })
        writer.raw(","); writer.key("eventsDelivered"); writer.number(collections.reduce(0) { $0 + $1.eventsDelivered })
        let publish = server.publishDurations
        writer.raw(","); writer.key("publish"); writer.raw("{")
        writer.key("count"); writer.number(publish.count)
        writer.raw(","); writer.key("p50Seconds"); writer.number(publish.quantileUpperBound(0.5))
        writer.raw(","); writer.key("p99Seconds"); writer.number(publish.quantileUpperBound(0.99))
        writer.raw("}")
        writer.raw(","); writer.key("authentication"); writer.bool(configuration.credentials != nil)
        writer.raw("}\n")
        return Self.json(writer)
    }

    // MARK: Helpers of every route

    /// A lease of the collection of the route's `:name`, opened if needed; `404` when there is
    /// none. Keep it for as long as the request uses the collection (the cache may close it after).
    func existing(_ context: ExarRequestContext) async throws -> CollectionLease {
        let name = try Self.collectionName(context)
        let found = try await offloaded { [database] () throws(ExarError) in try database.existingLease(name) }
        guard let found else { throw APIError.notFound("no collection named \(name)") }
        return found
    }

    /// The route's `:name`, percent-decoded and checked as the protocol checks collection names.
    static func collectionName(_ context: ExarRequestContext) throws -> String {
        guard let raw = context.parameters.get("name"), let name = raw.removingPercentEncoding else {
            throw APIError.parse("the collection name is not valid percent-encoded UTF-8")
        }
        try Database.validateName(name)
        return name
    }

    /// `POST` and `DELETE` take JSON only: a form of another site cannot send that type without
    /// the browser asking first, and no CORS answer lets it.
    static func requireJSONContentType(_ request: Request) throws {
        let type = request.headers[.contentType]?.split(separator: ";").first?
            .trimmingCharacters(in: .whitespaces).lowercased()
        guard type == "application/json" else {
            throw APIError(.unsupportedMediaType, "ParseError", "Content-Type must be application/json")
        }
    }

    static func json(_ writer: JSONWriter, status: HTTPResponse.Status = .ok) -> Response {
        Response(status: status, headers: [.contentType: "application/json; charset=utf-8"],
                 body: ResponseBody(byteBuffer: writer.buffer))
    }

    /// Runs blocking engine work (opening, dropping, reading files) on a Dispatch thread, not
    /// on Swift's cooperative pool.
    func offloaded<T: Sendable>(_ work: @escaping @Sendable () throws(ExarError) -> T) async throws(ExarError) -> T {
        let result: Result<T, ExarError> = await withCheckedContinuation { continuation in
            DispatchQueue.global().async {
                continuation.resume(returning: Result { () throws(ExarError) -> T in try work() })
            }
        }
        return try result.get()
    }

    func offloaded<T: Sendable>(_ work: @escaping @Sendable () -> T) async -> T {
        await withCheckedContinuation { continuation in
            DispatchQueue.global().async { continuation.resume(returning: work()) }
        }
    }
}

extension JSONWriter {
    /// A collection's figures, and its settings when given.
    mutating func collectionFigures(_ statistics: CollectionStatistics, settings: CollectionConfiguration?) {
        raw("{"); key("name"); string(statistics.name)
        raw(","); key("firstId"); number(statistics.firstId)
        raw(","); key("lastId"); number(statistics.lastId)
        raw(","); key("events"); number(statistics.events)
        raw(","); key("bytes"); number(statistics.bytesOnDisk)
        raw(","); key("segments"); number(statistics.segments)
        raw(","); key("eventsAppended"); number(statistics.eventsAppended)
        raw(","); key("eventsDelivered"); number(statistics.eventsDelivered)
        raw(","); key("subscriptions"); number(statistics.subscriptionsActive)
        raw(","); key("retentionDeletedSegments"); number(statistics.retentionDeletedSegments)
        if let settings {
            raw(","); key("settings"); raw("{")
            key("segmentSize"); number(settings.segmentSize)
            raw(","); key("indexIntervalBytes"); number(settings.indexIntervalBytes)
            raw(","); key("compression"); string(settings.compression.rawValue)
            raw(","); key("sync")
            switch settings.sync {
            case .none: string("none"); raw(","); key("syncIntervalMs"); raw("null")
            case .always: string("always"); raw(","); key("syncIntervalMs"); raw("null")
            case .interval(let milliseconds): string("interval"); raw(","); key("syncIntervalMs"); number(milliseconds)
            }
            raw(","); key("scanners"); number(settings.scanners.count)
            raw(","); key("scannerSleepMs"); number(settings.scanners.sleepTimeMilliseconds)
            raw(","); key("routingStrategy"); string(settings.routingStrategy.rawValue)
            raw(","); key("maximumEventBytes"); number(settings.maximumEventBytes)
            raw(","); key("retention"); raw("{"); key("maxBytes"); number(settings.retention.maxBytes)
            raw(","); key("maxAgeMs"); number(settings.retention.maxAgeMilliseconds); raw("}")
            raw("}")
        }
        raw("}")
    }
}

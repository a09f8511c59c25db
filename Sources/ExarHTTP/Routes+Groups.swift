import ExarCore
import ExarModel
import Foundation
import Hummingbird
import NIOCore

/// `/api/v1/collections/:name/groups`: a collection's consumer groups, their parked events and
/// their deletion.
extension ExarHTTPServer {
    func addGroupRoutes(to router: Router<ExarRequestContext>) {
        router.get("/api/v1/collections/:name/groups") { [self] _, context in
            let lease = try await existing(context)
            let collection = lease.collection
            defer { withExtendedLifetime(lease) {} }
            let groups = await offloaded { collection.groups }
            var writer = JSONWriter(ByteBuffer())
            writer.raw("[")
            for (number, group) in groups.enumerated() {
                if number > 0 { writer.raw(",") }
                writer.groupFigures(group, lastId: collection.lastId)
            }
            writer.raw("]\n")
            return Self.json(writer)
        }
        router.get("/api/v1/collections/:name/groups/:group") { [self] _, context in
            let (lease, name) = try await existingGroup(context)
            let collection = lease.collection
            defer { withExtendedLifetime(lease) {} }
            guard let group = await offloaded({ collection.group(name) }) else { throw Self.noGroup(name, collection) }
            var writer = JSONWriter(ByteBuffer())
            writer.groupFigures(group, lastId: collection.lastId)
            writer.raw("\n")
            return Self.json(writer)
        }
        router.post("/api/v1/collections/:name/groups/:group/redeliver") { [self] request, context in
            try await changeParked(request, context, key: "redelivered") { collection, name, ids in
                collection.redeliverParked(group: name, ids: ids)
            }
        }
        router.post("/api/v1/collections/:name/groups/:group/discard") { [self] request, context in
            try await changeParked(request, context, key: "discarded") { collection, name, ids in
                collection.discardParked(group: name, ids: ids)
            }
        }
        router.delete("/api/v1/collections/:name/groups/:group") { [self] request, context in
            try Self.requireJSONContentType(request)
            let (lease, name) = try await existingGroup(context)
            let collection = lease.collection
            defer { withExtendedLifetime(lease) {} }
            guard await offloaded({ collection.deleteGroup(name) }) else { throw Self.noGroup(name, collection) }
            var writer = JSONWriter(ByteBuffer())
            writer.raw("{"); writer.key("deleted"); writer.string(name); writer.raw("}\n")
            return Self.json(writer)
        }
    }

    /// `POST .../redeliver` or `.../discard` with `{"ids": [...]}` (no body, `{}` or no `ids`: every parked event).
    private func changeParked(_ request: Request, _ context: ExarRequestContext, key: StaticString,
                              _ change: @escaping @Sendable (ExarCore.Collection, String, [UInt64]?) -> Int?) async throws -> Response {
        try Self.requireJSONContentType(request)
        let (lease, name) = try await existingGroup(context)
        let collection = lease.collection
        defer { withExtendedLifetime(lease) {} }
        let body = try await request.body.collect(upTo: configuration.maxBodyBytes)
        let ids = try ParkedSelection.parse(body)
        guard let count = await offloaded({ change(collection, name, ids) }) else { throw Self.noGroup(name, collection) }
        var writer = JSONWriter(ByteBuffer())
        writer.raw("{"); writer.key(key); writer.number(count); writer.raw("}\n")
        return Self.json(writer)
    }

    /// The route's collection (which must exist) and its `:group`, checked as `Join` checks it.
    private func existingGroup(_ context: ExarRequestContext) async throws -> (CollectionLease, String) {
        let collection = try await existing(context)
        guard let raw = context.parameters.get("group"), let name = raw.removingPercentEncoding else {
            throw APIError.parse("the group name is not valid percent-encoded UTF-8")
        }
        try ExarCore.Collection.validateGroupName(name)
        return (collection, name)
    }

    private static func noGroup(_ name: String, _ collection: ExarCore.Collection) -> APIError {
        APIError.notFound("collection \(collection.name) has no group named \(name)")
    }
}

/// The body of `POST .../redeliver` and `.../discard`.
enum ParkedSelection {
    private struct Body: Decodable {
        var ids: [UInt64]?
    }

    /// At most this many ids in one body.
    static let maximumIds = 100_000

    /// The chosen ids, `nil` for every parked event.
    static func parse(_ body: ByteBuffer) throws -> [UInt64]? {
        guard body.readableBytesView.contains(where: { !$0.isJSONWhitespace }) else { return nil }
        let decoded: Body
        do {
            decoded = try JSONDecoder().decode(Body.self, from: Data(body.readableBytesView))
        } catch {
            throw APIError.parse("the body must be {\"ids\": [event ids]} or empty")
        }
        if let ids = decoded.ids, ids.count > maximumIds {
            throw APIError.parse("at most \(maximumIds) ids at once")
        }
        return decoded.ids
    }
}

extension JSONWriter {
    /// At most this many parked ids are listed; `parked` counts them all.
    static let listedParked = 1000

    /// A group's figures; its lag counts from its acknowledged floor to the collection's last id.
    mutating func groupFigures(_ group: GroupStatistics, lastId: UInt64) {
        raw("{"); key("name"); string(group.name)
        raw(","); key("tag")
        if let tag = group.tag { string(tag) } else { raw("null") }
        raw(","); key("ackedFloor"); number(group.ackedFloor)
        raw(","); key("position"); number(group.position)
        raw(","); key("lag"); number(lastId > group.ackedFloor ? lastId - group.ackedFloor : 0)
        raw(","); key("members"); number(group.members)
        raw(","); key("inFlight"); number(group.inFlight)
        raw(","); key("waiting"); number(group.waiting)
        raw(","); key("parked"); number(group.parked.count)
        raw(","); key("parkedEvents"); raw("[")
        for (number, parked) in group.parked.prefix(Self.listedParked).enumerated() {
            if number > 0 { raw(",") }
            raw("{"); key("id"); self.number(parked.id)
            raw(","); key("deliveries"); self.number(UInt64(parked.deliveries)); raw("}")
        }
        raw("]")
        raw(","); key("lost"); number(group.lost)
        raw(","); key("redelivered"); number(group.redelivered)
        raw(","); key("parkedTotal"); number(group.parkedTotal)
        raw("}")
    }
}

import ExarCore
import ExarModel

/// The query parameters of `GET .../events`.
struct EventsParameters: Sendable {
    enum Format: String, Sendable { case json, ndjson, csv }

    var offset: UInt64 = 0
    /// `since`: a time (ms) to start at instead of an offset, resolved by `Locate`.
    var since: UInt64?
    var limit: UInt64?
    var tag: String?
    var descending = false
    var format = Format.json

    init(_ query: (String) -> Substring?) throws {
        if let text = query("offset") {
            guard let value = UInt64(text) else { throw APIError.parse("offset must be a whole number, got '\(text)'") }
            offset = value
        }
        if let text = query("limit") {
            guard let value = UInt64(text) else { throw APIError.parse("limit must be a whole number, got '\(text)'") }
            limit = value
        }
        if let text = query("tag"), !text.isEmpty { tag = String(text) }
        if let text = query("order") {
            switch text {
            case "asc": descending = false
            case "desc": descending = true
            default: throw APIError.parse("order must be asc or desc, got '\(text)'")
            }
        }
        if let text = query("since") {
            guard let value = UInt64(text) else {
                throw APIError.parse("since must be a time in ms since the Unix epoch, got '\(text)'")
            }
            guard query("offset") == nil else { throw APIError.parse("give offset or since, not both") }
            guard !descending else { throw APIError.parse("since reads forwards: it cannot be used with order=desc") }
            since = value
        }
        if let text = query("format") {
            guard let value = Format(rawValue: String(text)) else {
                throw APIError.parse("format must be json, ndjson or csv, got '\(text)'")
            }
            format = value
        }
    }
}

/// Reading a collection forwards (as a subscription does) or backwards (newest first, in windows
/// of ids read forwards and handed out in reverse).
enum EventPaging {
    /// Events with an id above `after`, at most `limit`, oldest first, until `visit` says stop.
    static func readAscending(_ collection: ExarCore.Collection, after: UInt64, limit: UInt64, tag: String?,
                              _ visit: (EventView) -> Bool) throws(ExarError) {
        var going = true
        try collection.read(Query(offset: after, limit: limit, tag: tag)) { event in
            if going { going = visit(event) }
        }
    }

    /// Events with an id below `before` (`0`: every event), newest first, until `visit` says stop.
    static func readDescending(_ collection: ExarCore.Collection, before: UInt64, tag: String?,
                               _ visit: (EventView) -> Bool) throws(ExarError) {
        let first = collection.firstId
        guard first > 0 else { return }
        var high = before == 0 ? collection.lastId : min(before - 1, collection.lastId)
        var window: UInt64 = 256
        while high >= first && high > 0 {
            let low = high - min(window, high - first + 1) + 1
            var copies: [(id: UInt64, timestamp: UInt64, tags: [UInt8], data: [UInt8])] = []
            // The window is a range of ids: read through `high`, not `high - low + 1` matches.
            try collection.read(Query(offset: low - 1, tag: tag), through: high) { event in
                copies.append((event.id, event.timestamp, Array(event.tags), Array(event.data)))
            }
            for copy in copies.reversed() {
                let going = copy.tags.withUnsafeBytes { tags in
                    copy.data.withUnsafeBytes { data in
                        visit(EventView(id: copy.id, timestamp: copy.timestamp, tags: tags, data: data))
                    }
                }
                if !going { return }
            }
            guard low > first else { return }
            high = low - 1
            // A rare tag: look further back each time, up to a bound on what one window holds.
            if copies.count < 64 { window = min(window * 4, 1 << 16) }
        }
    }
}

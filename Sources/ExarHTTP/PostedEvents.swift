import ExarCore
import ExarModel
import Foundation
import NIOCore

/// The body of `POST .../events`: one event object or an array of them, checked as the protocol
/// checks a `Publish` (the same texts), before anything is stored.
enum PostedEvents {
    /// An event in the protocol's shape: the tags as one space-separated field.
    struct Event: Sendable {
        var tags: [UInt8]
        var data: [UInt8]
        var timestamp: UInt64
        /// `expect: {tag, id}`: stored only if the last event carrying `tag` is `id` (`0`: none).
        var expect: PublishCondition?
    }

    /// At most this many events in one body.
    static let maximumEvents = 10_000

    /// The events, and whether the body was a single object (answered `{id}`, not `{ids}`).
    static func parse(_ body: ByteBuffer, counters: PublishCounters) throws -> ([Event], single: Bool) {
        let data = Data(body.readableBytesView)
        let decoder = JSONDecoder()
        let posted: [Posted]
        let single: Bool
        do {
            let first = data.first { !$0.isJSONWhitespace }
            if first == UInt8(ascii: "[") {
                posted = try decoder.decode([Posted].self, from: data)
                single = false
            } else {
                posted = [try decoder.decode(Posted.self, from: data)]
                single = true
            }
        } catch let error as APIError {
            counters.rejected(.parse)
            throw error
        } catch let error as DecodingError {
            counters.rejected(.parse)
            throw APIError.parse(Self.explain(error))
        } catch {
            counters.rejected(.parse)
            throw APIError.parse("the body is not valid JSON")
        }
        guard !posted.isEmpty else {
            counters.rejected(.parse)
            throw APIError.parse("the array of events is empty")
        }
        guard posted.count <= maximumEvents else {
            counters.rejected(.tooLarge, count: UInt64(posted.count))
            throw APIError(.contentTooLarge, "ValidationError", "at most \(maximumEvents) events in one request")
        }
        var events: [Event] = []
        events.reserveCapacity(posted.count)
        if !single && posted.contains(where: { $0.expect != nil }) {
            counters.rejected(.parse, count: UInt64(posted.count))
            throw APIError.parse("expect is for one event: post it as an object, not in an array")
        }
        for (number, event) in posted.enumerated() {
            do {
                events.append(try event.validated())
            } catch let error as APIError {
                counters.rejected(.validation, count: UInt64(posted.count))
                var located = error
                if !single { located.message = "event \(number): \(error.message)" }
                throw located
            }
        }
        return (events, single)
    }

    /// A decoding error in words, with where it happened (`[2].tags`).
    private static func explain(_ error: DecodingError) -> String {
        func path(_ keys: [any CodingKey]) -> String {
            keys.map { $0.intValue.map { "[\($0)]" } ?? ".\($0.stringValue)" }.joined().trimmingPrefix(".").description
        }
        switch error {
        case .keyNotFound(let key, let context):
            let at = path(context.codingPath)
            return "\(key.stringValue) is missing" + (at.isEmpty ? "" : " in \(at)")
        case .typeMismatch(_, let context), .valueNotFound(_, let context):
            let at = path(context.codingPath)
            switch context.codingPath.last?.stringValue {
            case "tags": return "\(at): tags must be an array of strings or one space-separated string"
            case "data": return "\(at): data must be a string"
            case "timestamp": return "\(at): timestamp must be a whole number of milliseconds since 1970"
            default: return "an event must be an object with tags, data and an optional timestamp" + (at.isEmpty ? "" : " (at \(at))")
            }
        case .dataCorrupted(let context):
            if context.codingPath.last?.stringValue == "timestamp" {
                return "\(path(context.codingPath)): timestamp must be a whole number of milliseconds since 1970"
            }
            return "the body is not valid JSON"
        @unknown default:
            return "the body is not valid JSON"
        }
    }

    /// An event as posted.
    private struct Posted: Decodable {
        var tags: Tags
        var data: String
        var timestamp: UInt64?
        var expect: Expect?

        /// `{"tag": "order-7", "id": 3}`.
        struct Expect: Decodable {
            var tag: String
            var id: UInt64

            enum CodingKeys: String, CodingKey { case tag, id }

            init(from decoder: any Decoder) throws {
                let container: KeyedDecodingContainer<CodingKeys>
                do {
                    container = try decoder.container(keyedBy: CodingKeys.self)
                    tag = try container.decode(String.self, forKey: .tag)
                } catch {
                    throw APIError.parse("expect must be an object {\"tag\": \"...\", \"id\": N}")
                }
                guard let id = try? container.decode(UInt64.self, forKey: .id) else {
                    throw APIError.parse("expect.id must be a whole number, the id of the tag's last event (0: none)")
                }
                self.id = id
            }
        }

        enum CodingKeys: String, CodingKey { case tags, data, timestamp, expect }

        init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            tags = try container.decode(Tags.self, forKey: .tags)
            data = try container.decode(String.self, forKey: .data)
            // A negative or fractional number is not a timestamp: say so, not "invalid JSON".
            if try !container.contains(.timestamp) || container.decodeNil(forKey: .timestamp) {
                timestamp = nil
            } else if let value = try? container.decode(UInt64.self, forKey: .timestamp) {
                timestamp = value
            } else {
                throw APIError.parse("timestamp must be a whole number of milliseconds since 1970")
            }
            if try container.contains(.expect) && !container.decodeNil(forKey: .expect) {
                expect = try container.decode(Expect.self, forKey: .expect)
            }
        }

        enum Tags: Decodable {
            case list([String])
            case field(String)

            init(from decoder: any Decoder) throws {
                let container = try decoder.singleValueContainer()
                if let field = try? container.decode(String.self) {
                    self = .field(field)
                } else {
                    self = .list(try container.decode([String].self))
                }
            }
        }

        func validated() throws -> Event {
            let field: String
            switch tags {
            case .field(let text):
                field = text
            case .list(let names):
                guard !names.isEmpty else { throw APIError(.badRequest, "ValidationError", ValidationMessage.noTags) }
                if names.contains(where: { $0.contains(" ") }) {
                    throw APIError(.badRequest, "ValidationError", "a tag must not contain spaces")
                }
                field = names.joined(separator: " ")
            }
            let tagBytes = Array(field.utf8)
            let dataBytes = Array(data.utf8)
            do {
                try EventValidation.validateTagsField(tagBytes)
                try EventValidation.validateData(dataBytes)
            } catch {
                guard case .validation(let message) = error else { throw APIError.parse(error.description) }
                throw APIError(.badRequest, "ValidationError", message)
            }
            var condition: PublishCondition?
            if let expect {
                do {
                    condition = try PublishCondition(tag: expect.tag, expectedId: expect.id)
                } catch {
                    throw APIError(.badRequest, "ValidationError", "expect.tag must be one tag, not empty and without spaces")
                }
            }
            return Event(tags: tagBytes, data: dataBytes, timestamp: timestamp ?? 0, expect: condition)
        }
    }
}

extension UInt8 {
    var isJSONWhitespace: Bool {
        self == 0x20 || self == 0x09 || self == 0x0A || self == 0x0D
    }
}

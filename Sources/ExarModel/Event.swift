/// One event of a collection: an id, a timestamp, its tags and its data.
///
/// Ids are given by the collection when the event is published (ids of events that have not been
/// published yet are `0`). Tags are single words (no spaces, tabs or newlines); data is text
/// without newlines, as the wire protocol carries it on one line.
public struct Event: Sendable, Hashable {
    /// The id given by the collection, starting at 1; `0` before publishing.
    public var id: UInt64
    /// Milliseconds since the Unix epoch; `0` asks the collection to stamp the publish time.
    public var timestamp: UInt64
    /// The tags of the event, at least one, none empty.
    public var tags: [String]
    /// The payload.
    public var data: String

    /// Creates an event.
    /// - Parameters:
    ///   - id: the id, `0` for an event yet to be published.
    ///   - timestamp: milliseconds since the Unix epoch, `0` to let the collection stamp it.
    ///   - tags: the tags.
    ///   - data: the payload.
    public init(id: UInt64 = 0, timestamp: UInt64 = 0, tags: [String], data: String) {
        self.id = id
        self.timestamp = timestamp
        self.tags = tags
        self.data = data
    }

    /// Returns the event itself when it is valid.
    /// - Throws: ``ExarError/validation(_:)`` with the message of the protocol.
    public func validated() throws(ExarError) -> Event {
        if tags.isEmpty {
            throw .validation(ValidationMessage.noTags)
        }
        for tag in tags {
            try EventValidation.validateTag(Array(tag.utf8))
        }
        try EventValidation.validateData(Array(data.utf8))
        return self
    }
}

/// The validation messages, byte for byte as the protocol sends them.
public enum ValidationMessage {
    /// An event without any tag.
    public static let noTags = "event must contain at least one tag"
    /// An empty tag (an empty tags field, a leading, trailing or doubled space).
    public static let emptyTag = "event must not contain empty tags"
    /// A tag containing a tab, newline or carriage return (an extension of ours).
    public static let badTagCharacter = "event tags must not contain tabs or newlines"
    /// Data containing a newline, which cannot travel on one protocol line (an extension of ours).
    public static let newlineInData = "event data must not contain newlines"
}

/// Validation of events in their wire shape: tags as one space-separated field, data as bytes.
public enum EventValidation {
    /// Validates the space-separated tags field of a `Publish` line.
    /// - Throws: ``ExarError/validation(_:)`` for an empty field or an empty tag.
    @inlinable
    public static func validateTagsField<Bytes: Collection<UInt8>>(_ field: Bytes) throws(ExarError) {
        if field.isEmpty {
            throw .validation(ValidationMessage.emptyTag)
        }
        var previousWasSpace = true
        for byte in field {
            switch byte {
            case UInt8(ascii: " "):
                if previousWasSpace { throw .validation(ValidationMessage.emptyTag) }
                previousWasSpace = true
            // A TAB or newline would split the line an event is sent in; a `\r` cannot (tags are
            // never at a line's end), and the original stored it.
            case UInt8(ascii: "\t"), UInt8(ascii: "\n"):
                throw .validation(ValidationMessage.badTagCharacter)
            default:
                previousWasSpace = false
            }
        }
        if previousWasSpace {
            throw .validation(ValidationMessage.emptyTag)
        }
    }

    /// Validates one tag given through the library API.
    /// - Throws: ``ExarError/validation(_:)`` for an empty tag or one with whitespace.
    public static func validateTag(_ tag: [UInt8]) throws(ExarError) {
        if tag.isEmpty {
            throw .validation(ValidationMessage.emptyTag)
        }
        if tag.contains(UInt8(ascii: " ")) {
            // A space would split the tag in two on the wire: the protocol sees an empty tag or two tags.
            throw .validation(ValidationMessage.emptyTag)
        }
        for byte in tag where byte == UInt8(ascii: "\t") || byte == UInt8(ascii: "\n") {
            throw .validation(ValidationMessage.badTagCharacter)
        }
    }

    /// Validates event data: no newline may appear in it.
    /// - Throws: ``ExarError/validation(_:)`` for a newline.
    @inlinable
    public static func validateData<Bytes: Collection<UInt8>>(_ data: Bytes) throws(ExarError) {
        if data.contains(UInt8(ascii: "\n")) {
            throw .validation(ValidationMessage.newlineInData)
        }
    }
}

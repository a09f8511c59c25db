import ExarModel

extension ExarClient {
    /// What a conditional publish expects (``ExarClient/publish(_:expecting:)``): the id of the
    /// last event carrying a tag, as when the tag is an aggregate's stream (`order-7`).
    public struct Expectation: Sendable, Hashable {
        /// One tag (no spaces).
        public var tag: String
        /// The id of the last event carrying `tag`; `0`: no event carries it yet.
        public var lastId: UInt64

        public init(tag: String, lastId: UInt64) {
            self.tag = tag
            self.lastId = lastId
        }

        /// Expects that no event carries `tag` yet.
        public static func noEvent(_ tag: String) -> Expectation { Expectation(tag: tag, lastId: 0) }
    }
}

/// A conditional publish lost: another event of the tag came first (`Error\tConflictError\t<id>`).
/// Nothing was stored; read what `actualId` says happened, then publish expecting it.
public struct ConflictError: Error, Sendable, Hashable, CustomStringConvertible {
    /// What the publish expected.
    public let expectation: ExarClient.Expectation
    /// The id of the last event carrying the tag when the publish was checked (`0`: none).
    public let actualId: UInt64

    public init(expectation: ExarClient.Expectation, actualId: UInt64) {
        self.expectation = expectation
        self.actualId = actualId
    }

    public var description: String {
        "ConflictError: the last event of tag \(expectation.tag) is \(actualId), not \(expectation.lastId)"
    }
}

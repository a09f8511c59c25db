/// What a subscription asks for: where to start, how many, which tag, and whether to stay live.
public struct Query: Sendable, Hashable {
    /// Keep delivering new events after the existing ones.
    public var live: Bool
    /// Exclusive: events with an id greater than `offset` are delivered; `0` is from the start.
    public var offset: UInt64
    /// The number of events to deliver (after the tag filter); `nil` (or `0` on the wire) is no limit.
    public var limit: UInt64?
    /// Only events carrying this exact tag.
    public var tag: String?

    /// Creates a query.
    public init(live: Bool = false, offset: UInt64 = 0, limit: UInt64? = nil, tag: String? = nil) {
        self.live = live
        self.offset = offset
        self.limit = limit == 0 ? nil : limit
        self.tag = tag
    }

    /// Every event now stored, then the end of the stream.
    public static let all = Query()
}

/// What a consumer group looks like now.
public struct GroupStatistics: Sendable, Equatable {
    public var name: String
    /// The tag it reads, `nil`: every event.
    public var tag: String?
    /// Every event up to this id is acknowledged, parked or lost.
    public var ackedFloor: UInt64
    /// The last id taken from the log (delivered at least once, or skipped for its tag).
    public var position: UInt64
    public var members: Int
    /// Events held by members, unacknowledged.
    public var inFlight: Int
    /// Events waiting to be delivered (again).
    public var waiting: Int
    /// Parked ids, ascending, and their number of deliveries.
    public var parked: [(id: UInt64, deliveries: UInt32)]
    /// Events that retention deleted before the group had them acknowledged.
    public var lost: UInt64
    /// Deliveries after an event's first.
    public var redelivered: UInt64
    /// Events parked since the group began.
    public var parkedTotal: UInt64

    public static func == (lhs: Self, rhs: Self) -> Bool {
        lhs.name == rhs.name && lhs.tag == rhs.tag && lhs.ackedFloor == rhs.ackedFloor && lhs.position == rhs.position
            && lhs.members == rhs.members && lhs.inFlight == rhs.inFlight && lhs.waiting == rhs.waiting
            && lhs.parked.map(\.id) == rhs.parked.map(\.id) && lhs.lost == rhs.lost
            && lhs.redelivered == rhs.redelivered && lhs.parkedTotal == rhs.parkedTotal
    }
}

extension ConsumerGroup {
    var statistics: GroupStatistics {
        readState { state, members in
            GroupStatistics(
                name: name, tag: state.tag.map { String(decoding: $0, as: UTF8.self) }, ackedFloor: state.ackedFloor(),
                position: state.readNext - 1, members: members.count, inFlight: members.reduce(0) { $0 + $1.inFlight.count },
                waiting: state.pending.count - members.reduce(0) { $0 + $1.inFlight.count },
                parked: state.parked.sorted { $0.key < $1.key }.map { (id: $0.key, deliveries: $0.value) },
                lost: state.lost, redelivered: state.redelivered, parkedTotal: state.parkedTotal)
        }
    }
}

extension ConsumerGroup {
    /// Whether any member is joined (the collection's cache keeps such a collection open).
    var hasMembers: Bool {
        readState { _, members in !members.isEmpty }
    }
}

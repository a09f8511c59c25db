import ExarModel
import ExarNet
import NIOConcurrencyHelpers
import NIOCore

extension ExarClient {
    /// Joins consumer group `group` of the connection's collection (`Join`, docs/PROTOCOL.md,
    /// "Consumer groups"): the group is made, reading the events after `offset` (carrying `tag`,
    /// if given), unless it exists; this member then gets its share of the group's events, at most
    /// `maxInFlight` unacknowledged at a time (`0`: the server's 1000).
    ///
    /// Iterate the returned sequence and ``GroupSubscription/ack(_:)`` each event once handled;
    /// acknowledgements are cumulative (one acknowledges this member's events up to its id), so
    /// acknowledge in the order the events came. Leaving the loop, cancelling its task or dropping
    /// the sequence leaves the group: the events this member has not acknowledged go to the others.
    /// - Throws: the server's error (`SubscriptionError` for a bad name, a `maxInFlight` above
    ///   100,000 or a tag other than the group's), or the connection's error.
    public func join(group: String, offset: UInt64 = 0, maxInFlight: UInt64 = 0, tag: String? = nil) async throws
        -> GroupSubscription
    {
        try Self.checkField(group, "group name")
        if let tag { try Self.checkLine(tag, "tag") }
        let buffer = SubscriptionBuffer(limits: .standard, handler: handler, eventLoop: channel.eventLoop)
        let subscription = GroupSubscription(Subscription(buffer), acknowledger: Acknowledger(buffer, handler, channel.eventLoop))
        var line = channel.allocator.buffer(capacity: 64)
        line.writeJoin(group: group, offset: offset, maxInFlight: maxInFlight, tag: tag)
        let answer = try await send(line, expecting: .subscription(buffer))[0]
        switch answer {
        case .subscribed: return subscription
        case .error(let error): throw error
        default: throw ExarError.subscription("unexpected answer \(answer)")
        }
    }

    /// A member's events of a consumer group, and their acknowledgement.
    ///
    /// An event that is not acknowledged within the group's `ack_wait_in_ms`, or when the member
    /// leaves, is delivered again (to this member or another), so a handler must tolerate seeing
    /// an event twice. ``ack(_:)`` batches: the acknowledgements made while the connection's event
    /// loop is busy go out as one `Ack` line of the highest id, plus one line for each lower id
    /// acknowledged after a higher one (a redelivered event: the server's `Ack` of an id covers
    /// only events handed out before it).
    public struct GroupSubscription: AsyncSequence, Sendable {
        public typealias Element = Event
        public typealias AsyncIterator = Subscription.AsyncIterator

        private let events: Subscription
        private let acknowledger: Acknowledger

        init(_ events: Subscription, acknowledger: Acknowledger) {
            self.events = events
            self.acknowledger = acknowledger
        }

        public func makeAsyncIterator() -> Subscription.AsyncIterator {
            events.makeAsyncIterator()
        }

        /// Acknowledges this member's events up to `id` that came before it. Cheap: in-order
        /// acknowledgements send at most one line per turn of the event loop.
        public func ack(_ id: UInt64) {
            acknowledger.ack(id)
        }

        /// Acknowledges `event` and this member's earlier events.
        public func ack(_ event: Event) {
            acknowledger.ack(event.id)
        }
    }
}

/// Coalesces acknowledgements: the highest id asked for since the last `Ack` line goes out on the
/// next turn of the connection's event loop, and each id acknowledged below the highest one asked
/// for before it (an event delivered again after higher ones) goes out as a line of its own: the
/// server would not count it under the higher id, which was handed out before it.
final class Acknowledger: Sendable {
    private struct State {
        var highest: UInt64 = 0
        var sent: UInt64 = 0
        var lower: [UInt64] = []
        var scheduled = false
    }

    /// Lower ids kept per turn; more are dropped (their events come again after the deadline).
    static let maximumLower = 4096

    /// A pthread lock (NIOLockedValueBox): the thread sanitizer does not see Synchronization's
    /// futex-based Mutex order its two sides, and reported a race.
    private let state = NIOLockedValueBox(State())
    private let buffer: SubscriptionBuffer
    private let handler: NIOLoopBound<ClientHandler>
    private let eventLoop: any EventLoop

    init(_ buffer: SubscriptionBuffer, _ handler: NIOLoopBound<ClientHandler>, _ eventLoop: any EventLoop) {
        self.buffer = buffer
        self.handler = handler
        self.eventLoop = eventLoop
    }

    func ack(_ id: UInt64) {
        let schedule = state.withLockedValue { state -> Bool in
            if id > state.highest {
                state.highest = id
            } else if id > 0 && state.lower.count < Self.maximumLower {
                state.lower.append(id)
            } else {
                return false
            }
            defer { state.scheduled = true }
            return !state.scheduled
        }
        guard schedule else { return }
        eventLoop.execute { [self] in
            let (highest, lower) = state.withLockedValue { state -> (UInt64?, [UInt64]) in
                state.scheduled = false
                let lower = state.lower
                state.lower.removeAll()
                guard state.highest > state.sent else { return (nil, lower) }
                state.sent = state.highest
                return (state.highest, lower)
            }
            if let highest { handler.value.acknowledge(upTo: highest, buffer) }
            for id in lower { handler.value.acknowledge(upTo: id, buffer) }
        }
    }
}

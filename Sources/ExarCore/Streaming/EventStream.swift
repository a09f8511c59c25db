import ExarModel
import Synchronization

/// The events of a subscription as an `AsyncSequence`, buffered up to a bound: when the buffer is
/// full the subscription pauses until the consumer has taken half of it.
public final class EventStream: AsyncSequence, Sendable {
    public typealias Element = Event

    private struct State {
        var buffer: [Event] = []
        var head = 0
        var end: SubscriptionEnd?
        var waiter: CheckedContinuation<Event?, any Error>?
        var paused = false
    }

    private let state = Locked(State())
    private let capacity: Int
    private let subscriptionBox = Locked<Subscription?>(nil)

    init(capacity: Int) {
        self.capacity = Swift.max(capacity, 2)
    }

    func attach(_ subscription: Subscription) {
        subscriptionBox.withLock { $0 = subscription }
    }

    /// Stops the subscription; the iterator then ends.
    public func cancel() {
        // Let go of the subscription (it holds this stream as its sink) as it stops.
        subscriptionBox.withLock { box in
            defer { box = nil }
            return box
        }?.cancel()
        let waiter = state.withLock { state -> CheckedContinuation<Event?, any Error>? in
            if state.end == nil { state.end = .endOfStream }
            defer { state.waiter = nil }
            return state.waiter
        }
        waiter?.resume(returning: nil)
    }

    public struct AsyncIterator: AsyncIteratorProtocol {
        let stream: EventStream

        /// The next event, `nil` at the end of the stream.
        /// - Throws: ``ExarError/eventStream(_:)`` `Closed` when the database closed under the subscription.
        public mutating func next() async throws -> Event? {
            try await stream.next()
        }
    }

    public func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(stream: self)
    }

    private enum Step {
        case event(Event, resume: Bool)
        case end(SubscriptionEnd)
        case wait
    }

    /// Takes the next buffered event (compacting the buffer, and ending the pause once half of
    /// it is consumed), or the end; otherwise registers `waiter`, when given, for the next event.
    private func takeStep(registering waiter: CheckedContinuation<Event?, any Error>?) -> Step {
        let step = state.withLock { state -> Step in
            if state.head < state.buffer.count {
                let event = state.buffer[state.head]
                state.head += 1
                if state.head == state.buffer.count {
                    state.buffer.removeAll(keepingCapacity: true)
                    state.head = 0
                }
                var resume = false
                if state.paused && state.buffer.count - state.head <= capacity / 2 {
                    state.paused = false
                    resume = true
                }
                return .event(event, resume: resume)
            }
            if let end = state.end { return .end(end) }
            if let waiter { state.waiter = waiter }
            return .wait
        }
        if case .event(_, resume: true) = step {
            subscriptionBox.withLock { $0 }?.resume()
        }
        return step
    }

    private func next() async throws -> Event? {
        switch takeStep(registering: nil) {
        case .event(let event, _):
            return event
        case .end(let end):
            if end == .closed { throw ExarError.eventStream(.closed) }
            return nil
        case .wait:
            return try await withTaskCancellationHandler {
                try await withCheckedThrowingContinuation { continuation in
                    switch takeStep(registering: continuation) {
                    case .event(let event, _): continuation.resume(returning: event)
                    case .end(.closed): continuation.resume(throwing: ExarError.eventStream(.closed))
                    case .end: continuation.resume(returning: nil)
                    case .wait: break  // registered: `receive` or `finish` resumes it
                    }
                }
            } onCancel: {
                cancel()
            }
        }
    }
}

extension EventStream: SubscriptionSink {
    public func receive(_ view: EventView) -> Bool {
        let event = view.makeEvent()
        let (waiter, wantsMore) = state.withLock { state -> (CheckedContinuation<Event?, any Error>?, Bool) in
            if let waiter = state.waiter {
                state.waiter = nil
                return (waiter, true)
            }
            state.buffer.append(event)
            if state.buffer.count - state.head >= capacity {
                state.paused = true
                return (nil, false)
            }
            return (nil, true)
        }
        waiter?.resume(returning: event)
        return wantsMore
    }

    public func flush() {}

    public func finish(_ end: SubscriptionEnd) {
        subscriptionBox.withLock { $0 = nil }
        let waiter = state.withLock { state -> CheckedContinuation<Event?, any Error>? in
            if state.end == nil { state.end = end }
            defer { state.waiter = nil }
            return state.waiter
        }
        if end == .closed {
            waiter?.resume(throwing: ExarError.eventStream(.closed))
        } else {
            waiter?.resume(returning: nil)
        }
    }
}

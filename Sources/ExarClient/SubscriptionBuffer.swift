import ExarModel
import NIOCore

/// The events of one subscription on their way from the connection's event loop (the producer)
/// to the one task that iterates them (the consumer), bounded.
///
/// Above the high watermark (in events or in bytes) the producer is told to stop, and the
/// handler stops asking NIO to read the socket, so the server's own demand pauses the stream.
/// When the consumer has taken the buffer below the low watermark the handler reads again.
/// When the consumer goes away (its task is cancelled, its iterator or the sequence is dropped)
/// the buffer empties and tells the handler, which unsubscribes.
final class SubscriptionBuffer: Sendable {
    /// The watermarks: reading stops at `high*` (either), and starts again at or below `low*` (both).
    struct Limits: Sendable {
        var highEvents: Int
        var highBytes: Int
        var lowEvents: Int
        var lowBytes: Int

        /// 4096 events or 4 MiB; reading resumes at 1024 events and 1 MiB.
        static let standard = Limits(highEvents: 4096, highBytes: 4 << 20, lowEvents: 1024, lowBytes: 1 << 20)
    }

    /// How the stream ended, as the handler saw it.
    private enum End {
        case finished
        case failed(any Error)
    }

    private struct State {
        var events = CircularBuffer<(event: Event, size: Int)>()
        var bytes = 0
        var received = 0
        var end: End?
        /// The consumer went away: events are dropped from now on.
        var terminated = false
        /// The producer was told to stop and has not been resumed.
        var stopped = false
        var waiting: CheckedContinuation<Event?, any Error>?
        var iteratorMade = false
    }

    private let state = Locked(State())
    private let limits: Limits
    private let eventLoop: any EventLoop
    private let handler: NIOLoopBound<ClientHandler>

    init(limits: Limits, handler: NIOLoopBound<ClientHandler>, eventLoop: any EventLoop) {
        self.limits = limits
        self.handler = handler
        self.eventLoop = eventLoop
    }

    // MARK: Producer (the event loop)

    /// Adds an event of about `size` bytes; at the high watermark the producer is stopped
    /// (``wantsMore`` is `false`) until the consumer has taken the buffer down to the low one.
    func yield(_ event: Event, size: Int) {
        let waiting: CheckedContinuation<Event?, any Error>? = state.withLock { state in
            state.received += 1
            if state.terminated { return nil }
            if let waiting = state.waiting {
                state.waiting = nil
                return waiting
            }
            state.events.append((event, size))
            state.bytes += size
            if state.events.count >= limits.highEvents || state.bytes >= limits.highBytes {
                state.stopped = true
            }
            return nil
        }
        waiting?.resume(returning: event)
    }

    /// The stream ended; the consumer gets the events still buffered, then the end or `error`.
    func finish(throwing error: (any Error)? = nil) {
        let waiting: CheckedContinuation<Event?, any Error>? = state.withLock { state in
            guard state.end == nil else { return nil }
            state.end = error.map { .failed($0) } ?? .finished
            state.stopped = false
            defer { state.waiting = nil }
            return state.waiting
        }
        if let error {
            waiting?.resume(throwing: error)
        } else {
            waiting?.resume(returning: nil)
        }
    }

    /// Whether the producer may go on (it was not stopped, or it was resumed since).
    var wantsMore: Bool {
        state.withLock { !$0.stopped }
    }

    /// Events buffered and not yet taken by the consumer.
    var bufferedEvents: Int {
        state.withLock { $0.events.count }
    }

    /// The approximate bytes of the events buffered.
    var bufferedBytes: Int {
        state.withLock { $0.bytes }
    }

    /// Events the handler has handed over since the subscription started (dropped ones included).
    var receivedEvents: Int {
        state.withLock { $0.received }
    }

    // MARK: Consumer (the iterating task)

    func makeIterator() {
        state.withLock { state in
            precondition(!state.iteratorMade, "a subscription can be iterated only once")
            state.iteratorMade = true
        }
    }

    /// The sequence was dropped: without an iterator nobody will consume.
    func sequenceDropped() {
        let unused = state.withLock { !$0.iteratorMade }
        if unused { terminate() }
    }

    /// The next event, or `nil` at the end of the stream or once the task is cancelled.
    func next() async throws -> Event? {
        if Task.isCancelled {
            terminate()
            return nil
        }
        // The fast path, without a continuation, when an event is waiting.
        switch take() {
        case .event(let event): return event
        case .end(let result): return try result.get()
        case .empty: break
        }
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Event?, any Error>) in
                switch take(orWait: continuation) {
                case .event(let event): continuation.resume(returning: event)
                case .end(let result): continuation.resume(with: result)
                case .empty: break
                }
            }
        } onCancel: {
            terminate()
        }
    }

    private enum Taken {
        case event(Event)
        case end(Result<Event?, any Error>)
        case empty
    }

    private func take(orWait continuation: CheckedContinuation<Event?, any Error>? = nil) -> Taken {
        let (taken, resume): (Taken, Bool) = state.withLock { state in
            if let (event, size) = state.events.popFirst() {
                state.bytes -= size
                let resume = state.stopped && state.events.count <= limits.lowEvents && state.bytes <= limits.lowBytes
                if resume { state.stopped = false }
                return (.event(event), resume)
            }
            if state.terminated { return (.end(.success(nil)), false) }
            switch state.end {
            case .failed(let error):
                state.end = .finished  // the error once, then the end
                return (.end(.failure(error)), false)
            case .finished:
                return (.end(.success(nil)), false)
            case nil:
                if let continuation {
                    precondition(state.waiting == nil, "a subscription can be iterated by one task at a time")
                    state.waiting = continuation
                }
                return (.empty, false)
            }
        }
        if resume {
            let handler = self.handler
            eventLoop.execute { handler.value.subscriptionHasRoom(self) }
        }
        return taken
    }

    /// The consumer is gone: drop what is buffered, end a waiting `next()`, and let the handler
    /// unsubscribe if the stream still runs.
    func terminate() {
        let (waiting, stillRunning): (CheckedContinuation<Event?, any Error>?, Bool) = state.withLock { state in
            guard !state.terminated else { return (nil, false) }
            state.terminated = true
            state.events.removeAll()
            state.bytes = 0
            state.stopped = false
            defer { state.waiting = nil }
            return (state.waiting, state.end == nil)
        }
        waiting?.resume(returning: nil)
        if stillRunning {
            let handler = self.handler
            eventLoop.execute { handler.value.subscriptionAbandoned(self) }
        }
    }
}

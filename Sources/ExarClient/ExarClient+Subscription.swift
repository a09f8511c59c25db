import ExarModel

extension ExarClient {
    /// The events of one subscription, in id order, ending at the server's `EndOfEventStream`.
    ///
    /// The client buffers a bounded number of events (4096, or 4 MiB) and stops reading the
    /// connection while the buffer is full, so a slow consumer makes the server pause the stream
    /// instead of filling the client's memory.
    ///
    /// Iterate it once, from one task. Leaving the loop early (`break`, a thrown error), cancelling
    /// the iterating task, or dropping the sequence unsubscribes: the client sends `Unsubscribe`,
    /// discards the events still on their way, and the connection serves later requests as usual.
    /// On cancellation the sequence ends (`next()` returns `nil`) rather than throwing.
    public struct Subscription: AsyncSequence, Sendable {
        /// An event of the subscription.
        public typealias Element = Event

        private let storage: SequenceStorage

        init(_ buffer: SubscriptionBuffer) {
            storage = SequenceStorage(buffer)
        }

        /// Events received and not yet taken by the iterator.
        package var bufferedEvents: Int { storage.buffer.bufferedEvents }
        /// The approximate bytes of the events received and not yet taken by the iterator.
        package var bufferedBytes: Int { storage.buffer.bufferedBytes }
        /// Events read from the connection for this subscription so far.
        package var receivedEvents: Int { storage.buffer.receivedEvents }

        /// Returns the iterator; a subscription has only one.
        public func makeAsyncIterator() -> AsyncIterator {
            storage.buffer.makeIterator()
            return AsyncIterator(storage: IteratorStorage(storage.buffer))
        }

        /// Iterates a subscription's events.
        public struct AsyncIterator: AsyncIteratorProtocol {
            private let storage: IteratorStorage

            fileprivate init(storage: IteratorStorage) {
                self.storage = storage
            }

            /// The next event; `nil` at the end of the stream or once the task is cancelled.
            /// - Throws: the server's error that ended the stream, or the connection's error.
            public mutating func next() async throws -> Event? {
                try await storage.buffer.next()
            }
        }
    }
}

/// Ends the subscription when the sequence goes away before an iterator was made.
private final class SequenceStorage: Sendable {
    let buffer: SubscriptionBuffer

    init(_ buffer: SubscriptionBuffer) {
        self.buffer = buffer
    }

    deinit {
        buffer.sequenceDropped()
    }
}

/// Ends the subscription when its iterator goes away (the loop was left or its task ended).
private final class IteratorStorage: Sendable {
    let buffer: SubscriptionBuffer

    init(_ buffer: SubscriptionBuffer) {
        self.buffer = buffer
    }

    deinit {
        buffer.terminate()
    }
}

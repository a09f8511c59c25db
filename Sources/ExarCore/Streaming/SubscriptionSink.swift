import ExarModel

/// How a subscription ended.
public enum SubscriptionEnd: Sendable, Equatable {
    /// The limit was reached, or a non-live query delivered everything (`EndOfEventStream`).
    case endOfStream
    /// The database or collection closed while the subscription ran.
    case closed
}

/// Receives the events of a subscription, on one of the collection's scanner threads.
///
/// Demand is signalled by the return value of ``receive(_:)``: `false` pauses the subscription
/// (and only it) until ``Subscription/resume()`` is called, so a slow consumer never makes the
/// engine buffer for it.
public protocol SubscriptionSink: AnyObject, Sendable {
    /// One event, in id order; the view is valid only during the call.
    /// - Returns: `true` to keep receiving, `false` to pause until ``Subscription/resume()``.
    func receive(_ event: EventView) -> Bool
    /// Called after each run of events handed over in one pass (a good moment to write them out).
    func flush()
    /// The subscription ended; called once, after which nothing else is called.
    func finish(_ end: SubscriptionEnd)
}

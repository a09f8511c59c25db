import Foundation

/// A value guarded by a pthread mutex (through `NSLock`).
///
/// Used instead of `Synchronization.Mutex` where the thread sanitizer must see the locking: on
/// Linux `Mutex` waits on a raw futex, which the sanitizer does not model, so every value it
/// guards is reported as raced.
package final class Locked<Value>: @unchecked Sendable {
    private let lock = NSLock()
    private var value: Value

    package init(_ value: Value) {
        self.value = value
    }

    /// Runs `body` with the value, holding the lock.
    package func withLock<Result, Failure: Error>(_ body: (inout Value) throws(Failure) -> Result) throws(Failure) -> Result {
        lock.lock()
        defer { lock.unlock() }
        return try body(&value)
    }
}

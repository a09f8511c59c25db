import ExarModel
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import Foundation

/// A POSIX thread that can be joined: the engine's writer and scanner threads, so that closing a
/// collection returns only once they have ended and let go of everything they held.
final class JoinableThread: @unchecked Sendable {
    private final class Start {
        let name: String
        let body: @Sendable () -> Void
        init(_ name: String, _ body: @escaping @Sendable () -> Void) {
            self.name = name
            self.body = body
        }
    }

    private let handle: pthread_t
    private let joined = Locked(false)

    /// Starts `body` on a new thread named `name` (the system keeps 15 bytes of it).
    init(name: String, _ body: @escaping @Sendable () -> Void) {
        let start = Unmanaged.passRetained(Start(name, body)).toOpaque()
        var thread = pthread_t()
        let result = pthread_create(&thread, nil, { argument in
            // Taken (and released) inside: nothing of the body outlives the thread function.
            let start = Unmanaged<Start>.fromOpaque(argument!).takeRetainedValue()
            Thread.current.name = start.name  // shown by top -H, perf and gdb
            start.body()
            return nil
        }, start)
        precondition(result == 0, "pthread_create failed: \(result)")
        handle = thread
    }

    /// Waits until the thread has ended (at most once; later calls return at once).
    func join() {
        let first = joined.withLock { done -> Bool in
            defer { done = true }
            return !done
        }
        if first { pthread_join(handle, nil) }
    }
}

import ExarModel
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

/// The request context of the HTTP side: Hummingbird's, plus the client's address (the login
/// throttle counts per address).
struct ExarRequestContext: RequestContext {
    var coreContext: CoreRequestContextStorage
    let remoteAddress: SocketAddress?
    /// The connection, so a live tail notices when its client has gone.
    let channel: any Channel

    init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        remoteAddress = source.channel.remoteAddress
        channel = source.channel
    }
}

/// HTTP Basic authentication for every route when the server has credentials: compared in
/// constant time, wrong guesses throttled per client address as on the protocol port.
struct BasicAuthenticationMiddleware: RouterMiddleware {
    typealias Context = ExarRequestContext

    let credentials: Credentials
    let throttle: LoginThrottle

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let address = context.remoteAddress?.ipAddress ?? "unknown"
        guard let header = request.headers[.authorization] else {
            throw Self.challenge("credentials required")
        }
        let given = Self.decode(header)
        guard credentials.accepts(username: given?.username, password: given?.password) else {
            let (delay, close) = throttle.failed(address)
            try? await Task.sleep(for: .milliseconds(delay))
            var error = Self.challenge("wrong username or password")
            if close {
                // Hummingbird keeps a connection open whatever the answer's `Connection` header
                // says: close it once the answer, written right after this, is out.
                error.closeConnection = true
                let channel = context.channel
                channel.eventLoop.scheduleTask(in: .milliseconds(200)) { channel.close(promise: nil) }
            }
            throw error
        }
        throttle.succeeded(address)
        return try await next(request, context)
    }

    static func challenge(_ message: String) -> APIError {
        var error = APIError(.unauthorized, "AuthenticationError", message)
        error.headers[.wwwAuthenticate] = #"Basic realm="exar-db", charset="UTF-8""#
        return error
    }

    /// `Basic base64(user:password)` (the scheme's name in any case), split at the first colon.
    static func decode(_ header: String) -> (username: String, password: String)? {
        let parts = header.split(separator: " ", maxSplits: 1, omittingEmptySubsequences: true)
        guard parts.count == 2, parts[0].lowercased() == "basic",
              let data = Data(base64Encoded: String(parts[1]).trimmingCharacters(in: .whitespaces)),
              let text = String(data: data, encoding: .utf8),
              let colon = text.firstIndex(of: ":") else { return nil }
        return (String(text[..<colon]), String(text[text.index(after: colon)...]))
    }
}

/// Wrong guesses in a row per client address: each delays its answer (100 ms doubling to 3.2 s,
/// as on the protocol port) and from `maxFailures` on the connection is closed after it. The
/// table is bounded: past `capacity` addresses the oldest entries are forgotten.
final class LoginThrottle: Sendable {
    private struct Entry {
        var failures: Int
        var last: UInt64
    }

    private let entries = Locked<[String: Entry]>([:])
    let maxFailures: Int
    let capacity: Int

    init(maxFailures: Int, capacity: Int = 10_000) {
        self.maxFailures = maxFailures
        self.capacity = capacity
    }

    /// Counts a wrong guess: the delay of its answer, and whether to close the connection.
    func failed(_ address: String) -> (delayMilliseconds: Int, close: Bool) {
        let now = DispatchTime.now().uptimeNanoseconds
        let failures = entries.withLock { entries -> Int in
            if entries[address] == nil && entries.count >= capacity {
                let oldest = entries.min { $0.value.last < $1.value.last }!.key
                entries[oldest] = nil
            }
            var entry = entries[address] ?? Entry(failures: 0, last: now)
            entry.failures += 1
            entry.last = now
            entries[address] = entry
            return entry.failures
        }
        return (Credentials.loginDelayMilliseconds(afterFailures: failures), failures >= maxFailures)
    }

    /// A right answer clears the address's count.
    func succeeded(_ address: String) {
        entries.withLock { entries in
            if entries[address] != nil { entries[address] = nil }
        }
    }
}

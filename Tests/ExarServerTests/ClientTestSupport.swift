import ExarClient
import ExarModel
import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

// Helpers of the client tests: timeouts, waiting for a condition, and a relay that records what
// the client sends.

struct TimedOut: Error {}

/// Runs `body`; after `seconds` closes the clients (which fails what they wait for) and throws.
func withTimeout(_ seconds: Int, closing clients: ExarClient..., body: @escaping @Sendable () async throws -> Void) async throws {
    try await withThrowingTaskGroup(of: Bool.self) { group in
        group.addTask {
            try await body()
            return true
        }
        group.addTask {
            try? await Task.sleep(for: .seconds(seconds))
            return false
        }
        let finished = try await group.next()!
        if !finished {
            for client in clients { await client.close() }
            Issue.record("timed out after \(seconds) s")
        }
        group.cancelAll()
        try await group.waitForAll()
        if !finished { throw TimedOut() }
    }
}

/// Waits until `condition` holds (polling), for at most `seconds`.
func eventually(_ seconds: Int = 10, _ condition: () -> Bool) async throws {
    let deadline = ContinuousClock.now + .seconds(seconds)
    while !condition() {
        guard ContinuousClock.now < deadline else { throw TimedOut() }
        try await Task.sleep(for: .milliseconds(10))
    }
}

/// `count()` once it has not changed for half a second.
func settledCount(_ count: () -> Int) async throws -> Int {
    var last = count()
    var unchangedSince = ContinuousClock.now
    let deadline = ContinuousClock.now + .seconds(20)
    while ContinuousClock.now - unchangedSince < .milliseconds(500) {
        guard ContinuousClock.now < deadline else { throw TimedOut() }
        try await Task.sleep(for: .milliseconds(20))
        let now = count()
        if now != last {
            last = now
            unchangedSince = .now
        }
    }
    return last
}

/// A loopback TCP relay for one client connection that records what each side sent. It reads
/// the server's side as fast as the server writes and keeps it for the client without bound.
final class RecordingRelay: @unchecked Sendable {
    let port: Int
    private let listener: Int32
    private let condition = NSCondition()
    // Behind `condition`.
    private var fromClient: [UInt8] = []
    private var fromServer: [UInt8] = []
    private var forClient: [UInt8] = []
    private var serverClosed = false
    private var sockets: [Int32] = []

    init(serverPort: Int) throws {
        let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        self.listener = listener
        var address = Self.loopback(port: 0)
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(listener, $0, length) == 0 && listen(listener, 1) == 0 && getsockname(listener, $0, &length) == 0
            }
        }
        guard bound else { throw POSIXError(.EADDRNOTAVAIL) }
        port = Int(UInt16(bigEndian: address.sin_port))
        Thread.detachNewThread { self.relay(serverPort: serverPort) }
    }

    /// The lines the client sent.
    var clientLines: [String] {
        condition.withLock { String(decoding: fromClient, as: UTF8.self) }.split(separator: "\n").map(String.init)
    }

    /// Whether what the server sent so far ends with `text`.
    func serverSent(endsWith text: String) -> Bool {
        condition.withLock { fromServer.suffix(text.utf8.count).elementsEqual(text.utf8) }
    }

    /// Everything the server sent.
    var serverText: String {
        condition.withLock { String(decoding: fromServer, as: UTF8.self) }
    }

    func stop() {
        condition.withLock {
            for socket in sockets { shutdown(socket, Int32(SHUT_RDWR)) }
        }
        shutdown(listener, Int32(SHUT_RDWR))
        close(listener)
    }

    private static func loopback(port: Int) -> sockaddr_in {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        return address
    }

    private func relay(serverPort: Int) {
        let client = accept(listener, nil, nil)
        guard client >= 0 else { return }
        let server = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = Self.loopback(port: serverPort)
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(server, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        condition.withLock { sockets = [client, server] }
        guard connected == 0 else {
            shutdown(client, Int32(SHUT_RDWR))
            return
        }
        Thread.detachNewThread {
            self.pump(from: client) { bytes in
                self.condition.withLock { self.fromClient += bytes }
                return Self.sendAll(bytes, to: server)
            }
            shutdown(server, Int32(SHUT_WR))
        }
        Thread.detachNewThread {
            self.pump(from: server) { bytes in
                self.condition.withLock {
                    self.fromServer += bytes
                    self.forClient += bytes
                    self.condition.signal()
                }
                return true
            }
            self.condition.withLock {
                self.serverClosed = true
                self.condition.signal()
            }
        }
        while true {
            let bytes: [UInt8]? = condition.withLock {
                while forClient.isEmpty && !serverClosed { condition.wait() }
                defer { forClient.removeAll() }
                return forClient.isEmpty ? nil : forClient
            }
            guard let bytes, Self.sendAll(bytes, to: client) else { break }
        }
        shutdown(client, Int32(SHUT_RDWR))
    }

    private func pump(from socket: Int32, _ deliver: ([UInt8]) -> Bool) {
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = chunk.withUnsafeMutableBytes { recv(socket, $0.baseAddress, $0.count, 0) }
            if count <= 0 || !deliver(Array(chunk[..<count])) { return }
        }
    }

    private static func sendAll(_ bytes: [UInt8], to socket: Int32) -> Bool {
        var offset = 0
        while offset < bytes.count {
            let sent = bytes[offset...].withUnsafeBytes { send(socket, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if sent <= 0 { return false }
            offset += sent
        }
        return true
    }
}

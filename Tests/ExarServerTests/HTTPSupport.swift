import Foundation
import Testing

/// The real `exar-db` (a child process, its own folder) with its HTTP side on a free loopback
/// port. A child, not an in-process server: the HTTP handlers run on Swift's cooperative pool,
/// which the blocking socket reads of the other suites' tests would otherwise hold up.
final class TestHTTPServer: @unchecked Sendable {
    let process: ExarProcess
    /// The HTTP port.
    private(set) var port = 0
    /// The protocol port.
    var tcpPort: Int { process.port }

    init(username: String? = nil, password: String? = nil, maxLoginFailures: Int = 5,
         maxBodyBytes: Int = 1 << 20, database: [String] = []) async throws {
        var server = ["max_login_failures = \(maxLoginFailures)", "max_line_bytes = \(maxBodyBytes)"]
        if let username, let password { server += ["username = \"\(username)\"", "password = \"\(password)\""] }
        process = try ExarProcess(database: ["segment_size = 1048576"] + database, server: server)
        try await process.start()
        // The HTTP side starts beside the protocol port: wait until it logs its port and accepts.
        for _ in 0..<400 {
            if let port = process.httpPort, (try? LineClient(port: port)) != nil {
                self.port = port
                return
            }
            try await Task.sleep(for: .milliseconds(25))
        }
        Issue.record("the HTTP side did not listen on \(port); log:\n\(process.log)")
        throw POSIXError(.ECONNREFUSED)
    }

    /// A graceful stop (SIGTERM; anything but exit status 0 is recorded), then the files go.
    func stop() async throws {
        process.stop()
        process.removeFiles()
    }

    /// A client of the protocol port bound to `collection`.
    func protocolClient(_ collection: String) throws -> LineClient {
        let client = try LineClient(port: tcpPort)
        client.send("Connect\t\(collection)\n")
        #expect(client.readLine() == "Connected")
        return client
    }
}

/// One HTTP/1.1 answer as the test client read it.
struct HTTPAnswer {
    var status: Int
    var headers: [String: String]
    var body: String

    func header(_ name: String) -> String? { headers[name.lowercased()] }

    /// The body as a JSON object or array.
    var json: Any? { try? JSONSerialization.jsonObject(with: Data(body.utf8), options: [.fragmentsAllowed]) }
    var object: [String: Any] { json as? [String: Any] ?? [:] }
    var array: [[String: Any]] { json as? [[String: Any]] ?? [] }
}

/// A minimal HTTP/1.1 client on a plain socket (`Connection: close`, the answer read until the
/// server closes), so the tests see the bytes the server sends, chunked bodies decoded. It blocks
/// on a Dispatch thread: the server's request handlers run on Swift's cooperative pool, which a
/// blocking read of a test must not hold.
func httpRequest(_ port: Int, _ method: String, _ path: String, headers: [String: String] = [:],
                 body: String? = nil, json: Bool = true) async throws -> HTTPAnswer {
    try await onDispatchThread {
        try blockingHTTPRequest(port, method, path, headers: headers, body: body, json: json)
    }
}

/// Runs blocking test I/O off Swift's cooperative pool.
func onDispatchThread<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        DispatchQueue.global().async { continuation.resume(with: Result { try work() }) }
    }
}

func blockingHTTPRequest(_ port: Int, _ method: String, _ path: String, headers: [String: String] = [:],
                         body: String? = nil, json: Bool = true) throws -> HTTPAnswer {
    let client = try LineClient(port: port)
    var request = "\(method) \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
    var fields = headers
    if let body {
        if json && fields["Content-Type"] == nil { fields["Content-Type"] = "application/json" }
        fields["Content-Length"] = String(body.utf8.count)
    }
    for (name, value) in fields { request += "\(name): \(value)\r\n" }
    request += "\r\n" + (body ?? "")
    client.send(request)
    guard let read = client.readUntilClosed() else { throw POSIXError(.ETIMEDOUT) }
    let raw = read.lines.joined(separator: "\n") + (read.lines.isEmpty ? "" : "\n") + read.rest
    return try parseAnswer(raw)
}

func parseAnswer(_ raw: String) throws -> HTTPAnswer {
    guard let end = raw.range(of: "\r\n\r\n") else { throw POSIXError(.EBADMSG) }
    let head = raw[..<end.lowerBound].components(separatedBy: "\r\n")
    let statusParts = head[0].split(separator: " ")
    guard statusParts.count >= 2, let status = Int(statusParts[1]) else { throw POSIXError(.EBADMSG) }
    var headers: [String: String] = [:]
    for line in head.dropFirst() {
        guard let colon = line.firstIndex(of: ":") else { continue }
        headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
    }
    var body = String(raw[end.upperBound...])
    if headers["transfer-encoding"] == "chunked" {
        body = dechunk(body)
    }
    return HTTPAnswer(status: status, headers: headers, body: body)
}

private func dechunk(_ text: String) -> String {
    var bytes = Array(text.utf8)[...]
    var out: [UInt8] = []
    while let lineEnd = bytes.firstIndex(of: UInt8(ascii: "\r")) {
        guard let size = Int(String(decoding: bytes[..<lineEnd], as: UTF8.self), radix: 16), size > 0 else { break }
        let start = lineEnd + 2
        out.append(contentsOf: bytes[start..<(start + size)])
        bytes = bytes[(start + size + 2)...]
    }
    return String(decoding: out, as: UTF8.self)
}

/// `Authorization: Basic ...` for a username and password.
func basicAuthorization(_ username: String, _ password: String) -> [String: String] {
    ["Authorization": "Basic " + Data("\(username):\(password)".utf8).base64EncodedString()]
}

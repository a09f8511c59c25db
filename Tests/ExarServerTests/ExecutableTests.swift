import ExarClient
import ExarModel
import Foundation
import Testing

/// Runs the real `exar-db` executable (built beside the test binary) as a user would.
@Suite(.serialized) struct ExecutableTests {
    private var binary: String {
        URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().deletingLastPathComponent()
            .appendingPathComponent("exar-db").path
    }

    private func freePort() -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { pointer in
                bind(fd, pointer, length)
                return getsockname(fd, pointer, &length)
            }
        }
        return Int(UInt16(bigEndian: address.sin_port))
    }

    private func start(_ folder: String, port: Int) throws -> (Process, Pipe) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = ["--config=\(folder)/exar-db.toml"]
        process.currentDirectoryURL = URL(fileURLWithPath: folder)
        let output = Pipe()
        process.standardOutput = output
        process.standardError = output
        try process.run()
        return (process, output)
    }

    private func connect(port: Int) async throws -> ExarClient {
        for _ in 0..<100 {
            if let client = try? await ExarClient.connect(port: port, collection: "c") { return client }
            try await Task.sleep(for: .milliseconds(50))
        }
        return try await ExarClient.connect(port: port, collection: "c")
    }

    @Test func sigtermAnswersInFlightPublishesSealsAndExitsZero() async throws {
        let folder = NSTemporaryDirectory() + "exar-exec-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let port = freePort()
        try """
            log4rs_path = "log4rs.toml"
            [database]
            logs_path = "\(folder)/data"
            [server]
            port = \(port)
            """.write(toFile: folder + "/exar-db.toml", atomically: true, encoding: .utf8)
        try """
            [appenders.file]
            kind = "file"
            path = "exar-db.log"
            [appenders.file.encoder]
            pattern = "[{d(%+)(local)}] [{h({l})}] [{t}] {m}{n}"
            [root]
            level = "info"
            appenders = ["file"]
            """.write(toFile: folder + "/log4rs.toml", atomically: true, encoding: .utf8)

        let (process, _) = try start(folder, port: port)
        let client = try await connect(port: port)
        let ids = try await client.publish((1...500).map { Event(timestamp: UInt64($0), tags: ["t"], data: "e\($0)") })
        #expect(ids == Array(1...500))
        // A burst in flight while the signal arrives: each event is answered or refused, never half stored.
        let inFlight = Task { try? await client.publish((501...5500).map { Event(timestamp: UInt64($0), tags: ["t"], data: "e\($0)") }) }
        kill(process.processIdentifier, SIGTERM)
        process.waitUntilExit()
        #expect(process.terminationStatus == 0)
        let answered = await inFlight.value?.count ?? 0

        let log = try String(contentsOfFile: folder + "/exar-db.log", encoding: .utf8)
        #expect(log.contains("[INFO] [exar_db] exar-db listening on"))
        #expect(log.contains("exar-db stopped"))

        let (again, _) = try start(folder, port: port)
        let reader = try await connect(port: port)
        var events: [Event] = []
        for try await event in try await reader.subscribe(Query()) { events.append(event) }
        #expect(events.count >= 500 + answered)
        #expect(events.map(\.id) == Array(1...UInt64(events.count)))
        #expect(events.allSatisfy { $0.data == "e\($0.id)" })
        kill(again.processIdentifier, SIGTERM)
        again.waitUntilExit()
        #expect(again.terminationStatus == 0)
        let secondLog = try String(contentsOfFile: folder + "/exar-db.log", encoding: .utf8)
        #expect(!secondLog.contains("cut "), "the start after a graceful shutdown needed a recovery cut")
    }
}

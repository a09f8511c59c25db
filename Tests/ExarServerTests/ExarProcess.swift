import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The folder of the test binary, where SwiftPM also puts the package's executables.
let productsFolder = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().deletingLastPathComponent()

/// A TCP port free at the time of asking (the kernel picks it).
func freeLoopbackPort() -> Int {
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

/// The environment of a long-running `exar-db` child. Under `make asan`, what the event loop
/// threads still hold when the process exits is not a leak of a long-running server (leaks of
/// the server code are checked in-process, where the tests run ExarServer themselves).
func serverProcessEnvironment() -> [String: String] {
    var environment = ProcessInfo.processInfo.environment
    environment["ASAN_OPTIONS"] = (environment["ASAN_OPTIONS"].map { $0 + ":" } ?? "") + "detect_leaks=0"
    return environment
}

/// Runs one of the package's executables; returns its exit status, standard output and error.
func runProduct(_ name: String, _ arguments: [String]) throws -> (status: Int32, output: String, error: String) {
    let process = Process()
    process.executableURL = productsFolder.appendingPathComponent(name)
    process.arguments = arguments
    let error = Pipe()
    let output = Pipe()
    process.standardOutput = output
    process.standardError = error
    try process.run()
    let printed = output.fileHandleForReading.readDataToEndOfFile()
    let text = error.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return (process.terminationStatus, String(decoding: printed, as: UTF8.self), String(decoding: text, as: UTF8.self))
}

/// Runs the real `exar-inspect` binary; returns its exit status, standard error and output.
@discardableResult
func runInspect(_ arguments: [String]) throws -> (status: Int32, error: String, output: String) {
    let run = try runProduct("exar-inspect", arguments)
    return (run.status, run.error, run.output)
}

/// The real `exar-db` executable run on a folder of its own: `exar-db.toml`, `log4rs.toml`
/// (logging to `exar-db.log`) and `data/`. The folder outlives restarts; `removeFiles()` deletes it.
final class ExarProcess {
    let folder: String
    let port: Int
    /// The HTTP side's port (docs/HTTP.md): it binds port 0 and logs the one it got (picking a
    /// free one in advance raced with the other tests' listeners), read from the log once started.
    var httpPort: Int? {
        guard let line = log.split(separator: "\n").last(where: { $0.contains("console: http://") }),
              let colon = line.lastIndex(of: ":") else { return nil }
        return Int(line[line.index(after: colon)...].prefix { $0.isNumber })
    }
    private(set) var process: Process?

    var dataFolder: String { folder + "/data" }
    var logPath: String { folder + "/exar-db.log" }
    var pid: pid_t { process?.processIdentifier ?? 0 }

    /// - Parameters:
    ///   - database: extra lines of the `[database]` table (`segment_size = 65536`, ...).
    ///   - server: extra lines of the `[server]` table.
    init(database: [String] = [], server: [String] = []) throws {
        folder = NSTemporaryDirectory() + "exar-process-" + UUID().uuidString
        port = freeLoopbackPort()
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        try configure(database: database, server: server)
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
    }

    /// Rewrites the configuration (takes effect at the next start).
    func configure(database: [String] = [], server: [String] = []) throws {
        try ([
            "log4rs_path = \"log4rs.toml\"",
            "[database]",
            "logs_path = \"\(dataFolder)\"",
        ] + database + ["[server]", "port = \(port)"] + server + ["[http]", "port = 0"])
            .joined(separator: "\n").write(toFile: folder + "/exar-db.toml", atomically: true, encoding: .utf8)
    }

    /// Starts the server and waits until it accepts connections.
    func start() async throws {
        let process = Process()
        process.executableURL = productsFolder.appendingPathComponent("exar-db")
        process.arguments = ["--config=\(folder)/exar-db.toml"]
        process.currentDirectoryURL = URL(fileURLWithPath: folder)
        process.environment = serverProcessEnvironment()
        // Standard output and error (sanitizer reports, crashes) go to a file of the folder.
        _ = FileManager.default.createFile(atPath: folder + "/exar-db.stderr", contents: nil)
        let output = FileHandle(forWritingAtPath: folder + "/exar-db.stderr")
        output?.seekToEndOfFile()
        process.standardOutput = output
        process.standardError = output
        try process.run()
        self.process = process
        for _ in 0..<400 {
            if (try? LineClient(port: port)) != nil { return }
            guard process.isRunning else { break }
            try await Task.sleep(for: .milliseconds(25))
        }
        Issue.record("exar-db did not start listening on port \(port); log:\n\(log)")
        throw POSIXError(.ECONNREFUSED)
    }

    /// Sends `signal` and waits for the exit; returns the exit status (or the signal number when killed).
    /// A graceful stop that does not exit 0 is reported with what the process wrote.
    @discardableResult
    func stop(_ signal: Int32 = SIGTERM) -> Int32 {
        guard let process else { return -1 }
        kill(process.processIdentifier, signal)
        // Bounded: once (ASan, a crash in the server) Foundation never reaped the child, the
        // process stayed a zombie and waitUntilExit hung the suite until CI's limit.
        let deadline = Date(timeIntervalSinceNow: 60)
        while process.isRunning && Date() < deadline { usleep(10_000) }
        guard !process.isRunning else {
            var status: Int32 = 0
            let reaped = waitpid(process.processIdentifier, &status, WNOHANG)
            let output = (try? String(contentsOfFile: folder + "/exar-db.stderr", encoding: .utf8)) ?? ""
            Issue.record("exar-db (pid \(process.processIdentifier)) still not reaped 60 s after signal \(signal) (waitpid: \(reaped)); its output:\n\(output.suffix(4000))")
            self.process = nil
            return -1
        }
        process.waitUntilExit()
        self.process = nil
        if signal == SIGTERM && process.terminationStatus != 0 {
            let output = (try? String(contentsOfFile: folder + "/exar-db.stderr", encoding: .utf8)) ?? ""
            // A sanitizer's report starts with its WARNING or ERROR line: show from there.
            let report = output.range(of: "WARNING: ") ?? output.range(of: "ERROR: ")
            let shown = report.map { String(output[$0.lowerBound...].prefix(12_000)) } ?? String(output.suffix(3000))
            Issue.record("exar-db exited with \(process.terminationStatus); its output:\n\(shown)")
        }
        return process.terminationStatus
    }

    /// The server's log so far.
    /// Whether the server process is still running.
    var isRunning: Bool { process?.isRunning ?? false }

    var log: String {
        (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? ""
    }

    /// The number of open file descriptors of the running server.
    var openDescriptors: Int {
        (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd").count) ?? -1
    }

    /// The server's resident anonymous memory (heap, stacks; not the mapped segment files) in bytes.
    var residentAnonymousBytes: Int {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
              let line = status.split(separator: "\n").first(where: { $0.hasPrefix("RssAnon:") }),
              let kilobytes = Int(line.split(separator: " ").dropFirst().first ?? "") else { return -1 }
        return kilobytes * 1024
    }

    func removeFiles() {
        if process != nil { stop(SIGKILL) }
        try? FileManager.default.removeItem(atPath: folder)
    }
}

/// Reads the stored events of `collection` with ids above `offset` through the protocol
/// (`Subscribe\tfalse\t<offset>`), as the raw event lines after `Event\t`, in order. `nil` when
/// the stream did not end properly.
func readAllEvents(port: Int, collection: String = "c", after offset: UInt64 = 0) throws -> [String]? {
    let client = try LineClient(port: port)
    client.send("Connect\t\(collection)\nSubscribe\tfalse\t\(offset)\n")
    guard client.readLine() == "Connected", client.readLine() == "Subscribed" else { return nil }
    var events: [String] = []
    while let line = client.readLine() {
        if line == "EndOfEventStream" { return events }
        guard line.hasPrefix("Event\t") else { return nil }
        events.append(String(line.dropFirst(6)))
    }
    return nil
}

/// One publisher's record: what it sent, and which of it the server acknowledged with which id.
final class PublisherLog: @unchecked Sendable {
    var sent: Set<String> = []
    var acknowledged: [(id: UInt64, line: String)] = []
    /// Answers other than `Published` (the publisher stops at the first).
    var unexpected: [String] = []
}

/// Publishes batches of 32 over one blocking connection until the server goes away.
/// Each event is recorded as its event line shows it (`<timestamp>\t<tags>\t<data>`), with data
/// unique to this publisher and round.
func publishUntilTheServerDies(port: Int, publisher: Int, round: Int, into log: PublisherLog) {
    guard let client = try? LineClient(port: port) else { return }
    client.send("Connect\tc\n")
    guard client.readLine() == "Connected" else { return }
    var sequence = 0
    while true {
        var batch = ""
        var lines: [String] = []
        for _ in 0..<32 {
            sequence += 1
            let filler = String(repeating: Character(Unicode.Scalar(UInt8(97 + sequence % 26))), count: sequence % 300)
            let (timestamp, tags, data) = (round * 1_000_000 + sequence, "p\(publisher) r\(round)",
                                           "p\(publisher)-r\(round)-\(sequence)-\(filler)")
            // As an event line shows it: timestamp, tags, data.
            let line = "\(timestamp)\t\(tags)\t\(data)"
            lines.append(line)
            log.sent.insert(line)
            batch += "Publish\t\(tags)\t\(timestamp)\t\(data)\n"
        }
        client.send(batch)
        for line in lines {
            guard let answer = client.readLine() else { return }
            guard answer.hasPrefix("Published\t"), let id = UInt64(answer.dropFirst(10)) else {
                log.unexpected.append(answer)
                return
            }
            log.acknowledged.append((id, line))
        }
    }
}

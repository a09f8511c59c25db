import Foundation

/// An `exar-db` started by the tool on a temporary data folder and a free port.
final class ServerProcess {
    let port: Int
    let folder: String
    private let process: Process

    /// `sync`: the `[database] sync` policy it runs with.
    init(sync: String = "none") throws {
        let binary = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
            .deletingLastPathComponent().appendingPathComponent("exar-db").path
        guard FileManager.default.isExecutableFile(atPath: binary) else {
            throw BenchError("exar-db not found beside exar-bench (\(binary)); build it, or pass --port")
        }
        folder = NSTemporaryDirectory() + "exar-bench-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        port = try Self.freePort()
        try """
            log4rs_path = "\(folder)/no-log4rs.toml"
            [database]
            logs_path = "\(folder)/data"
            sync = "\(sync)"
            [server]
            port = \(port)
            [http]
            port = 0
            """.write(toFile: folder + "/exar-db.toml", atomically: true, encoding: .utf8)
        process = Process()
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = ["--config=\(folder)/exar-db.toml"]
        process.standardOutput = FileHandle(forWritingAtPath: "/dev/null")
        process.standardError = FileHandle(forWritingAtPath: "/dev/null")
        try process.run()
        try waitUntilListening()
    }

    private func waitUntilListening() throws {
        for _ in 0..<200 {
            if Self.canConnect(port: port) { return }
            usleep(25_000)
        }
        throw BenchError("exar-db did not start listening on port \(port)")
    }

    func stop() {
        stopProcess(process)
        try? FileManager.default.removeItem(atPath: folder)
    }

    static func canConnect(port: Int) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        } == 0
    }

    static func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let ok = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { pointer in
                bind(fd, pointer, length) == 0 && getsockname(fd, pointer, &length) == 0
            }
        }
        guard ok else { throw BenchError("no free port") }
        return Int(UInt16(bigEndian: address.sin_port))
    }
}

/// SIGTERM, then up to 10 s for a graceful exit, then SIGKILL. Polls the child with `waitpid`
/// (`waitUntilExit` and `isRunning` depend on Foundation noticing the exit, which can lag in an
/// async command).
func stopProcess(_ process: Process) {
    let pid = process.processIdentifier
    guard pid > 0 else { return }
    kill(pid, SIGTERM)
    for _ in 0..<1000 {
        var status: Int32 = 0
        let result = waitpid(pid, &status, WNOHANG)
        if result == pid || (result == -1 && errno == ECHILD) || !process.isRunning { return }
        usleep(10_000)
    }
    kill(pid, SIGKILL)
}

/// The first of `candidates` that is an executable file.
func findExecutable(_ candidates: [String]) -> String? {
    candidates.first { FileManager.default.isExecutableFile(atPath: $0) }
}

/// SIGKILL and reap a peer that keeps nothing worth a graceful stop (a child started from a
/// Dispatch thread may inherit a mask that blocks SIGTERM), then remove its folder.
func killPeer(_ process: Process, folder: String) {
    let pid = process.processIdentifier
    if pid > 0 {
        kill(pid, SIGKILL)
        var status: Int32 = 0
        _ = waitpid(pid, &status, 0)
    }
    try? FileManager.default.removeItem(atPath: folder)
}

import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The `exar-db` command line, run as the real binary.
@Suite struct CommandLineTests {
    @Test func versionAndHelp() throws {
        let version = try runProduct("exar-db", ["--version"])
        #expect(version.status == 0)
        #expect(version.output == "0.1.0\n")
        let help = try runProduct("exar-db", ["--help"])
        #expect(help.status == 0)
        #expect(help.output.contains("-c, --config <config>"), "\(help.output)")
        #expect(help.output.contains("import"), "\(help.output)")
        let importHelp = try runProduct("exar-db", ["import", "--help"])
        #expect(importHelp.status == 0)
        #expect(importHelp.output.contains("--from <folder>"), "\(importHelp.output)")
        #expect(importHelp.output.contains("-c, --config <config>"), "\(importHelp.output)")
        let missingFrom = try runProduct("exar-db", ["import"])
        #expect(missingFrom.status != 0)
        #expect(missingFrom.error.contains("--from"), "\(missingFrom.error)")
    }

    @Test(arguments: [["-c", "CONFIG"], ["--config", "CONFIG"], ["--config=CONFIG"]])
    func theServerReadsTheConfigurationFileNamedBy(_ arguments: [String]) async throws {
        let server = try ExarProcess()
        defer { server.removeFiles() }
        let config = server.folder + "/exar-db.toml"
        let process = Process()
        process.executableURL = productsFolder.appendingPathComponent("exar-db")
        process.arguments = arguments.map { $0.replacingOccurrences(of: "CONFIG", with: config) }
        process.currentDirectoryURL = URL(fileURLWithPath: server.folder)
        process.environment = serverProcessEnvironment()
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        defer {
            if process.isRunning { kill(process.processIdentifier, SIGKILL) }
            process.waitUntilExit()
        }
        var client: LineClient?
        for _ in 0..<400 where client == nil && process.isRunning {
            client = try? LineClient(port: server.port)
            if client == nil { try await Task.sleep(for: .milliseconds(25)) }
        }
        let connected = try #require(client, "exar-db \(process.arguments!) did not listen on the configured port \(server.port)")
        connected.send("Connect\tc\nPublish\tt\t0\td\n")
        #expect(connected.readLines(2) == ["Connected", "Published\t1"])
        kill(process.processIdentifier, SIGTERM)
        process.waitUntilExit()
        #expect(process.terminationStatus == 0)
        // The data went to the configured folder.
        #expect(FileManager.default.fileExists(atPath: server.dataFolder + "/c"))
    }

    @Test func aMissingConfigurationFileIsAnError() throws {
        let run = try runProduct("exar-db", ["-c", "/nonexistent/exar-db.toml"])
        #expect(run.status != 0)
        #expect(run.error.contains("cannot read config file /nonexistent/exar-db.toml"), "\(run.error)")
        let imported = try runProduct("exar-db", ["import", "--from", "/tmp", "-c", "/nonexistent/exar-db.toml"])
        #expect(imported.status != 0)
        #expect(imported.error.contains("configuration error: cannot read config file /nonexistent/exar-db.toml"), "\(imported.error)")
    }
}

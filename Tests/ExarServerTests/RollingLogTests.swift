import Foundation
import Logging
import Testing

@testable import exar_db

#if canImport(Glibc)
import Glibc
#endif

/// A temp folder of its own, deleted at the end of the test.
private final class TempFolder {
    let path = NSTemporaryDirectory() + "exar-logging-" + UUID().uuidString

    init() throws {
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    deinit {
        try? FileManager.default.removeItem(atPath: path)
    }

    func read(_ name: String) -> String? {
        try? String(contentsOfFile: path + "/" + name, encoding: .utf8)
    }

    func exists(_ name: String) -> Bool {
        FileManager.default.fileExists(atPath: path + "/" + name)
    }

    func size(_ name: String) -> Int {
        ((try? FileManager.default.attributesOfItem(atPath: path + "/" + name))?[.size] as? Int) ?? -1
    }
}

/// Log files written for real: append or truncate, and rolling by size.
@Suite struct LogFileTests {
    @Test func appendFalseEmptiesTheFileAndTrueKeepsIt() throws {
        let folder = try TempFolder()
        for name in ["kept.log", "fresh.log"] {
            try "from the last run\n".write(toFile: folder.path + "/" + name, atomically: true, encoding: .utf8)
        }
        let config = try Log4rsConfig.parse("""
            [appenders.kept]
            kind = "file"
            path = "\(folder.path)/kept.log"
            encoder = { pattern = "{l} {m}{n}" }
            [appenders.fresh]
            kind = "file"
            path = "\(folder.path)/fresh.log"
            append = false
            encoder = { pattern = "{l} {m}{n}" }
            [root]
            level = "info"
            """)
        let logger = Logger(label: "test") { _ in MultiplexLogHandler(try! config.makeHandlers()) }
        logger.info("this run")
        logger.debug("below the level")
        #expect(folder.read("kept.log") == "from the last run\nINFO this run\n")
        #expect(folder.read("fresh.log") == "INFO this run\n")
    }

    @Test func aFileAppenderCreatesItsFolders() throws {
        let folder = try TempFolder()
        let output = try LogOutput.file(path: folder.path + "/a/b/c.log", append: true)
        output.write("line\n")
        #expect(folder.read("a/b/c.log") == "line\n")
        #expect(throws: LogFileError.self) { try LogOutput.file(path: folder.path + "/a/b/c.log/d.log", append: true) }
    }

    /// Writes `count` lines `line-<i>` padded to 50 bytes (51 with the newline).
    private func writeLines(_ output: LogOutput, _ range: Range<Int>) {
        for index in range {
            let text = "line-\(index)"
            output.write(text + String(repeating: ".", count: 50 - text.count) + "\n")
        }
    }

    private func lineNumbers(_ text: String?) -> [Int] {
        (text ?? "").split(separator: "\n").map { Int($0.dropFirst(5).prefix { $0.isNumber }) ?? -1 }
    }

    @Test func fixedWindowShiftsTheArchivesAndDropsTheOldest() throws {
        let folder = try TempFolder()
        // 51-byte lines, a 200-byte limit: the fourth line of a file passes it and rolls it.
        let policy = RollingPolicy(limit: 200, roller: .fixedWindow(pattern: folder.path + "/old/exar.{}.log", base: 1, count: 3, gzip: false))
        let output = try LogOutput.file(path: folder.path + "/exar.log", append: true, policy: policy)
        writeLines(output, 0..<4)
        #expect(folder.size("exar.log") == 0)
        #expect(lineNumbers(folder.read("old/exar.1.log")) == [0, 1, 2, 3])
        writeLines(output, 4..<18)
        // Files of four lines: 0-3, 4-7, 8-11, 12-15 rolled; 16-17 current. Three archives kept, from base 1.
        #expect(lineNumbers(folder.read("exar.log")) == [16, 17])
        #expect(lineNumbers(folder.read("old/exar.1.log")) == [12, 13, 14, 15])
        #expect(lineNumbers(folder.read("old/exar.2.log")) == [8, 9, 10, 11])
        #expect(lineNumbers(folder.read("old/exar.3.log")) == [4, 5, 6, 7])
        #expect(!folder.exists("old/exar.0.log") && !folder.exists("old/exar.4.log"))
    }

    @Test func theDeleteRollerAndACountOfZeroDeleteTheFile() throws {
        let folder = try TempFolder()
        for roller in [RollingPolicy.Roller.delete, .fixedWindow(pattern: folder.path + "/a.{}", base: 0, count: 0, gzip: false)] {
            let output = try LogOutput.file(path: folder.path + "/exar.log", append: false, policy: RollingPolicy(limit: 100, roller: roller))
            // 51-byte lines, a 100-byte limit: lines 0-1 and 2-3 filled a file each.
            writeLines(output, 0..<5)
            #expect(lineNumbers(folder.read("exar.log")) == [4])
            #expect(try FileManager.default.contentsOfDirectory(atPath: folder.path) == ["exar.log"])
        }
    }

    @Test func aRollThatFailsKeepsTheLinesInTheFile() throws {
        let folder = try TempFolder()
        // The archives' folder cannot be made: a file is in the way.
        try "".write(toFile: folder.path + "/blocker", atomically: true, encoding: .utf8)
        let policy = RollingPolicy(limit: 100, roller: .fixedWindow(pattern: folder.path + "/blocker/exar.{}.log", base: 0, count: 2, gzip: false))
        let output = try LogOutput.file(path: folder.path + "/exar.log", append: true, policy: policy)
        writeLines(output, 0..<6)
        #expect(lineNumbers(folder.read("exar.log")) == Array(0..<6))
        // Once the way is clear, the next line rolls the file.
        try FileManager.default.removeItem(atPath: folder.path + "/blocker")
        writeLines(output, 6..<7)
        #expect(lineNumbers(folder.read("blocker/exar.0.log")) == Array(0..<7))
        #expect(folder.size("exar.log") == 0)
    }

    @Test func gzArchivesAreRealGzipFiles() throws {
        let folder = try TempFolder()
        let policy = RollingPolicy(limit: 100_000, roller: .fixedWindow(pattern: folder.path + "/exar.{}.log.gz", base: 0, count: 2, gzip: true))
        let output = try LogOutput.file(path: folder.path + "/exar.log", append: true, policy: policy)
        // More than one stored block (65,535 bytes) per archive.
        writeLines(output, 0..<2000)
        #expect(folder.exists("exar.0.log.gz"))
        let run = try runTool("/usr/bin/gzip", ["-dc", folder.path + "/exar.0.log.gz"])
        #expect(run.status == 0, "\(run.error)")
        #expect(lineNumbers(run.output) == Array(0..<1961))
        #expect(lineNumbers(folder.read("exar.log")) == Array(1961..<2000))
        #expect(try runTool("/usr/bin/gzip", ["-t", folder.path + "/exar.0.log.gz"]).status == 0)
        // An empty file makes a valid, empty archive.
        try GzipStoredWriter.write(contentsOf: "/dev/null", to: folder.path + "/empty.gz")
        #expect(try runTool("/usr/bin/gzip", ["-dc", folder.path + "/empty.gz"]) == (0, "", ""))
    }

    @Test func manyThreadsRollingLoseNoLineAndSplitNone() async throws {
        let folder = try TempFolder()
        let policy = RollingPolicy(limit: 4096, roller: .fixedWindow(pattern: folder.path + "/exar.{}.log", base: 0, count: 1000, gzip: false))
        let output = try LogOutput.file(path: folder.path + "/exar.log", append: true, policy: policy)
        let threads = 8
        let perThread = 2000
        DispatchQueue.concurrentPerform(iterations: threads) { thread in
            for index in 0..<perThread {
                output.write("thread-\(thread)-line-\(index)-" + String(repeating: "x", count: index % 40) + "\n")
            }
        }
        let names = try FileManager.default.contentsOfDirectory(atPath: folder.path)
        var seen: [String: Int] = [:]
        for name in names {
            let text = folder.read(name) ?? ""
            #expect(text.isEmpty || text.hasSuffix("\n"))
            // A file holds more than the limit only by its last line.
            if name != "exar.log" { #expect(folder.size(name) > 4096 && folder.size(name) < 4096 + 100) }
            for line in text.split(separator: "\n") { seen[String(line), default: 0] += 1 }
        }
        #expect(names.count > 100)
        #expect(seen.count == threads * perThread)
        #expect(seen.values.allSatisfy { $0 == 1 })
        for line in seen.keys {
            let fields = line.split(separator: "-", omittingEmptySubsequences: false)
            #expect(fields.count == 5 && fields[4].count == Int(fields[3])! % 40, "\(line)")
        }
    }
}

/// Runs a program; its exit status, standard output and error.
private func runTool(_ path: String, _ arguments: [String]) throws -> (status: Int32, output: String, error: String) {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: path)
    process.arguments = arguments
    let output = Pipe()
    let error = Pipe()
    process.standardOutput = output
    process.standardError = error
    try process.run()
    let printed = output.fileHandleForReading.readDataToEndOfFile()
    let complaint = error.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return (process.terminationStatus, String(decoding: printed, as: UTF8.self), String(decoding: complaint, as: UTF8.self))
}

/// The real `exar-db` process logging through log4rs files.
@Suite(.serialized) struct LoggingProcessTests {
    private func writeLog4rs(_ server: ExarProcess, _ text: String) throws {
        try text.write(toFile: server.folder + "/log4rs.toml", atomically: true, encoding: .utf8)
    }

    private func stderr(_ server: ExarProcess) -> String {
        (try? String(contentsOfFile: server.folder + "/exar-db.stderr", encoding: .utf8)) ?? ""
    }

    /// Sends `count` Connects to collections whose names the server refuses: one info line each.
    private func provokeLogLines(_ server: ExarProcess, count: Int) throws {
        let client = try LineClient(port: server.port)
        client.send((0..<count).map { "Connect\tbad/\($0)\n" }.joined())
        let answers = client.readLines(count)
        #expect(answers.count == count && answers.allSatisfy { $0.hasPrefix("Error\t") })
    }

    @Test func theRollingFileRollsAsLog4rsDoes() async throws {
        let server = try ExarProcess()
        defer { server.removeFiles() }
        try writeLog4rs(server, """
            refresh_rate = "30 seconds"
            [appenders.rolling]
            kind = "rolling_file"
            path = "logs/exar-db.log"
            append = false
            [appenders.rolling.encoder]
            kind = "pattern"
            pattern = "{d(%Y-%m-%d %H:%M:%S%.3f)(utc)} {l:<5} {t} {m}{n}"
            [appenders.rolling.policy]
            kind = "compound"
            trigger = { kind = "size", limit = "2 kb" }
            roller = { kind = "fixed_window", pattern = "logs/archive.{}.log", base = 0, count = 3 }
            [appenders.syslog]
            kind = "syslog"
            [root]
            level = "debug"
            appenders = ["rolling", "syslog"]
            """)
        try await server.start()
        try provokeLogLines(server, count: 300)
        #expect(server.stop() == 0)

        let logs = server.folder + "/logs"
        let names = try FileManager.default.contentsOfDirectory(atPath: logs).sorted()
        #expect(names == ["archive.0.log", "archive.1.log", "archive.2.log", "exar-db.log"])
        func numbers(_ name: String) throws -> [Int] {
            let text = try String(contentsOfFile: logs + "/" + name, encoding: .utf8)
            return text.split(separator: "\n").compactMap { line in
                line.range(of: "'bad/").flatMap { Int(line[$0.upperBound...].prefix { $0.isNumber }) }
            }
        }
        // Newest in archive.0; each archive continues where the older one stopped.
        let (newest, middle, oldest) = (try numbers("archive.0.log"), try numbers("archive.1.log"), try numbers("archive.2.log"))
        #expect(!oldest.isEmpty && !middle.isEmpty && !newest.isEmpty)
        #expect(middle.first == oldest.last.map { $0 + 1 } && newest.first == middle.last.map { $0 + 1 })
        // The first lines (0 and on) rolled away: more than three files' worth was written.
        #expect(oldest.first! > 0)
        for name in names where name.hasPrefix("archive") {
            let size = (try FileManager.default.attributesOfItem(atPath: logs + "/" + name))[.size] as! Int
            #expect(size > 2048 && size < 2048 + 300, "\(name): \(size)")
        }
        let line = try #require(String(contentsOfFile: logs + "/archive.0.log", encoding: .utf8).split(separator: "\n").first)
        #expect(line.contains(" INFO  exar_db opening collection 'bad/"), "\(line)")
        #expect(line.dropFirst(4).hasPrefix("-") && line.dropFirst(19).hasPrefix(".") && line.dropFirst(23).hasPrefix(" "), "\(line)")
        // No console appender: the warnings went to standard error, naming the keys.
        let warnings = stderr(server)
        #expect(warnings.contains("warning: log4rs configuration: refresh_rate: ignored"), "\(warnings)")
        #expect(warnings.contains("appenders.syslog.kind"), "\(warnings)")
    }

    @Test func levelOffLogsNothingAndAppendFalseStartsEmpty() async throws {
        let server = try ExarProcess()
        defer { server.removeFiles() }
        try "a line of the last run\n".write(toFile: server.logPath, atomically: true, encoding: .utf8)
        try writeLog4rs(server, """
            [appenders.file]
            kind = "file"
            path = "exar-db.log"
            append = false
            [root]
            level = "off"
            appenders = ["file"]
            """)
        try await server.start()
        try provokeLogLines(server, count: 5)
        #expect(server.stop() == 0)
        #expect(FileManager.default.fileExists(atPath: server.logPath))
        #expect(server.log == "")
        #expect(stderr(server) == "")
    }
}

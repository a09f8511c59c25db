import ArgumentParser
import ExarCore
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// `exar-db import --from DIR [--collection NAME]... [-c FILE]`: fills collections from the logs
/// of the original (Rust) Exar DB.
struct ImportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "import",
        abstract: "Import the collections of the original (Rust) Exar DB.",
        discussion: """
            Reads <name>.log files (one event a line: id, timestamp, tags, data) from the original's logs_path \
            and publishes each into the collection of the same name, keeping ids and timestamps, in the database \
            the configuration describes (default ~/exar-db/data). Every log is checked whole before anything \
            is written; a collection that already has events, or is open in a running server, is refused. \
            See docs/OPERATIONS.md.
            """
    )

    @Option(name: .long, help: ArgumentHelp("The original's logs_path: the folder of its <name>.log files.", valueName: "folder"))
    var from: String

    @Option(name: .long, help: ArgumentHelp("Import only this collection (repeatable); default: every <name>.log except the .index.log files.", valueName: "name"))
    var collection: [String] = []

    /// The database to fill (default ~/exar-db/data), shared with the server command.
    @OptionGroup var configFile: ConfigFileOption

    @Option(name: .long, help: ArgumentHelp("Events per publish call.", valueName: "count"))
    var batchSize = 10_000

    func validate() throws {
        guard batchSize > 0 else { throw ValidationError("--batch-size must be at least 1") }
    }

    func run() throws {
        let settings: ExarConfig
        do {
            settings = try configFile.config.map(ExarConfig.load(path:)) ?? ExarConfig()
        } catch let error as ConfigError {
            fail("configuration error: \(error)")
        }
        let logs: [OriginalLog]
        do {
            logs = try OriginalLog.find(in: expandTilde(from), names: collection)
        } catch {
            fail("\(error); nothing imported")
        }
        // The engine's warnings (a target collection repaired when opened) go to standard error.
        let configuration = settings.databaseConfiguration { level, message in
            if level >= .warning { Self.printError("\(level.rawValue): \(message)") }
        }
        Self.printOutput("importing \(logs.map(\.name).joined(separator: ", ")) from \(expandTilde(from)) into \(configuration.logsPath)")
        // A signal stops the import between two batches (or two reads while checking), so nothing
        // is left half imported.
        signal(SIGINT) { _ in importInterrupted.store(true, ordering: .relaxed) }
        signal(SIGTERM) { _ in importInterrupted.store(true, ordering: .relaxed) }
        signal(SIGXFSZ, SIG_IGN)
        let importer = Importer(configuration: configuration, logs: logs, batchSize: batchSize) { Self.printOutput($0) }
        let imported: [Importer.Imported]
        do {
            imported = try importer.run()
        } catch {
            Self.printError("error: \(error.message)")
            if error.imported.isEmpty {
                Self.printError("nothing imported")
            } else {
                Self.printError("imported (kept): \(error.imported.map { "\($0.name) (\($0.count) events)" }.joined(separator: ", "))")
                Self.printError("not imported: \(error.notImported.joined(separator: ", "))")
            }
            throw ExitCode.failure
        }
        let total = imported.reduce(0) { $0 + $1.count }
        Self.printOutput("done: \(imported.count) collection\(imported.count == 1 ? "" : "s"), \(total) events imported")
    }

    private func fail(_ message: String) -> Never {
        Self.printError("error: \(message)")
        Self.exit(withError: ExitCode.failure)
    }

    /// Writes a line to standard output at once (not held in a buffer when that is a pipe).
    static func printOutput(_ line: String) {
        FileHandle.standardOutput.write(Data((line + "\n").utf8))
    }

    static func printError(_ line: String) {
        FileHandle.standardError.write(Data((line + "\n").utf8))
    }
}

import ArgumentParser
import ExarCore
import ExarHTTP
import ExarServer
import Foundation
import Logging
import ServiceLifecycle

/// `-c FILE`, `--config FILE`, `--config=FILE`: the server's and the import's configuration file.
///
/// One option group for both commands: ArgumentParser lets a parent command's option appear after
/// a subcommand's name, so an option of the same name declared twice would reach the parent only.
struct ConfigFileOption: ParsableArguments {
    @Option(name: [.customShort("c"), .long], help: "The TOML configuration file (see docs/CONFIGURATION.md).")
    var config: String?
}

/// `exar-db [-c|--config=PATH]`: the Exar DB server; `exar-db import ...` fills it from the original's logs.
@main
struct ExarDBCommand: AsyncParsableCommand {
    static let version = "0.1.0"

    static let configuration = CommandConfiguration(
        commandName: "exar-db",
        abstract: "Exar DB: an append-only event store with live streaming, serving the Exar text protocol.",
        usage: """
            exar-db [-c <config>]
              exar-db import --from <folder> [--collection <name> ...] [-c <config>]
            """,
        discussion: """
            Without --config the server listens on 127.0.0.1:38580 and stores data under ~/exar-db/data.
            Logging is read from log4rs_path (default log4rs.toml); without that file, info and above go to the console.
            SIGTERM or SIGINT stops it gracefully: in-flight publishes are answered, segments sealed.
            `exar-db import --from DIR` imports the collections of the original (Rust) Exar DB.
            """,
        version: version,
        subcommands: [ImportCommand.self]
    )

    @OptionGroup var configFile: ConfigFileOption

    var config: String? { configFile.config }

    func run() async throws {
        let settings: ExarConfig
        do {
            settings = try config.map(ExarConfig.load(path:)) ?? ExarConfig()
        } catch let error as ConfigError {
            throw ValidationError("configuration error: \(error)")
        }
        let logNote = try Self.bootstrapLogging(settings)
        let logger = Logger(label: "exar_db")
        if let logNote { logger.info("\(logNote)") }
        if config == nil { logger.info("no --config given: using the defaults") }

        Self.prepareProcess(settings, logger: logger)
        let engineLogger = Logger(label: "exar_db::database")
        let database = try Database(configuration: settings.databaseConfiguration { level, message in
            switch level {
            case .debug: engineLogger.debug("\(message)")
            case .info: engineLogger.info("\(message)")
            case .warning: engineLogger.warning("\(message)")
            case .error: engineLogger.error("\(message)")
            }
        })
        logger.info("data folder: \(expandTilde(settings.database.logsPath))")
        let server = ExarServer(configuration: settings.server, database: database, logger: logger)
        // The HTTP side comes after the protocol server: a graceful shutdown stops the services in
        // reverse order, so it stops (its live tails end) while the shared event loops still run.
        var services: [ServiceGroupConfiguration.ServiceConfiguration] = [.init(service: server)]
        if settings.http.enabled {
            let http = ExarHTTPServer(
                configuration: settings.httpConfiguration, database: database, eventLoopGroup: server.eventLoopGroup,
                serverStatistics: { server.statistics }, logger: Logger(label: "exar_db::http"))
            services.append(.init(service: http))
        }
        let group = ServiceGroup(
            configuration: ServiceGroupConfiguration(
                services: services,
                gracefulShutdownSignals: [.sigterm, .sigint],
                logger: logger))
        try await group.run()
    }

    /// Process-wide settings a server needs:
    /// - `SIGXFSZ` ignored, so a file-size limit (`ulimit -f`) makes a write fail with `EFBIG`,
    ///   answered as an `IoError`, instead of killing the process;
    /// - `SIGPIPE` ignored (NIO does it too; a vanished client is never fatal);
    /// - the open-files limit raised to its hard limit, as `max_connections` needs one descriptor each.
    static func prepareProcess(_ settings: ExarConfig, logger: Logger) {
        signal(SIGXFSZ, SIG_IGN)
        signal(SIGPIPE, SIG_IGN)
        var limit = rlimit()
        let resource = __rlimit_resource_t(RLIMIT_NOFILE.rawValue)
        guard getrlimit(resource, &limit) == 0 else { return }
        if limit.rlim_cur < limit.rlim_max {
            var raised = limit
            raised.rlim_cur = limit.rlim_max
            if setrlimit(resource, &raised) == 0 { limit = raised }
        }
        // Room for the collections' segment files besides the connections.
        let needed = rlim_t(settings.server.maxConnections + 256)
        if limit.rlim_cur != rlim_t.max && limit.rlim_cur < needed {
            logger.warning("open-files limit \(limit.rlim_cur) is below max_connections + 256 (\(needed)): raise it (ulimit -n) or lower server.max_connections")
        }
    }

    /// Sets up swift-log from the log4rs file; returns what to say about it once logging works.
    static func bootstrapLogging(_ settings: ExarConfig) throws -> String? {
        let path = expandTilde(settings.log4rsPath)
        guard FileManager.default.fileExists(atPath: path) else {
            try Log4rsConfig().bootstrap()
            return "logging config \(path) not found: logging info and above to the console"
        }
        do {
            let text = try String(contentsOfFile: path, encoding: .utf8)
            try Log4rsConfig.parse(text).bootstrap()
            return nil
        } catch let error as ConfigError {
            throw ValidationError("logging configuration error in \(path): \(error)")
        }
    }
}

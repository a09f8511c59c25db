import ExarCore
import ExarModel
@testable import ExarNet
import Foundation
import Logging
import Testing

@testable import ExarServer
@testable import exar_db

@Suite struct ConfigTests {
    private let designExample = """
        log4rs_path = "/path/to/log4rs.toml"
        [database]
        logs_path = "~/exar-db/data"
        scanners = { nr_of_scanners = 2, sleep_time_in_ms = 10 }
        [database.collections.my-collection]
        routing_strategy = "Random"
        scanners = { nr_of_scanners = 4, sleep_time_in_ms = 5 }
        [server]
        host = "127.0.0.1"
        port = 38580
        username = "my-username"
        password = "my-secret"
        """

    @Test func theOriginalExampleLoads() throws {
        let config = try ExarConfig.parse(designExample)
        #expect(config.log4rsPath == "/path/to/log4rs.toml")
        #expect(config.database.defaults.scanners == ScannerConfiguration(count: 2, sleepTimeMilliseconds: 10))
        let collection = try #require(config.database.collections["my-collection"])
        #expect(collection.routingStrategy == .random)
        #expect(collection.scanners == ScannerConfiguration(count: 4, sleepTimeMilliseconds: 5))
        #expect(config.server == ServerConfiguration(host: "127.0.0.1", port: 38580, username: "my-username", password: "my-secret"))
        let home = ProcessInfo.processInfo.environment["HOME"] ?? NSHomeDirectory()
        #expect(config.databaseConfiguration(logHandler: nil).logsPath == home + "/exar-db/data")
    }

    @Test func theShippedConfigFilesLoad() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let config = try ExarConfig.load(path: root.appendingPathComponent("config/exar-db.toml").path)
        #expect(config.database.collections["my-collection"]?.compression == .lz4)
        #expect(config.server.maxConnections == 10_000 && config.server.maxLoginFailures == 5)
        #expect(config.database.collections["my-collection"]?.segmentSize == 64 << 20)
        let log = try Log4rsConfig.parse(String(contentsOf: root.appendingPathComponent("config/log4rs.toml"), encoding: .utf8))
        #expect(log.level == .info)
        #expect(log.appenders.count == 2)
    }

    @Test func emptyConfigGivesTheDefaults() throws {
        let config = try ExarConfig.parse("")
        #expect(config == ExarConfig())
        #expect(config.server.host == "127.0.0.1" && config.server.port == 38580)
    }

    @Test func perCollectionOverridesInheritTheDatabaseDefaults() throws {
        let config = try ExarConfig.parse("""
            [database]
            segment_size = 1048576
            compression = "lz4"
            sync = "interval"
            sync_interval_ms = 50
            index_granularity = 100000
            [database.collections.a]
            sync = "always"
            """)
        let a = try #require(config.database.collections["a"])
        #expect(a.segmentSize == 1_048_576 && a.compression == .lz4 && a.sync == .always)
        #expect(config.database.defaults.sync == .interval(milliseconds: 50))
    }

    @Test(arguments: [
        ("bogus = 1", "bogus"),
        ("[database]\nlogs_path = 5", "database.logs_path"),
        ("[database]\nsegment_size = 10", "database.segment_size"),
        ("[database]\ncompression = \"zip\"", "database.compression"),
        ("[database]\nsync = \"sometimes\"", "database.sync"),
        ("[database]\nscanners = { nr_of_scanners = 0 }", "database.scanners.nr_of_scanners"),
        ("[database]\nscanners = { nr = 1 }", "database.scanners.nr"),
        ("[database.collections.x]\nrouting_strategy = \"Sticky\"", "database.collections.x.routing_strategy"),
        ("[database.collections.x]\nwhat = 1", "database.collections.x.what"),
        ("[server]\nport = 70000", "server.port"),
        ("[server]\nusername = \"u\"", "server.password"),
        ("[server]\nhots = \"x\"", "server.hots"),
        ("[server]\nmax_connections = 0", "server.max_connections"),
        ("[server]\nmax_login_failures = 0", "server.max_login_failures"),
    ])
    func badConfigsNameTheKey(text: String, key: String) throws {
        do {
            _ = try ExarConfig.parse(text)
            Issue.record("accepted: \(text)")
        } catch let error as ConfigError {
            #expect(error.key == key, "\(error)")
        }
    }

    @Test func log4rsPatternsRender() throws {
        let pattern = LogPattern("[{d(%+)(local)}] [{h({l})}] [{t}] {m}{n}")
        let line = pattern.render(level: .warning, target: "exar_db", message: "hello", colors: false)
        #expect(line.hasPrefix("[20"))
        #expect(line.hasSuffix("] [WARN] [exar_db] hello\n"))
        #expect(throws: ConfigError.self) { try Log4rsConfig.parse("[root]\nlevel = \"loud\"") }
        #expect(throws: ConfigError.self) { try Log4rsConfig.parse("[appenders.x]\nkind = \"syslog\"") }
    }
}

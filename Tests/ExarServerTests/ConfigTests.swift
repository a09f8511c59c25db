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

    @Test func theHTTPSideTakesTheServersHostAndCredentials() throws {
        let defaults = try ExarConfig.parse("[server]\nhost = \"0.0.0.0\"\nusername = \"u\"\npassword = \"p\"\nmax_line_bytes = 2048")
        #expect(defaults.http.enabled)
        #expect(defaults.httpConfiguration.host == "0.0.0.0")
        #expect(defaults.httpConfiguration.port == 38581)
        #expect(defaults.httpConfiguration.username == "u" && defaults.httpConfiguration.password == "p")
        #expect(defaults.httpConfiguration.maxBodyBytes == 2048)
        let own = try ExarConfig.parse("[http]\nenabled = false\nhost = \"::1\"\nport = 9000")
        #expect(!own.http.enabled)
        #expect(own.httpConfiguration.host == "::1")
        #expect(own.httpConfiguration.port == 9000)
    }

    @Test func theShippedConfigFilesLoad() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let config = try ExarConfig.load(path: root.appendingPathComponent("config/exar-db.toml").path)
        #expect(config.database.collections["my-collection"]?.compression == .lz4)
        #expect(config.server.maxConnections == 10_000 && config.server.maxLoginFailures == 5)
        #expect(config.database.collections["my-collection"]?.segmentSize == 64 << 20)
        #expect(config.database.defaults.retention.keepsEverything)
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

    @Test func retentionMergesKeyByKeyWithTheDefaults() throws {
        let config = try ExarConfig.parse("""
            [database]
            retention = { max_bytes = 10737418240, max_age_in_ms = 0 }
            [database.collections.short]
            retention = { max_age_in_ms = 3600000 }
            [database.collections.plain]
            compression = "lz4"
            """)
        #expect(config.database.defaults.retention == RetentionPolicy(maxBytes: 10 << 30))
        #expect(config.database.collections["short"]?.retention == RetentionPolicy(maxBytes: 10 << 30, maxAgeMilliseconds: 3_600_000))
        #expect(config.database.collections["plain"]?.retention == RetentionPolicy(maxBytes: 10 << 30))
        #expect(try ExarConfig.parse("").database.defaults.retention.keepsEverything)
    }

    @Test(arguments: [
        ("bogus = 1", "bogus"),
        ("[database]\nretention = { max_bytes = -1 }", "database.retention.max_bytes"),
        ("[database.collections.x]\nretention = { max_age_in_ms = -5 }", "database.collections.x.retention.max_age_in_ms"),
        ("[database]\nretention = { max_size = 1 }", "database.retention.max_size"),
        ("[database]\nretention = 5", "database.retention"),
        ("[database]\nlogs_path = 5", "database.logs_path"),
        ("[database]\nmax_open_collections = -1", "database.max_open_collections"),
        ("[database.collections.x]\nmax_open_collections = 5", "database.collections.x.max_open_collections"),
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
        ("[http]\nport = -1", "http.port"),
        ("[http]\nenabled = \"yes\"", "http.enabled"),
        ("[http]\nprot = 1", "http.prot"),
    ])
    func badConfigsNameTheKey(text: String, key: String) throws {
        do {
            _ = try ExarConfig.parse(text)
            Issue.record("accepted: \(text)")
        } catch let error as ConfigError {
            #expect(error.key == key, "\(error)")
        }
    }

    @Test func theBoundOfOpenCollectionsIsReadFromTheDatabaseTable() throws {
        #expect(try ExarConfig.parse("").databaseConfiguration(logHandler: nil).maxOpenCollections == 1000)
        let bounded = try ExarConfig.parse("[database]\nmax_open_collections = 50")
        #expect(bounded.databaseConfiguration(logHandler: nil).maxOpenCollections == 50)
        let unbounded = try ExarConfig.parse("[database]\nmax_open_collections = 0")
        #expect(unbounded.databaseConfiguration(logHandler: nil).maxOpenCollections == 0)
    }

    @Test func aCollectionCanHaveItsOwnLogsPath() throws {
        let config = try ExarConfig.parse("""
            [database]
            logs_path = "/data"
            [database.collections.moved]
            logs_path = "~/elsewhere"
            [database.collections.stays]
            compression = "lz4"
            """)
        let home = ProcessInfo.processInfo.environment["HOME"] ?? NSHomeDirectory()
        let engine = config.databaseConfiguration(logHandler: nil)
        #expect(engine.directory(forCollection: "moved") == home + "/elsewhere/moved")
        #expect(engine.directory(forCollection: "stays") == "/data/stays")
        #expect(engine.directory(forCollection: "other") == "/data/other")
        #expect(throws: ConfigError(key: "database.collections.x.logs_path", message: "expected a string, got integer")) {
            try ExarConfig.parse("[database.collections.x]\nlogs_path = 3")
        }
        #expect(throws: ConfigError(key: "database.collections.x.logs_path", message: "must not be empty")) {
            try ExarConfig.parse("[database.collections.x]\nlogs_path = \"\"")
        }
    }
}

/// The configuration as the real `exar-db` process reads it.
@Suite(.serialized) struct ConfigProcessTests {
    @Test func aCollectionWithItsOwnLogsPathIsStoredThere() async throws {
        let elsewhere = NSTemporaryDirectory() + "exar-elsewhere-" + UUID().uuidString
        defer { try? FileManager.default.removeItem(atPath: elsewhere) }
        let server = try ExarProcess(database: ["segment_size = 65536", "[database.collections.moved]", "logs_path = \"\(elsewhere)\""])
        defer { server.removeFiles() }
        try await server.start()
        for collection in ["moved", "c"] {
            let client = try LineClient(port: server.port)
            client.send("Connect\t\(collection)\nPublish\tt\t0\thello \(collection)\n")
            #expect(client.readLines(2) == ["Connected", "Published\t1"])
        }
        #expect(server.stop() == 0)

        let files = FileManager.default
        let moved = try files.contentsOfDirectory(atPath: elsewhere + "/moved")
        #expect(moved.contains("00000000000000000001.log"), "\(moved)")
        #expect(!files.fileExists(atPath: server.dataFolder + "/moved"))
        #expect(!files.fileExists(atPath: elsewhere + "/c"))
        #expect(try files.contentsOfDirectory(atPath: server.dataFolder + "/c").contains("00000000000000000001.log"))

        // Restarted, the server finds the moved collection's events where it left them.
        try await server.start()
        #expect(try readAllEvents(port: server.port, collection: "moved")?.map { $0.hasSuffix("hello moved") } == [true])
        #expect(server.stop() == 0)
    }
}

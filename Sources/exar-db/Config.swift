import ExarCore
import ExarHTTP
import ExarServer
import Foundation
import TOMLKit

/// A configuration problem, naming the key.
struct ConfigError: Error, CustomStringConvertible, Equatable {
    let key: String
    let message: String
    var description: String { key.isEmpty ? message : "\(key): \(message)" }
}

/// The whole configuration of `exar-db`: the original's TOML keys plus ours, all optional.
struct ExarConfig: Equatable {
    var log4rsPath = "log4rs.toml"
    var database = DatabaseSettings()
    var server = ServerConfiguration()
    var http = HTTPSettings()

    /// `[http]`: the console, the HTTP API and `/metrics` (docs/HTTP.md).
    struct HTTPSettings: Equatable {
        var enabled = true
        /// `nil`: the protocol port's host.
        var host: String?
        var port = HTTPConfiguration.defaultPort
    }

    /// The HTTP side's settings: its own `[http]` keys, and the credentials and limits of `[server]`.
    var httpConfiguration: HTTPConfiguration {
        HTTPConfiguration(host: http.host ?? server.host, port: http.port, username: server.username,
                          password: server.password, maxLoginFailures: server.maxLoginFailures,
                          maxBodyBytes: server.maxLineBytes, version: ExarDBCommand.version)
    }

    struct DatabaseSettings: Equatable {
        var logsPath = "~/exar-db/data"
        var maxOpenCollections = DatabaseConfiguration.defaultMaxOpenCollections
        var defaults = CollectionConfiguration()
        var collections: [String: CollectionConfiguration] = [:]
    }

    /// The engine's configuration, paths (the database's and the collections' `logs_path`) expanded.
    func databaseConfiguration(logHandler: DatabaseLogHandler?) -> DatabaseConfiguration {
        let collections = database.collections.mapValues { collection in
            var expanded = collection
            expanded.logsPath = collection.logsPath.map(expandTilde)
            return expanded
        }
        var configuration = DatabaseConfiguration(logsPath: expandTilde(database.logsPath), defaults: database.defaults,
                                                  collections: collections, logHandler: logHandler)
        configuration.maxOpenCollections = database.maxOpenCollections
        return configuration
    }

    /// Loads a TOML file; every key is optional, unknown keys and bad values are errors.
    static func load(path: String) throws -> ExarConfig {
        let expanded = expandTilde(path)
        guard let text = try? String(contentsOfFile: expanded, encoding: .utf8) else {
            throw ConfigError(key: "", message: "cannot read config file \(expanded)")
        }
        return try parse(text)
    }

    static func parse(_ text: String) throws -> ExarConfig {
        let table: TOMLTable
        do {
            table = try TOMLTable(string: text)
        } catch let error as TOMLParseError {
            throw ConfigError(key: "", message: "invalid TOML at \(error.source.begin): \(error.description)")
        }
        var config = ExarConfig()
        var reader = TableReader(table: table, path: "")
        if let path = try reader.string("log4rs_path") { config.log4rsPath = path }
        if let database = try reader.table("database") {
            config.database = try parseDatabase(database)
        }
        if let server = try reader.table("server") {
            config.server = try parseServer(server)
        }
        if let http = try reader.table("http") {
            config.http = try parseHTTP(http)
        }
        try reader.rejectUnknownKeys()
        return config
    }

    private static func parseDatabase(_ reader: TableReader) throws -> DatabaseSettings {
        var reader = reader
        var settings = DatabaseSettings()
        if let path = try reader.string("logs_path") { settings.logsPath = path }
        if let limit = try reader.int("max_open_collections") {
            guard limit >= 0 else {
                throw ConfigError(key: reader.keyPath("max_open_collections"), message: "must be 0 (no bound) or more, got \(limit)")
            }
            settings.maxOpenCollections = limit
        }
        settings.defaults = try parseCollectionKeys(&reader, base: CollectionConfiguration())
        if let collections = try reader.table("collections") {
            var collectionsReader = collections
            for name in collectionsReader.keys {
                guard var collection = try collectionsReader.table(name) else { continue }
                var configuration = try parseCollectionKeys(&collection, base: settings.defaults)
                // Only a collection's own table can move it; `[database]`'s `logs_path` is the data folder itself.
                if let path = try collection.string("logs_path") {
                    guard !path.isEmpty else {
                        throw ConfigError(key: collection.keyPath("logs_path"), message: "must not be empty")
                    }
                    configuration.logsPath = path
                }
                try collection.rejectUnknownKeys()
                settings.collections[name] = configuration
            }
            try collectionsReader.rejectUnknownKeys()
        }
        try reader.rejectUnknownKeys()
        return settings
    }

    /// The keys a collection can set, in `[database]` (the defaults) or `[database.collections.NAME]`.
    private static func parseCollectionKeys(_ reader: inout TableReader, base: CollectionConfiguration) throws
        -> CollectionConfiguration
    {
        var configuration = base
        if let size = try reader.int("segment_size") { configuration.segmentSize = size }
        if let interval = try reader.int("index_interval_bytes") { configuration.indexIntervalBytes = interval }
        if let granularity = try reader.int("index_granularity") {
            // The original indexed every N events; ours indexes by bytes. Accepted for compatibility.
            guard granularity > 0 else { throw ConfigError(key: reader.keyPath("index_granularity"), message: "must be positive") }
        }
        if let compression = try reader.string("compression") {
            guard let value = Compression(rawValue: compression) else {
                throw ConfigError(key: reader.keyPath("compression"), message: "must be \"none\" or \"lz4\", got \"\(compression)\"")
            }
            configuration.compression = value
        }
        let interval = try reader.int("sync_interval_ms")
        if let sync = try reader.string("sync") {
            switch sync {
            case "none": configuration.sync = .none
            case "always": configuration.sync = .always
            case "interval": configuration.sync = .interval(milliseconds: interval ?? 1000)
            default:
                throw ConfigError(key: reader.keyPath("sync"), message: "must be \"none\", \"interval\" or \"always\", got \"\(sync)\"")
            }
        } else if let interval {
            configuration.sync = .interval(milliseconds: interval)
        }
        if let strategy = try reader.string("routing_strategy") {
            guard let value = RoutingStrategy(rawValue: strategy) else {
                throw ConfigError(key: reader.keyPath("routing_strategy"), message: "must be \"RoundRobin\" or \"Random\", got \"\(strategy)\"")
            }
            configuration.routingStrategy = value
        }
        if var scanners = try reader.table("scanners") {
            if let count = try scanners.int("nr_of_scanners") { configuration.scanners.count = count }
            if let sleep = try scanners.int("sleep_time_in_ms") { configuration.scanners.sleepTimeMilliseconds = sleep }
            try scanners.rejectUnknownKeys()
        }
        if var retention = try reader.table("retention") {
            // Merged key by key with the defaults, like scanners: a collection may set only one bound.
            if let bytes = try retention.int("max_bytes") {
                guard bytes >= 0 else { throw ConfigError(key: retention.keyPath("max_bytes"), message: "must not be negative (0: no bound)") }
                configuration.retention.maxBytes = UInt64(bytes)
            }
            if let age = try retention.int("max_age_in_ms") {
                guard age >= 0 else { throw ConfigError(key: retention.keyPath("max_age_in_ms"), message: "must not be negative (0: no bound)") }
                configuration.retention.maxAgeMilliseconds = UInt64(age)
            }
            try retention.rejectUnknownKeys()
        }
        if var groups = try reader.table("groups") {
            if let wait = try groups.int("ack_wait_in_ms") { configuration.groups.ackWaitMilliseconds = wait }
            if let deliver = try groups.int("max_deliver") { configuration.groups.maxDeliver = deliver }
            try groups.rejectUnknownKeys()
        }
        do {
            try configuration.validate()
        } catch {
            // The engine's message starts with the key ("segment_size: must be ..."): put the table in front.
            guard case .io(_, let text) = error, let colon = text.range(of: ": ") else {
                throw ConfigError(key: reader.path, message: "\(error)")
            }
            throw ConfigError(key: reader.keyPath(String(text[..<colon.lowerBound])), message: String(text[colon.upperBound...]))
        }
        return configuration
    }

    private static func parseHTTP(_ reader: TableReader) throws -> HTTPSettings {
        var reader = reader
        var http = HTTPSettings()
        if let enabled = try reader.bool("enabled") { http.enabled = enabled }
        if let host = try reader.string("host") { http.host = host }
        if let port = try reader.int("port") {
            guard (0...65535).contains(port) else { throw ConfigError(key: "http.port", message: "must be between 0 and 65535, got \(port)") }
            http.port = port
        }
        try reader.rejectUnknownKeys()
        return http
    }

    private static func parseServer(_ reader: TableReader) throws -> ServerConfiguration {
        var reader = reader
        var server = ServerConfiguration()
        if let host = try reader.string("host") { server.host = host }
        if let port = try reader.int("port") {
            guard (0...65535).contains(port) else { throw ConfigError(key: "server.port", message: "must be between 0 and 65535, got \(port)") }
            server.port = port
        }
        server.username = try reader.string("username")
        server.password = try reader.string("password")
        if (server.username == nil) != (server.password == nil) {
            throw ConfigError(key: server.username == nil ? "server.username" : "server.password",
                              message: "username and password must be set together")
        }
        if let limit = try reader.int("max_line_bytes") {
            guard limit >= 1024 else { throw ConfigError(key: "server.max_line_bytes", message: "must be at least 1024, got \(limit)") }
            server.maxLineBytes = limit
        }
        if let threads = try reader.int("threads") {
            guard threads >= 0 && threads <= 256 else { throw ConfigError(key: "server.threads", message: "must be between 0 and 256") }
            server.threads = threads
        }
        if let limit = try reader.int("max_connections") {
            guard limit >= 1 else { throw ConfigError(key: "server.max_connections", message: "must be at least 1, got \(limit)") }
            server.maxConnections = limit
        }
        if let limit = try reader.int("max_login_failures") {
            guard limit >= 1 else { throw ConfigError(key: "server.max_login_failures", message: "must be at least 1, got \(limit)") }
            server.maxLoginFailures = limit
        }
        try reader.rejectUnknownKeys()
        return server
    }
}

/// Reads typed values out of a TOML table, remembering which keys were used.
struct TableReader {
    let table: TOMLTable
    let path: String
    private var used: Set<String> = []

    init(table: TOMLTable, path: String) {
        self.table = table
        self.path = path
    }

    var keys: [String] { table.keys }

    func keyPath(_ key: String) -> String {
        path.isEmpty ? key : path + "." + key
    }

    mutating func string(_ key: String) throws -> String? {
        guard let value = take(key) else { return nil }
        guard let string = value.string else { throw typeError(key, "a string", value) }
        return string
    }

    mutating func int(_ key: String) throws -> Int? {
        guard let value = take(key) else { return nil }
        guard let int = value.int else { throw typeError(key, "an integer", value) }
        return int
    }

    mutating func bool(_ key: String) throws -> Bool? {
        guard let value = take(key) else { return nil }
        guard let bool = value.bool else { throw typeError(key, "a boolean", value) }
        return bool
    }

    mutating func table(_ key: String) throws -> TableReader? {
        guard let value = take(key) else { return nil }
        guard let table = value.table else { throw typeError(key, "a table", value) }
        return TableReader(table: table, path: keyPath(key))
    }

    mutating func array(_ key: String) throws -> TOMLArray? {
        guard let value = take(key) else { return nil }
        guard let array = value.array else { throw typeError(key, "an array", value) }
        return array
    }

    /// The value of `key`, of whatever type.
    mutating func value(_ key: String) -> (any TOMLValueConvertible)? {
        take(key)
    }

    /// Marks every key as known (a table whose whole meaning is ignored, already warned about).
    mutating func ignoreAll() {
        used.formUnion(table.keys)
    }

    /// Marks a key as known without reading it.
    mutating func ignore(_ key: String) {
        used.insert(key)
    }

    private mutating func take(_ key: String) -> (any TOMLValueConvertible)? {
        used.insert(key)
        return table[key]
    }

    private func typeError(_ key: String, _ expected: String, _ value: any TOMLValueConvertible) -> ConfigError {
        ConfigError(key: keyPath(key), message: "expected \(expected), got \(value.type)")
    }

    /// The keys not read (nor ignored) so far, as full key paths, sorted.
    var unknownKeyPaths: [String] {
        table.keys.sorted().filter { !used.contains($0) }.map(keyPath)
    }

    func rejectUnknownKeys() throws {
        for key in table.keys.sorted() where !used.contains(key) {
            throw ConfigError(key: keyPath(key), message: "unknown key")
        }
    }
}

/// `~` and `~/...` become the home folder.
func expandTilde(_ path: String) -> String {
    guard path == "~" || path.hasPrefix("~/") else { return path }
    let home = ProcessInfo.processInfo.environment["HOME"] ?? NSHomeDirectory()
    return home + path.dropFirst()
}

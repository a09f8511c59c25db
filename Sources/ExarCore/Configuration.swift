import ExarModel

/// Whether batches are compressed on disk.
public enum Compression: String, Sendable, Equatable, CaseIterable {
    /// Batches are stored raw.
    case none
    /// A batch payload is LZ4 block compressed when that makes it smaller.
    case lz4
}

/// When written events are forced to the device.
public enum SyncPolicy: Sendable, Equatable {
    /// Leave it to the page cache: an acknowledged event survives the process being killed, not a power loss.
    case none
    /// `fdatasync` the active segment every so many milliseconds while it has unsynced events.
    case interval(milliseconds: Int)
    /// `fdatasync` before acknowledging, once per group commit.
    case always
}

/// How a new subscription picks one of the collection's scanners.
public enum RoutingStrategy: String, Sendable, Equatable, CaseIterable {
    /// In turn (the default).
    case roundRobin = "RoundRobin"
    /// At random.
    case random = "Random"
}

/// The scanners that serve a collection's subscriptions.
public struct ScannerConfiguration: Sendable, Equatable {
    /// The number of scanner threads (`nr_of_scanners`).
    public var count: Int
    /// The longest wait between checks for new events, in milliseconds (`sleep_time_in_ms`); scanners
    /// are woken by every commit, so this only bounds a missed wake-up.
    public var sleepTimeMilliseconds: Int

    /// Creates a scanner configuration.
    public init(count: Int = 2, sleepTimeMilliseconds: Int = 10) {
        self.count = count
        self.sleepTimeMilliseconds = sleepTimeMilliseconds
    }
}

/// How much of a collection is kept: whole sealed segments beyond these bounds are deleted,
/// oldest first (`retention = { max_bytes = 0, max_age_in_ms = 0 }`, `0` meaning no bound).
public struct RetentionPolicy: Sendable, Equatable {
    /// Bytes on disk of the collection's segment files and side files (`max_bytes`); `0`: no bound.
    public var maxBytes: UInt64
    /// Age of a segment's newest event, by its timestamp, in ms (`max_age_in_ms`); `0`: no bound.
    public var maxAgeMilliseconds: UInt64

    /// Creates a policy; the defaults keep everything.
    public init(maxBytes: UInt64 = 0, maxAgeMilliseconds: UInt64 = 0) {
        self.maxBytes = maxBytes
        self.maxAgeMilliseconds = maxAgeMilliseconds
    }

    /// Whether nothing is ever deleted.
    public var keepsEverything: Bool { maxBytes == 0 && maxAgeMilliseconds == 0 }
}

/// How a collection's consumer groups redeliver (`groups = { ack_wait_in_ms = 30000, max_deliver = 5 }`).
public struct GroupSettings: Sendable, Equatable {
    /// How long a member may hold an event without acknowledging it before it goes to another
    /// member (`ack_wait_in_ms`).
    public var ackWaitMilliseconds: Int
    /// Deliveries of one event after which, unacknowledged, it is parked (`max_deliver`).
    public var maxDeliver: Int

    /// Creates settings; the defaults are 30 s and 5 deliveries.
    public init(ackWaitMilliseconds: Int = 30_000, maxDeliver: Int = 5) {
        self.ackWaitMilliseconds = ackWaitMilliseconds
        self.maxDeliver = maxDeliver
    }
}

/// The settings of one collection.
public struct CollectionConfiguration: Sendable, Equatable {
    /// The size of every segment file in bytes (`segment_size`), 64 MiB by default.
    public var segmentSize: Int
    /// Bytes of events between two sparse index entries (`index_interval_bytes`), 4 KiB by default.
    public var indexIntervalBytes: Int
    /// Compression of batches (`compression`).
    public var compression: Compression
    /// When events are forced to the device (`sync`).
    public var sync: SyncPolicy
    /// The scanners (`scanners`).
    public var scanners: ScannerConfiguration
    /// How subscriptions are spread over the scanners (`routing_strategy`).
    public var routingStrategy: RoutingStrategy
    /// The folder that holds this collection's folder (`logs_path` of a collection's table);
    /// `nil`: the database's `logs_path`.
    public var logsPath: String?
    /// What is kept (`retention`); by default everything.
    public var retention: RetentionPolicy
    /// How its consumer groups redeliver (`groups`).
    public var groups = GroupSettings()
    /// How many tags' last ids the collection remembers for conditional publishes (tests set it lower).
    package var tagCacheCapacity = 65_536

    /// The smallest accepted segment size.
    public static let minimumSegmentSize = 4096
    /// The largest accepted segment size (byte positions are stored in 32 bits).
    public static let maximumSegmentSize = 1 << 31

    /// Creates a configuration; every parameter has the documented default.
    public init(
        segmentSize: Int = 64 * 1024 * 1024, indexIntervalBytes: Int = 4096, compression: Compression = .none,
        sync: SyncPolicy = .none, scanners: ScannerConfiguration = ScannerConfiguration(),
        routingStrategy: RoutingStrategy = .roundRobin, logsPath: String? = nil,
        retention: RetentionPolicy = RetentionPolicy()
    ) {
        self.retention = retention
        self.segmentSize = segmentSize
        self.indexIntervalBytes = indexIntervalBytes
        self.compression = compression
        self.sync = sync
        self.scanners = scanners
        self.routingStrategy = routingStrategy
        self.logsPath = logsPath
    }

    /// Checks every value; the error names the setting.
    /// - Throws: ``ExarError/io(_:_:)`` of kind `InvalidInput`.
    public func validate() throws(ExarError) {
        func fail(_ key: String, _ why: String) -> ExarError { .io(.invalidInput, "\(key): \(why)") }
        if segmentSize < Self.minimumSegmentSize || segmentSize > Self.maximumSegmentSize {
            throw fail("segment_size", "must be between \(Self.minimumSegmentSize) and \(Self.maximumSegmentSize), got \(segmentSize)")
        }
        if indexIntervalBytes < 64 || indexIntervalBytes > segmentSize {
            throw fail("index_interval_bytes", "must be between 64 and segment_size, got \(indexIntervalBytes)")
        }
        if case .interval(let milliseconds) = sync, milliseconds < 1 {
            throw fail("sync", "interval must be at least 1 ms, got \(milliseconds)")
        }
        if scanners.count < 1 || scanners.count > 256 {
            throw fail("scanners.nr_of_scanners", "must be between 1 and 256, got \(scanners.count)")
        }
        if groups.ackWaitMilliseconds < 1 || groups.ackWaitMilliseconds > 86_400_000 {
            throw fail("groups.ack_wait_in_ms", "must be between 1 and 86400000, got \(groups.ackWaitMilliseconds)")
        }
        if groups.maxDeliver < 1 || groups.maxDeliver > 1_000_000 {
            throw fail("groups.max_deliver", "must be between 1 and 1000000, got \(groups.maxDeliver)")
        }
        if scanners.sleepTimeMilliseconds < 1 {
            throw fail("scanners.sleep_time_in_ms", "must be at least 1, got \(scanners.sleepTimeMilliseconds)")
        }
    }

    /// The largest event (tags plus data bytes) a segment of this size can hold.
    public var maximumEventBytes: Int {
        segmentSize - Format.Segment.headerSize - Format.Batch.headerSize - Format.Record.headerSize
    }
}

/// The level of a message the engine logs.
public enum DatabaseLogLevel: String, Sendable, Comparable {
    case debug, info, warning, error

    public static func < (lhs: Self, rhs: Self) -> Bool {
        let order: [Self] = [.debug, .info, .warning, .error]
        return order.firstIndex(of: lhs)! < order.firstIndex(of: rhs)!
    }
}

/// Where the engine's messages go (the server plugs swift-log in here).
public typealias DatabaseLogHandler = @Sendable (DatabaseLogLevel, String) -> Void

/// The settings of a database: where it lives and how its collections behave.
public struct DatabaseConfiguration: Sendable {
    /// The folder holding one folder per collection (`logs_path`).
    public var logsPath: String
    /// The settings of collections without their own.
    public var defaults: CollectionConfiguration
    /// Settings of named collections (already merged with the defaults).
    public var collections: [String: CollectionConfiguration]
    /// Receives what the engine reports (recovery, corruption); `nil` drops it.
    public var logHandler: DatabaseLogHandler?
    /// Seconds between the retention thread's passes over every collection with a policy (it
    /// also runs when a segment rolls or the active one is half full).
    package var retentionCheckInterval: Double = 2
    /// `false`: retention runs only when a full disk stops a roll (tests of that path).
    package var retentionRunsAutomatically = true
    /// How many collections may stay open while nothing uses them (`max_open_collections`):
    /// past it the least recently used idle ones are closed, to be reopened on their next use.
    /// `0`: no bound. Collections in use (leased, subscribed) count but are never closed.
    public var maxOpenCollections = DatabaseConfiguration.defaultMaxOpenCollections
    /// The default of ``maxOpenCollections``.
    public static let defaultMaxOpenCollections = 1000

    /// Creates a configuration.
    public init(
        logsPath: String, defaults: CollectionConfiguration = CollectionConfiguration(),
        collections: [String: CollectionConfiguration] = [:], logHandler: DatabaseLogHandler? = nil
    ) {
        self.logsPath = logsPath
        self.defaults = defaults
        self.collections = collections
        self.logHandler = logHandler
    }

    /// The settings of the collection `name`.
    public func configuration(forCollection name: String) -> CollectionConfiguration {
        collections[name] ?? defaults
    }

    /// The folder of the collection `name`: `<logs_path>/<name>`, with the collection's own
    /// `logs_path` when it has one.
    public func directory(forCollection name: String) -> String {
        (configuration(forCollection: name).logsPath ?? logsPath) + "/" + name
    }
}

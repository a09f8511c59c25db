import ExarModel
import Synchronization

/// An Exar database: a folder (`logs_path`) of collections, each opened on first use.
public final class Database: Sendable {
    /// The settings the database was opened with.
    public let configuration: DatabaseConfiguration
    private let collections = Locked<[String: Collection]>([:])
    private let closed = Atomic<Bool>(false)

    /// Opens (creating if needed) the database folder.
    /// - Throws: ``ExarError/io(_:_:)`` when the folder cannot be created or a setting is invalid.
    public init(configuration: DatabaseConfiguration) throws(ExarError) {
        try configuration.defaults.validate()
        for (_, collection) in configuration.collections {
            try collection.validate()
        }
        try FileSystem.createDirectories(configuration.logsPath)
        self.configuration = configuration
    }

    deinit {
        close()
    }

    /// The collection `name`, opened (and recovered) or created on first use.
    /// - Throws: ``ExarError/connection(_:)`` for a name that is not a plain folder name, an I/O
    ///   error when its files cannot be opened.
    public func collection(_ name: String) throws(ExarError) -> Collection {
        try Self.validateName(name)
        return try collections.withLock { (open: inout [String: Collection]) throws(ExarError) -> Collection in
            if closed.load(ordering: .acquiring) {
                throw .io(.notConnected, "database is closed")
            }
            if let collection = open[name] { return collection }
            let collection = try Collection(
                name: name, directory: configuration.logsPath + "/" + name,
                configuration: configuration.configuration(forCollection: name),
                logHandler: configuration.logHandler)
            open[name] = collection
            return collection
        }
    }

    /// The collection `name` if it is already open (never opens or creates one, never waits for disk).
    public func openCollection(_ name: String) -> Collection? {
        collections.withLock { $0[name] }
    }

    /// Closes every collection: pending publishes are written, segments sealed, subscriptions ended.
    public func close() {
        guard !closed.exchange(true, ordering: .acquiringAndReleasing) else { return }
        let open = collections.withLock { $0 }
        for collection in open.values {
            collection.close()
        }
    }

    /// Checks that `name` is a single, plain folder name inside `logs_path`.
    /// - Throws: ``ExarError/connection(_:)`` saying what is wrong.
    public static func validateName(_ name: String) throws(ExarError) {
        let bytes = Array(name.utf8)
        if bytes.isEmpty {
            throw .connection("collection name must not be empty")
        }
        if bytes.count > 200 {
            throw .connection("collection name must be at most 200 bytes")
        }
        if name == "." || name == ".." {
            throw .connection("collection name must not be . or ..")
        }
        for byte in bytes where byte == UInt8(ascii: "/") || byte == 0 || byte < 0x20 || byte == 0x7F {
            throw .connection("collection name must not contain slashes or control characters")
        }
    }
}

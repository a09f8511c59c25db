import ExarModel
import Foundation
import Synchronization

/// An Exar database: a folder (`logs_path`) of collections, each opened on first use.
///
/// Opening a collection (which may recover it from disk) and dropping one happen outside the
/// map's lock: a caller that wants another collection, or asks with ``openCollection(_:)``
/// whether one is open, never waits for that disk work. Callers of the same name wait for it.
public final class Database: Sendable {
    /// The settings the database was opened with.
    public let configuration: DatabaseConfiguration
    private let state = Locked<State>(State())
    private let closed = Atomic<Bool>(false)
    private let cacheClosings = CacheClosings()
    /// Publishes counted by the edges that take them (the protocol port, the HTTP API).
    package let publishCounters = PublishCounters()
    /// Deletes what the collections' retention policies no longer keep (a thread once one has a policy).
    private let retention: RetentionService

    private struct State {
        var open: [String: Collection] = [:]
        /// Names being opened or dropped right now; callers of such a name wait for its gate.
        var busy: [String: Gate] = [:]
    }

    /// The prefix of a dropped collection's folder while it is deleted; no collection name starts with it.
    static let droppedPrefix = ".exar-dropped-"

    /// Opens (creating if needed) the database folder, and finishes deleting the folders of
    /// collections whose drop a crash interrupted.
    /// - Throws: ``ExarError/io(_:_:)`` when the folder cannot be created or a setting is invalid.
    public init(configuration: DatabaseConfiguration) throws(ExarError) {
        try configuration.defaults.validate()
        for (_, collection) in configuration.collections {
            try collection.validate()
        }
        try FileSystem.createDirectories(configuration.logsPath)
        self.configuration = configuration
        retention = RetentionService(interval: configuration.retentionCheckInterval,
                                     automatic: configuration.retentionRunsAutomatically)
        var folders = Set([configuration.logsPath])
        for (_, collection) in configuration.collections {
            if let path = collection.logsPath { folders.insert(path) }
        }
        for folder in folders {
            for name in (try? FileSystem.contents(of: folder)) ?? [] where name.hasPrefix(Self.droppedPrefix) {
                try? FileManager.default.removeItem(atPath: folder + "/" + name)
            }
        }
    }

    deinit {
        close()
    }

    /// The collection `name`, opened (and recovered) or created on first use, and pinned open:
    /// the caller may keep it for as long as the database is open, so the cache of open
    /// collections never closes it. Servers that open many collections take a ``lease(_:)``.
    /// - Throws: ``ExarError/connection(_:)`` for a name that is not a plain folder name, an I/O
    ///   error when its files cannot be opened.
    public func collection(_ name: String) throws(ExarError) -> Collection {
        try obtain(name, lease: false)
    }

    /// The collection `name`, opened or created on first use, held open while the lease lives;
    /// once no lease, subscription or group member uses it, the cache may close it
    /// (``DatabaseConfiguration/maxOpenCollections``) and the next lease reopens it.
    /// - Throws: as ``collection(_:)``.
    public func lease(_ name: String) throws(ExarError) -> CollectionLease {
        CollectionLease(try obtain(name, lease: true))
    }

    /// A lease of `name` if it is open now (never opens or creates one, never waits for disk).
    public func openLease(_ name: String) -> CollectionLease? {
        state.withLock { state -> CollectionLease? in
            guard let collection = state.open[name] else { return nil }
            Self.hold(collection, lease: true)
            return CollectionLease(collection)
        }
    }

    /// A lease of `name` when its folder exists, opened if it was not; `nil` when there is no
    /// such collection (this never creates one).
    /// - Throws: ``ExarError/connection(_:)`` for an invalid name, an I/O error when it cannot be opened.
    public func existingLease(_ name: String) throws(ExarError) -> CollectionLease? {
        try Self.validateName(name)
        if let open = openLease(name) { return open }
        guard folderExists(name) else { return nil }
        return try lease(name)
    }

    private func folderExists(_ name: String) -> Bool {
        var isDirectory: ObjCBool = false
        return FileManager.default.fileExists(atPath: configuration.directory(forCollection: name), isDirectory: &isDirectory)
            && isDirectory.boolValue
    }

    /// Marks `collection` as used by a new lease or as pinned (under `state`'s lock).
    private static func hold(_ collection: Collection, lease: Bool) {
        if lease {
            collection.leaseCount.add(1, ordering: .acquiring)
            collection.lastUsed.store(WorkLanes.now, ordering: .relaxed)
        } else {
            collection.pinned.store(true, ordering: .relaxed)
        }
    }

    private func obtain(_ name: String, lease: Bool) throws(ExarError) -> Collection {
        try Self.validateName(name)
        while true {
            enum Step { case found(Collection), wait(Gate), open(Gate) }
            let step = try state.withLock { (state: inout State) throws(ExarError) -> Step in
                if closed.load(ordering: .acquiring) {
                    throw .io(.notConnected, "database is closed")
                }
                if let collection = state.open[name] {
                    Self.hold(collection, lease: lease)
                    return .found(collection)
                }
                if let gate = state.busy[name] { return .wait(gate) }
                let gate = Gate()
                state.busy[name] = gate
                return .open(gate)
            }
            switch step {
            case .found(let collection):
                return collection
            case .wait(let gate):
                gate.wait()
            case .open(let gate):
                let result = Result { () throws(ExarError) -> Collection in
                    try Collection(
                        name: name, directory: configuration.directory(forCollection: name),
                        configuration: configuration.configuration(forCollection: name),
                        logHandler: configuration.logHandler, retention: retention)
                }
                let (lateClose, victims) = state.withLock { state -> (Bool, [Victim]) in
                    state.busy[name] = nil
                    guard case .success(let collection) = result else { return (false, []) }
                    if closed.load(ordering: .acquiring) { return (true, []) }
                    Self.hold(collection, lease: lease)
                    state.open[name] = collection
                    return (false, Self.takeVictims(&state, limit: configuration.maxOpenCollections))
                }
                gate.open()
                let collection = try result.get()
                if lateClose {
                    collection.close()
                    throw .io(.notConnected, "database is closed")
                }
                closeVictims(victims)
                return collection
            }
        }
    }

    /// An idle collection the cache closes, and the gate its name is busy with meanwhile.
    private typealias Victim = (name: String, collection: Collection, gate: Gate)

    /// Takes the idle collections the cache closes out of the map, each busy until it is closed
    /// (a lease of one of them meanwhile waits, then reopens it).
    private static func takeVictims(_ state: inout State, limit: Int) -> [Victim] {
        CollectionCache.victims(open: state.open, busy: state.busy.count, limit: limit).map { name, collection in
            state.open[name] = nil
            let gate = Gate()
            state.busy[name] = gate
            return (name, collection, gate)
        }
    }

    /// Closes them on the cache's own queue, so the caller that opened a collection does not
    /// wait for others' seals and syncs (a lease of a victim's name waits on its gate).
    private func closeVictims(_ victims: [Victim]) {
        guard !victims.isEmpty else { return }
        let state = self.state
        let closings = cacheClosings
        Self.closingQueue.async {
            for victim in victims {
                // With `sync = none` nothing asks for the sync a shutdown does; it would hold the
                // collection's writer lane (and the others on it) for each idle collection.
                victim.collection.close(syncing: victim.collection.configuration.sync != .none)
                state.withLock { state in state.busy[victim.name] = nil }
                victim.gate.open()
                closings.increment()
            }
        }
    }

    /// Where the cache closes idle collections, one at a time.
    private static let closingQueue = DispatchQueue(label: "exar-cache-close")

    /// How many idle collections the cache has closed since the database was opened.
    public var collectionsClosedByCache: Int { cacheClosings.value }

    /// A counter the closing queue can hold after the database is gone.
    private final class CacheClosings: Sendable {
        private let count = Atomic<Int>(0)
        func increment() { count.add(1, ordering: .relaxed) }
        var value: Int { count.load(ordering: .relaxed) }
    }

    /// The collection `name` if it is already open (never opens or creates one, never waits for
    /// disk), pinned open as by ``collection(_:)``.
    public func openCollection(_ name: String) -> Collection? {
        state.withLock { state -> Collection? in
            guard let collection = state.open[name] else { return nil }
            Self.hold(collection, lease: false)
            return collection
        }
    }

    /// The collection `name` when its folder exists, opened if it was not; `nil` when there is no
    /// such collection (this never creates one).
    /// - Throws: ``ExarError/connection(_:)`` for an invalid name, an I/O error when it cannot be opened.
    public func existingCollection(_ name: String) throws(ExarError) -> Collection? {
        try Self.validateName(name)
        if let open = openCollection(name) { return open }
        guard folderExists(name) else { return nil }
        return try collection(name)
    }

    /// The names of the collections on disk (the folders of `logs_path`, and of the collections
    /// with their own `logs_path`) and of those open, sorted.
    public func collectionNames() -> [String] {
        var names = Set(state.withLock { Array($0.open.keys) })
        for name in (try? FileSystem.contents(of: configuration.logsPath)) ?? [] where Self.isCollectionFolder(name) {
            var isDirectory: ObjCBool = false
            let path = configuration.logsPath + "/" + name
            // A collection configured with its own logs_path lives there, not here.
            if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue,
               configuration.collections[name]?.logsPath == nil {
                names.insert(name)
            }
        }
        for (name, settings) in configuration.collections where settings.logsPath != nil {
            if FileManager.default.fileExists(atPath: configuration.directory(forCollection: name)) { names.insert(name) }
        }
        return names.sorted()
    }

    private static func isCollectionFolder(_ name: String) -> Bool {
        !name.hasPrefix(droppedPrefix) && (try? validateName(name)) != nil
    }

    /// Bytes the data folder's files take on disk (every collection's, allocated blocks), and the
    /// bytes its file system has free for this user.
    public func diskUsage() -> (bytes: UInt64, freeBytes: UInt64) {
        var folders = [configuration.logsPath]
        for (name, settings) in configuration.collections where settings.logsPath != nil {
            folders.append(configuration.directory(forCollection: name))
        }
        var bytes: UInt64 = 0
        for folder in folders {
            bytes += FileSystem.allocatedSize(ofTree: folder)
        }
        return (bytes, FileSystem.freeBytes(at: configuration.logsPath))
    }

    /// The statistics of every open collection, by name.
    public func statistics() -> [CollectionStatistics] {
        let open = state.withLock { Array($0.open.values) }
        return open.map(\.statistics).sorted { $0.name < $1.name }
    }

    /// Deletes the collection `name`, open or not: its publishes still queued are written (and
    /// answered), then its subscriptions end with ``SubscriptionEnd/endOfStream``, its threads
    /// stop and its folder is deleted. The folder is first renamed, so a crash leaves either the
    /// whole collection or none of it; a later ``collection(_:)`` starts again at id 1.
    /// Blocks until done: call it off an event loop.
    /// - Throws: ``ExarError/connection(_:)`` for an invalid name, an I/O error when the folder
    ///   cannot be renamed.
    public func drop(_ name: String) throws(ExarError) {
        try Self.validateName(name)
        let gate: Gate
        let collection: Collection?
        while true {
            enum Step { case wait(Gate), drop(Gate, Collection?) }
            let step = try state.withLock { (state: inout State) throws(ExarError) -> Step in
                if closed.load(ordering: .acquiring) {
                    throw .io(.notConnected, "database is closed")
                }
                if let busy = state.busy[name] { return .wait(busy) }
                let gate = Gate()
                state.busy[name] = gate
                return .drop(gate, state.open.removeValue(forKey: name))
            }
            if case .drop(let taken, let open) = step {
                gate = taken
                collection = open
                break
            }
            if case .wait(let busy) = step { busy.wait() }
        }
        defer {
            state.withLock { $0.busy[name] = nil }
            gate.open()
        }
        collection?.drop()
        // The folder stays locked until it is gone. A collection this database had not opened
        // may be open in another process (a second server, `exar-inspect repair`): its lock
        // says so, and the folder is left alone.
        defer { collection?.releaseFolderLock() }
        let directory = configuration.directory(forCollection: name)
        guard FileManager.default.fileExists(atPath: directory) else { return }
        let lock = collection == nil ? try CollectionLock(directory: directory) : nil
        defer { lock?.release() }
        let parent = (directory as NSString).deletingLastPathComponent
        let tombstone = parent + "/" + Self.droppedPrefix + name + "-" + UUID().uuidString
        try FileSystem.rename(directory, to: tombstone)
        FileSystem.syncDirectory(parent)
        try? FileManager.default.removeItem(atPath: tombstone)
    }

    /// Closes every collection: pending publishes are written, segments sealed, subscriptions ended.
    public func close() {
        guard !closed.exchange(true, ordering: .acquiringAndReleasing) else { return }
        let open = state.withLock { $0.open }
        for collection in open.values {
            collection.close()
        }
        // And the idle ones the cache is still closing.
        Self.closingQueue.sync {}
        retention.stop()
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
        if name.hasPrefix(droppedPrefix) {
            throw .connection("collection names starting with \(droppedPrefix) are reserved")
        }
        for byte in bytes where byte == UInt8(ascii: "/") || byte == 0 || byte < 0x20 || byte == 0x7F {
            throw .connection("collection name must not contain slashes or control characters")
        }
    }
}

/// A one-shot gate: `wait()` blocks until `open()` was called.
final class Gate: @unchecked Sendable {  // `opened` is guarded by `condition`
    private let condition = NSCondition()
    private var opened = false

    func open() {
        condition.lock()
        opened = true
        condition.broadcast()
        condition.unlock()
    }

    func wait() {
        condition.lock()
        while !opened { condition.wait() }
        condition.unlock()
    }
}

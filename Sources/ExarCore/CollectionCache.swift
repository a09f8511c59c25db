import Synchronization

/// A collection held open for as long as this lease lives: the database's cache of open
/// collections (``DatabaseConfiguration/maxOpenCollections``) closes only collections that no
/// lease holds, that have no subscription and no group member. The server's connections and the
/// HTTP API hold leases; ``Database/collection(_:)`` pins its collection open instead.
public final class CollectionLease: Sendable {
    /// The leased collection, open until the lease ends.
    public let collection: Collection

    init(_ collection: Collection) {
        self.collection = collection
    }

    deinit {
        collection.lastUsed.store(WorkLanes.now, ordering: .relaxed)
        collection.leaseCount.subtract(1, ordering: .releasing)
    }
}

extension Collection {
    /// Whether the cache may close it: not pinned, no lease, no subscription, no group member.
    /// Called under the database's lock, which every new lease takes first, so a collection found
    /// idle gets no new user before it is closed.
    var isIdle: Bool {
        guard !pinned.load(ordering: .relaxed), leaseCount.load(ordering: .acquiring) == 0 else { return false }
        guard subscriptionsPerScanner.allSatisfy({ $0 == 0 }) else { return false }
        return !groupRegistry.withLock { registry in registry.groups.values.contains { $0.hasMembers } }
    }
}

/// How the database picks the idle collections to close.
enum CollectionCache {
    /// The idle collections to close so that `open` (with its busy names) is at most `limit`,
    /// least recently used first. Closes down to 7/8 of the limit, so the scan over every open
    /// collection is paid once per many openings, not at each.
    static func victims(open: [String: Collection], busy: Int, limit: Int) -> [(String, Collection)] {
        guard limit > 0, open.count + busy > limit else { return [] }
        let target = limit - limit / 8
        var idle = open.filter { $0.value.isIdle }.map { ($0.key, $0.value) }
        let excess = open.count + busy - target
        guard !idle.isEmpty else { return [] }
        idle.sort { $0.1.lastUsed.load(ordering: .relaxed) < $1.1.lastUsed.load(ordering: .relaxed) }
        return Array(idle.prefix(excess))
    }
}

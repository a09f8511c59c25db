import ExarModel

/// The consumer groups of a collection, loaded from its `groups` folder on first use.
struct GroupRegistry {
    var loaded = false
    var closed = false
    var groups: [String: ConsumerGroup] = [:]
}

extension Collection {
    /// `max in flight` when a `Join` says `0`.
    public static let defaultMaxInFlight = 1000
    /// The largest `max in flight` a member may ask for.
    public static let maximumMaxInFlight = 100_000

    var groupsDirectory: String { log.directory + "/groups" }

    /// Joins consumer group `name` (created now, reading from after `offset` and only events
    /// carrying `tag`, if it does not exist). Each event goes to one member at a time, in id order
    /// among those with room; a member holds at most `maxInFlight` (`0`: 1000) unacknowledged ones.
    /// - Throws: ``ExarError/subscription(_:)`` for an invalid group name, a `maxInFlight` above
    ///   100,000 or a tag other than the group's; ``ExarError/connection(_:)`` once dropped.
    public func join(group name: String, offset: UInt64, maxInFlight: Int, tag: String?,
                     sink: any SubscriptionSink) throws(ExarError) -> GroupMembership {
        try Self.validateGroupName(name)
        guard maxInFlight >= 0 && maxInFlight <= Self.maximumMaxInFlight else {
            throw .subscription("max in flight must be between 0 and \(Self.maximumMaxInFlight)")
        }
        if let tag { try EventValidation.validateTag(Array(tag.utf8)) }
        guard !isDropped else { throw .connection("collection \(name) was dropped") }
        let tagBytes = tag.map { Array($0.utf8) }
        let (group, created) = try withGroups { (groups: inout [String: ConsumerGroup]) throws(ExarError) -> (ConsumerGroup, Bool) in
            if let group = groups[name] { return (group, false) }
            let group = ConsumerGroup(name: name, collection: self, state: GroupState(tag: tagBytes, readNext: offset &+ 1),
                                      file: GroupFile(directory: groupsDirectory, name: name))
            groups[name] = group
            return (group, true)
        }
        if created {
            group.saveSynchronously()
        } else if group.tag != tagBytes {
            let reads = group.tag.map { "tag " + String(decoding: $0, as: UTF8.self) } ?? "every event"
            throw .subscription("group \(name) reads \(reads)")
        }
        return try group.join(maxInFlight: maxInFlight == 0 ? Self.defaultMaxInFlight : maxInFlight, sink: sink)
    }

    /// The collection's consumer groups, by name.
    public var groups: [GroupStatistics] {
        let all = (try? withGroups { (groups: inout [String: ConsumerGroup]) throws(ExarError) in Array(groups.values) }) ?? []
        return all.map(\.statistics).sorted { $0.name < $1.name }
    }

    /// One group's statistics, `nil` when there is no such group.
    public func group(_ name: String) -> GroupStatistics? {
        existingGroup(name)?.statistics
    }

    private func existingGroup(_ name: String) -> ConsumerGroup? {
        let found = try? withGroups { (groups: inout [String: ConsumerGroup]) throws(ExarError) -> ConsumerGroup? in groups[name] }
        return found ?? nil
    }

    /// Deletes group `name`: its members' streams end, its files are removed. Returns whether it existed.
    @discardableResult
    public func deleteGroup(_ name: String) -> Bool {
        let removed = try? withGroups { (groups: inout [String: ConsumerGroup]) throws(ExarError) -> ConsumerGroup? in
            groups.removeValue(forKey: name)
        }
        guard let group = removed ?? nil else { return false }
        group.close(persist: false, end: .endOfStream)
        group.removeFiles()
        return true
    }

    /// Delivers parked events of group `name` again, with a fresh count (`nil`: all of them).
    /// Returns how many, `nil` when there is no such group.
    public func redeliverParked(group name: String, ids: [UInt64]?) -> Int? {
        existingGroup(name)?.changeState { $0.unpark(ids) }
    }

    /// Discards parked events of group `name` (`nil`: all). Returns how many, `nil` when there is no such group.
    public func discardParked(group name: String, ids: [UInt64]?) -> Int? {
        existingGroup(name)?.changeState { $0.discardParked(ids) }
    }

    /// Runs `body` on the loaded registry.
    private func withGroups<Result>(_ body: (inout [String: ConsumerGroup]) throws(ExarError) -> Result) throws(ExarError) -> Result {
        try groupRegistry.withLock { (registry: inout GroupRegistry) throws(ExarError) -> Result in
            guard !registry.closed else { throw .eventStream(.closed) }
            if !registry.loaded {
                registry.loaded = true
                for name in GroupFile.groupNames(in: groupsDirectory) {
                    var file = GroupFile(directory: groupsDirectory, name: name)
                    guard let state = file.load() else {
                        log.log(.error, "group \(name): neither of its files holds a valid state; it is not loaded")
                        continue
                    }
                    registry.groups[name] = ConsumerGroup(name: name, collection: self, state: state, file: file)
                }
            }
            return try body(&registry.groups)
        }
    }

    /// Ends every group's members with `end`; with `persist` each group's state is saved and synced.
    func closeGroups(persist: Bool, end: SubscriptionEnd) {
        let groups = groupRegistry.withLock { registry -> [ConsumerGroup] in
            registry.closed = true
            return Array(registry.groups.values)
        }
        for group in groups { group.close(persist: persist, end: end) }
    }

    /// A group name is a plain file name: 1-200 bytes, not `.` or `..`, no slash, space, tab or control character.
    public static func validateGroupName(_ name: String) throws(ExarError) {
        let bytes = Array(name.utf8)
        guard !bytes.isEmpty, bytes.count <= 200, name != ".", name != "..",
              !bytes.contains(where: { $0 == UInt8(ascii: "/") || $0 <= 0x20 || $0 == 0x7F })
        else { throw .subscription("a group name is 1 to 200 bytes without slashes, spaces or control characters, not . or ..") }
    }
}

/// A consumer group's pending ids in increasing order, with their entries.
///
/// The feed takes ids from the log in increasing order, so a new id is appended at the end and
/// found again at `head + (id - first id)` while no hole was squeezed out; an acknowledged id
/// leaves a hole. Holes at the front go as they appear (so the first live id gives the
/// acknowledged floor at once), and once holes outnumber the live entries by more than a few
/// hundred the arrays are squeezed: their length stays below twice the pending count plus a
/// constant, so a member that holds an old id while the others run far ahead costs the ids
/// pending, not the distance between them. This replaced a dictionary and a separate order array
/// (hashing each id twice per event was a tenth of a group's delivery cost).
struct PendingWindow {
    private var ids: [UInt64] = []
    private var entries: [GroupState.Pending] = []
    /// Whether `entries[i]` is pending (false: a hole left by an acknowledgement).
    private var live: [Bool] = []
    /// The first index that may be live; every index before it is a hole.
    private var head = 0
    /// Live entries.
    private(set) var count = 0

    /// Entries stored, holes included (what the bound above is about).
    var storedLength: Int { ids.count }

    /// The smallest pending id.
    var first: UInt64? { count > 0 ? ids[head] : nil }

    /// The entry of `id`, or `nil` when it is not pending. Setting `nil` removes it; setting an
    /// id that is not pending adds it (in order, at the end when it is the largest).
    subscript(id: UInt64) -> GroupState.Pending? {
        get {
            guard let index = index(of: id) else { return nil }
            return entries[index]
        }
        set {
            if let index = index(of: id) {
                if let newValue {
                    entries[index] = newValue
                } else {
                    removeAt(index)
                }
            } else if let newValue {
                insert(id, newValue)
            }
        }
    }

    /// Removes `id`; returns its entry if it was pending.
    @discardableResult
    mutating func remove(_ id: UInt64) -> GroupState.Pending? {
        guard let index = index(of: id) else { return nil }
        let entry = entries[index]
        removeAt(index)
        return entry
    }

    /// Calls `body` with every pending id and its entry, in increasing order of id.
    func forEach(_ body: (UInt64, GroupState.Pending) -> Void) {
        for index in head..<ids.count where live[index] { body(ids[index], entries[index]) }
    }

    /// Changes every pending entry.
    mutating func updateAll(_ body: (inout GroupState.Pending) -> Void) {
        for index in head..<ids.count where live[index] { body(&entries[index]) }
    }

    /// The pending ids, ascending.
    var sortedIds: [UInt64] {
        var result: [UInt64] = []
        result.reserveCapacity(count)
        forEach { id, _ in result.append(id) }
        return result
    }

    // MARK: Storage

    private func index(of id: UInt64) -> Int? {
        guard count > 0, id >= ids[head], let last = ids.last, id <= last else { return nil }
        // Dense ids (a group without a tag, nothing squeezed yet): found at its distance from the head.
        let distance = id - ids[head]
        if distance < UInt64(ids.count - head) {
            let guess = head + Int(distance)
            if ids[guess] == id { return live[guess] ? guess : nil }
        }
        var low = head
        var high = ids.count
        while low < high {
            let mid = (low + high) / 2
            if ids[mid] < id { low = mid + 1 } else { high = mid }
        }
        return low < ids.count && ids[low] == id && live[low] ? low : nil
    }

    private mutating func insert(_ id: UInt64, _ entry: GroupState.Pending) {
        if count == 0 {
            ids.removeAll(keepingCapacity: true)
            entries.removeAll(keepingCapacity: true)
            live.removeAll(keepingCapacity: true)
            head = 0
        }
        if let last = ids.last, last >= id {
            // An older id back (a parked event redelivered): at its place, reusing its hole if any.
            var low = head
            var high = ids.count
            while low < high {
                let mid = (low + high) / 2
                if ids[mid] < id { low = mid + 1 } else { high = mid }
            }
            if low < ids.count && ids[low] == id {
                entries[low] = entry
                live[low] = true
            } else {
                ids.insert(id, at: low)
                entries.insert(entry, at: low)
                live.insert(true, at: low)
            }
            count += 1
            if low < head { head = low }
            return
        }
        ids.append(id)
        entries.append(entry)
        live.append(true)
        count += 1
    }

    private mutating func removeAt(_ index: Int) {
        live[index] = false
        count -= 1
        if count == 0 {
            ids.removeAll(keepingCapacity: true)
            entries.removeAll(keepingCapacity: true)
            live.removeAll(keepingCapacity: true)
            head = 0
            return
        }
        if index == head {
            while !live[head] { head += 1 }
        }
        let holes = ids.count - count
        if holes > count + 256 { squeeze() }
    }

    /// Keeps only the live entries.
    private mutating func squeeze() {
        var write = 0
        for read in head..<ids.count where live[read] {
            ids[write] = ids[read]
            entries[write] = entries[read]
            live[write] = true
            write += 1
        }
        ids.removeLast(ids.count - write)
        entries.removeLast(entries.count - write)
        live.removeLast(live.count - write)
        head = 0
    }
}

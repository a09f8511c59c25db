@testable import ExarCore
import Testing

/// `PendingWindow` against a dictionary: random appends (increasing ids, with gaps as a tag
/// group's are), removals in any order, re-inserts of old ids (parked events redelivered).
@Suite struct PendingWindowTests {
    @Test(arguments: [1, 2, 3, 4])
    func randomOperationsMatchADictionary(seed: UInt64) {
        var random = SplitMix64(state: seed &* 7919)
        var window = PendingWindow()
        var model: [UInt64: GroupState.Pending] = [:]
        var next: UInt64 = 1
        var largestLength = 0
        for step in 0..<20_000 {
            let choice = random.next() % 100
            if choice < 45 {
                next += 1 + (seed % 2 == 0 ? random.next() % 3 : 0)
                let entry = GroupState.Pending(deliveries: UInt32(step % 7), member: Int(step % 5), deadline: UInt64(step))
                window[next] = entry
                model[next] = entry
            } else if choice < 88, !model.isEmpty {
                // Mostly the oldest (acknowledgements in order), sometimes any.
                let key = random.next() % 4 == 0 ? model.keys.randomElement(using: &random)! : model.keys.min()!
                #expect(window.remove(key) == model.removeValue(forKey: key))
            } else if choice < 95, !model.isEmpty {
                let key = model.keys.randomElement(using: &random)!
                window[key]?.deliveries += 1
                model[key]?.deliveries += 1
            } else if choice < 98, next > 10 {
                let old = 1 + random.next() % (next - 1)
                let entry = GroupState.Pending(deliveries: 0)
                window[old] = entry
                model[old] = entry
            } else {
                let absent = next + 1 + random.next() % 10
                #expect(window[absent] == nil && window.remove(absent) == nil)
            }
            #expect(window.count == model.count)
            #expect(window.first == model.keys.min())
            largestLength = max(largestLength, window.storedLength)
            #expect(window.storedLength <= 2 * window.count + 257, "holes outgrew the bound at step \(step)")
            if step % 2000 == 0 {
                var seen: [(UInt64, GroupState.Pending)] = []
                window.forEach { seen.append(($0, $1)) }
                #expect(seen.map(\.0) == model.keys.sorted())
                #expect(seen.allSatisfy { model[$0.0] == $0.1 })
            }
        }
        #expect(largestLength > 0)
    }

    /// One old id held while a million newer ones come and go: the arrays stay small.
    @Test func anOldHeldIdDoesNotMakeTheWindowGrowWithTheDistance() {
        var window = PendingWindow()
        window[1] = GroupState.Pending(deliveries: 1)
        for id in UInt64(2)..<1_000_000 {
            window[id] = GroupState.Pending(deliveries: 1)
            if id > 101 { window.remove(id - 100) }
        }
        #expect(window.first == 1)
        #expect(window.count == 101)
        #expect(window.storedLength < 1000)
    }
}

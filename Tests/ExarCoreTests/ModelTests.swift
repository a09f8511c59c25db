import ExarCore
import ExarModel
import Foundation
import Testing

/// A small, seedable generator so a failing run can be replayed.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

@Suite struct ModelTests {
    /// Random publishes, reads, subscriptions and reopenings (with other segment sizes, index
    /// intervals and compression) checked against an array of events.
    @Test(arguments: [1, 2, 3, 4])
    func randomOperationsMatchAnInMemoryModel(seed: UInt64) async throws {
        var random = SplitMix64(state: seed &* 7919)
        let folder = TemporaryFolder()
        let tagPool = ["a", "b", "c", "rare", "x-y", "ünï"]
        var model: [Event] = []

        func open(_ random: inout SplitMix64) throws -> Database {
            let segmentSize = [4096, 6000, 16384, 100_000].randomElement(using: &random)!
            let interval = [64, 300, 4096].randomElement(using: &random)!
            return try makeDatabase(folder, segmentSize: segmentSize, indexInterval: min(interval, segmentSize),
                                    compression: Bool.random(using: &random) ? .lz4 : .none)
        }

        var database = try open(&random)
        var collection = try database.collection("model")
        for step in 0..<300 {
            switch Int.random(in: 0..<100, using: &random) {
            case 0..<45:
                let count = Int.random(in: 1...40, using: &random)
                var events: [Event] = []
                for _ in 0..<count {
                    var tags = [tagPool[Int.random(in: 0..<5, using: &random)]]
                    if Int.random(in: 0..<50, using: &random) == 0 { tags.append("rare") }
                    if Bool.random(using: &random) { tags.append(tagPool[5]) }
                    let size = [0, 1, 10, 100, 1000, 3000].randomElement(using: &random)!
                    let data = String(repeating: Character(UnicodeScalar(UInt8(97 + step % 26))), count: size) + "\t|"
                    events.append(Event(timestamp: UInt64.random(in: 1...1_000_000, using: &random), tags: tags, data: data))
                }
                let ids = try await collection.publish(events)
                #expect(ids.lowerBound == UInt64(model.count + 1), "seed \(seed) step \(step)")
                for (offset, event) in events.enumerated() {
                    var stored = event
                    stored.id = ids.lowerBound + UInt64(offset)
                    model.append(stored)
                }
            case 45..<80:
                let offset = UInt64.random(in: 0...UInt64(model.count + 5), using: &random)
                let limit: UInt64? = Bool.random(using: &random) ? UInt64.random(in: 1...50, using: &random) : nil
                let tag: String? = Int.random(in: 0..<3, using: &random) == 0 ? tagPool.randomElement(using: &random) : nil
                let query = Query(offset: offset, limit: limit, tag: tag)
                var expected = model.filter { $0.id > offset && (tag == nil || $0.tags.contains(tag!)) }
                if let limit { expected = Array(expected.prefix(Int(limit))) }
                if Bool.random(using: &random) {
                    #expect(try collection.read(query) == expected, "seed \(seed) step \(step) \(query)")
                } else {
                    let sink = CollectingSink()
                    try collection.subscribe(query, sink: sink)
                    #expect(sink.wait { $0.end != nil })
                    #expect(sink.events == expected, "seed \(seed) step \(step) \(query)")
                }
            case 80..<90:
                database.close()
                database = try open(&random)
                collection = try database.collection("model")
                #expect(collection.recoveryNotes.isEmpty, "seed \(seed) step \(step)")
                #expect(collection.lastId == UInt64(model.count))
            default:
                #expect(try collection.read(.all) == model, "seed \(seed) step \(step)")
            }
        }
        #expect(try collection.read(.all) == model)
        database.close()
    }
}

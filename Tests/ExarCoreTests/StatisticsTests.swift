import ExarCore
import ExarModel
import Foundation
import Testing

@Suite struct StatisticsTests {
    @Test func countsWhatWasAppendedDeliveredAndSynced() async throws {
        let folder = TemporaryFolder()
        let database = try makeDatabase(folder, segmentSize: 16 * 1024, sync: .always)
        let orders = try database.collection("orders")
        let empty = orders.statistics
        #expect(empty.firstId == 0 && empty.lastId == 0 && empty.events == 0 && empty.eventsAppended == 0)
        #expect(empty.segments == 1 && empty.bytesOnDisk >= 16 * 1024)
        // 300 events of 2 + 100 bytes, over several segments, in calls of 10.
        for round in 0..<30 {
            try await orders.publish((0..<10).map { Event(tags: ["ab"], data: sampleData(round * 10 + $0)) })
        }
        let sink = CollectingSink()
        try orders.subscribe(Query(live: false, offset: 100), sink: sink)
        #expect(sink.wait { $0.end != nil })
        let statistics = orders.statistics
        #expect(statistics.name == "orders")
        #expect(statistics.firstId == 1 && statistics.lastId == 300 && statistics.events == 300)
        #expect(statistics.eventsAppended == 300)
        #expect(statistics.eventBytesAppended == 300 * 102)
        #expect(statistics.eventsDelivered == 200)
        #expect(statistics.segments > 1)
        #expect(statistics.bytesOnDisk >= UInt64(statistics.segments) * 16 * 1024)
        // `sync = always`: a sync before each of the 30 answers (and at least one per roll).
        #expect(statistics.syncs.count >= 30)
        #expect(statistics.syncs.counts.reduce(0, +) == statistics.syncs.count)
        #expect(statistics.syncs.sum > 0)
        #expect(statistics.subscriptionsActive == 0)
        let live = CollectingSink()
        let subscription = try orders.subscribe(Query(live: true, offset: 300), sink: live)
        #expect(orders.statistics.subscriptionsActive == 1)
        subscription.cancel()
        #expect(database.statistics().map(\.name) == ["orders"])
        database.close()
    }

    @Test func theHistogramBucketsDurations() {
        var histogram = DurationHistogram()
        histogram.observe(seconds: 0.000_01)
        histogram.observe(seconds: 0.000_05)
        histogram.observe(seconds: 0.000_2)
        histogram.observe(seconds: 100)
        #expect(histogram.count == 4)
        #expect(histogram.counts[0] == 2)
        #expect(histogram.counts[2] == 1)
        #expect(histogram.counts.last == 1)
        #expect(abs(histogram.sum - 100.00026) < 1e-9)
    }
}

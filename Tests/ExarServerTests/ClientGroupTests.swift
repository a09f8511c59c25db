import ExarClient
import ExarModel
import Foundation
import Testing

/// `ExarClient.join(group:)` against the real server: members share a group's events, batched
/// acknowledgements make room, and a member that leaves hands on what it had not acknowledged.
@Suite(.serialized) struct ClientGroupTests {
    @Test func twoMembersShareEveryEventOnceAndTheirBatchedAcksKeepThemGoing() async throws {
        let server = try await TestServer(segmentSize: 1 << 20)
        defer { server.removeFiles() }
        let publisher = try await ExarClient.connect(port: server.port, collection: "jobs")
        let total = 3000
        for start in stride(from: 1, through: total, by: 500) {
            _ = try await publisher.publish((start..<start + 500).map { Event(tags: ["job"], data: "j\($0)") })
        }
        // Each may hold 8: without acknowledgements both would stop after 16 events.
        let seen = Locked<[UInt64]>([])
        try await withTimeout(120) {
            try await withThrowingTaskGroup(of: Void.self) { tasks in
                for _ in 0..<2 {
                    tasks.addTask {
                        let member = try await ExarClient.connect(port: server.port, collection: "jobs")
                        defer { Task { await member.close() } }
                        let events = try await member.join(group: "workers", maxInFlight: 8)
                        for try await event in events {
                            events.ack(event)
                            let count = seen.withLock { seen -> Int in
                                seen.append(event.id)
                                return seen.count
                            }
                            if count >= total { break }
                        }
                    }
                }
                // The member that did not take the last event waits for more: end it.
                _ = try await tasks.next()
                tasks.cancelAll()
            }
        }
        let ids = seen.withLock { $0 }
        #expect(ids.count == total && Set(ids) == Set(1...UInt64(total)), "\(ids.count) events, \(Set(ids).count) distinct")
    }

    @Test func aMemberThatLeavesItsLoopHandsItsUnacknowledgedEventsToTheNext() async throws {
        let server = try await TestServer(segmentSize: 1 << 20)
        defer { server.removeFiles() }
        let publisher = try await ExarClient.connect(port: server.port, collection: "jobs")
        _ = try await publisher.publish((1...10).map { Event(tags: ["job"], data: "j\($0)") })
        try await withTimeout(60) {
            let first = try await ExarClient.connect(port: server.port, collection: "jobs")
            let events = try await first.join(group: "g", maxInFlight: 4)
            var taken: [UInt64] = []
            for try await event in events {
                taken.append(event.id)
                if event.id == 2 { events.ack(2) }
                if taken.count == 6 { break }  // 1 to 6: 1 and 2 acknowledged, 3 to 6 not
            }
            #expect(taken == Array(1...6))
            // Bad arguments are the server's SubscriptionError; the connection keeps working.
            await #expect(throws: ExarError.subscription("")) { try await first.join(group: "a/b") }
            await #expect(throws: ExarError.subscription("")) { try await first.join(group: "g", tag: "other") }

            let second = try await ExarClient.connect(port: server.port, collection: "jobs")
            var next: [UInt64] = []
            let more = try await second.join(group: "g", maxInFlight: 100)
            for try await event in more {
                next.append(event.id)
                more.ack(event)
                if next.count == 8 { break }
            }
            // 3 to 6 again (redelivered, in id order), then 7 to 10.
            #expect(next.sorted() == Array(3...10), "\(next)")
            await first.close()
            await second.close()
        }
    }

    /// A member acknowledges 2 to 5, then is handed 1 again (another member left without
    /// acknowledging it): its ack of 1 is sent as a line of its own, and the group's floor reaches 5.
    @Test func anEventRedeliveredBelowAnAcknowledgedOneIsAcknowledgedToo() async throws {
        let server = try await TestServer(segmentSize: 1 << 20)
        defer { server.removeFiles() }
        let publisher = try await ExarClient.connect(port: server.port, collection: "jobs")
        _ = try await publisher.publish((1...5).map { Event(tags: ["job"], data: "j\($0)") })
        let holder = try LineClient(port: server.port)
        holder.send("Connect\tjobs\nJoin\tg\t0\t1\n")
        #expect(eventIds(holder.readLines(3)) == [1])
        try await withTimeout(60) {
            let member = try await ExarClient.connect(port: server.port, collection: "jobs")
            let events = try await member.join(group: "g", maxInFlight: 10)
            var seen: [UInt64] = []
            for try await event in events {
                seen.append(event.id)
                events.ack(event)
                if event.id == 5 {
                    // Let the Ack of 5 reach the server, then the holder goes and 1 comes here.
                    try await Task.sleep(for: .milliseconds(100))
                    holder.shutdownWrite()
                }
                if seen.count == 5 { break }
            }
            #expect(seen == [2, 3, 4, 5, 1])
            let collection = try server.database.collection("jobs")
            for _ in 0..<400 where collection.group("g")?.ackedFloor != 5 { try await Task.sleep(for: .milliseconds(10)) }
            #expect(collection.group("g")?.ackedFloor == 5)
            await member.close()
        }
    }
}

import Foundation
import Testing

/// exar-db with `max_open_collections` below the number of collections its clients use: idle
/// ones are closed (their descriptors given back) and reopen on the next `Select`, and the
/// collections connections are bound to or subscribed to keep working.
@Suite struct CollectionCacheServerTests {
    private func descriptors(_ pid: pid_t) -> Int {
        ((try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd")) ?? []).count
    }

    @Test func idleCollectionsAreClosedAndReopenWhileUsedOnesStayOpen() async throws {
        let server = try ExarProcess(database: ["max_open_collections = 3"])
        defer { server.removeFiles() }
        try await server.start()
        let watcher = try LineClient(port: server.port)
        watcher.send("Connect\twatched\nSubscribe\ttrue\t0\n")
        #expect(watcher.readLines(2) == ["Connected", "Subscribed"])
        let holder = try LineClient(port: server.port)
        holder.send("Connect\theld\nPublish\tt\t1\tkept\n")
        #expect(holder.readLines(2) == ["Connected", "Published\t1"])
        let baseline = descriptors(server.pid)

        let client = try LineClient(port: server.port)
        client.send("Connect\tc0\n")
        #expect(client.readLine() == "Connected")
        for number in 0..<20 {
            client.send("Select\tc\(number)\nPublish\tt\t1\tfirst of \(number)\nPublish\tt\t2\tsecond of \(number)\n")
            #expect(client.readLines(3) == ["Selected", "Published\t1", "Published\t2"])
        }
        // Twenty collections were opened; the cache kept about three idle ones (one descriptor each).
        // (They are closed on the cache's queue, soon after.)
        var grown = descriptors(server.pid) - baseline
        for _ in 0..<200 where grown >= 10 {
            try await Task.sleep(for: .milliseconds(25))
            grown = descriptors(server.pid) - baseline
        }
        #expect(grown < 10, "descriptors grew by \(grown) for 20 collections")

        // Each reopens with its events, and takes the next id.
        for number in 0..<20 {
            client.send("Select\tc\(number)\nSubscribe\tfalse\t0\n")
            #expect(client.readLines(5) == ["Selected", "Subscribed", "Event\t1\t1\tt\tfirst of \(number)",
                                            "Event\t2\t2\tt\tsecond of \(number)", "EndOfEventStream"])
            client.send("Publish\tt\t3\tthird\n")
            #expect(client.readLine() == "Published\t3")
        }
        // The bound and the subscribed collection were never closed under their connections.
        holder.send("Publish\tt\t2\tstill here\n")
        #expect(holder.readLine() == "Published\t2")
        client.send("Select\twatched\nPublish\tt\t5\tlive\n")
        #expect(client.readLines(2) == ["Selected", "Published\t1"])
        #expect(watcher.readLine() == "Event\t1\t5\tt\tlive")
        #expect(server.stop() == 0)
    }
}

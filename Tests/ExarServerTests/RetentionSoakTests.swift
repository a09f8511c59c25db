import ExarModel
import Foundation
import Synchronization
import Testing

/// Retention in the real server: publishing at full speed into a collection bounded to a few MiB,
/// with the disk usage sampled, a live subscriber checking its ids, and what the HTTP API, the
/// metrics and the protocol port say afterwards.
@Suite struct RetentionSoakTests {
    private static let maxBytes: UInt64 = 4 << 20
    /// Bounded for CI; `EXAR_SOAK_SECONDS` makes it longer.
    private static let seconds = Double(ProcessInfo.processInfo.environment["EXAR_SOAK_SECONDS"] ?? "") ?? 15

    private func allocated(_ directory: String) -> UInt64 {
        var total: UInt64 = 0
        for name in (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? [] {
            var info = stat()
            if stat(directory + "/" + name, &info) == 0 { total += UInt64(info.st_blocks) * 512 }
        }
        return total
    }

    /// Publishes 200-byte events in pipelined bursts of 200 until `stop`; returns how many were
    /// acknowledged, recording an issue for any other answer or ids that do not rise.
    private func publish(port: Int, stop: StopFlag, progress: Locked<Int>) throws -> Int {
        let client = try LineClient(port: port)
        client.send("Connect\tc\n")
        guard client.readLine() == "Connected" else { throw POSIXError(.ECONNREFUSED) }
        let burst = (0..<200).map { "Publish\tsoak\t0\tevent-\($0)-" + String(repeating: "d", count: 190) + "\n" }.joined()
        var acknowledged = 0
        var previous: UInt64 = 0
        while !stop.isSet {
            client.send(burst)
            for _ in 0..<200 {
                guard let line = client.readLine(), line.hasPrefix("Published\t"), let id = UInt64(line.dropFirst(10)) else {
                    Issue.record("a publish was not acknowledged")
                    return acknowledged
                }
                if id <= previous { Issue.record("id \(id) after \(previous) on one connection") }
                previous = id
                acknowledged += 1
            }
            progress.withLock { $0 += 200 }
        }
        return acknowledged
    }

    @Test func publishingAtFullSpeedStaysWithinTheBound() async throws {
        let server = try ExarProcess(database: ["segment_size = 262144", "retention = { max_bytes = \(Self.maxBytes) }"])
        defer { server.removeFiles() }
        try await server.start()
        let directory = server.dataFolder + "/c"
        let stop = StopFlag()
        let worst = Atomic<UInt64>(0)
        let samples = Atomic<Int>(0)
        let port = server.port

        // A live subscriber from the start: ids rise, and a gap is only ever deleted ids (checked at the end).
        let subscriber = try LineClient(port: port)
        subscriber.send("Connect\tc\nSubscribe\ttrue\t0\t0\n")
        #expect(subscriber.readLine() == "Connected")
        #expect(subscriber.readLine() == "Subscribed")
        let gaps = Locked<[ClosedRange<UInt64>]>([])
        let delivered = Atomic<Int>(0)
        let reader = Thread {
            var previous: UInt64 = 0
            // A read that times out (10 s: a loaded sanitizer run can starve the stream) is not the end.
            while !stop.isSet {
                guard let line = subscriber.readLine() else { continue }
                guard line.hasPrefix("Event\t"), let id = UInt64(line.dropFirst(6).prefix { $0 != "\t" }) else { continue }
                if id <= previous { Issue.record("subscriber: id \(id) after \(previous)") }
                if id > previous + 1 { gaps.withLock { $0.append((previous + 1)...(id - 1)) } }
                previous = id
                delivered.add(1, ordering: .relaxed)
            }
        }
        reader.start()
        let sampler = Thread {
            while !stop.isSet {
                let used = self.allocated(directory)
                if used > worst.load(ordering: .relaxed) { worst.store(used, ordering: .relaxed) }
                samples.add(1, ordering: .relaxed)
                usleep(5000)
            }
        }
        sampler.start()
        let progress = Locked<Int>(0)
        let published = try await withThrowingTaskGroup(of: Int.self) { group in
            for _ in 0..<2 {
                group.addTask { try await onDispatchThread { try self.publish(port: port, stop: stop, progress: progress) } }
            }
            // At least `seconds`, and on until ten times the bound went through (a sanitizer build
            // publishes several times slower), within a cap.
            let start = ContinuousClock.now
            while ContinuousClock.now - start < .seconds(Self.seconds)
                || (UInt64(progress.withLock { $0 }) * 200 <= 10 * Self.maxBytes
                    && ContinuousClock.now - start < .seconds(max(Self.seconds, 150))) {
                try await Task.sleep(for: .milliseconds(200))
            }
            stop.set()
            return try await group.reduce(0, +)
        }
        while !sampler.isFinished { usleep(1000) }

        // One segment's four files at their full size, in whole pages (the active one's are
        // allocated as it fills, so its blocks say less).
        let logs = try FileManager.default.contentsOfDirectory(atPath: directory).filter { $0.hasSuffix(".log") }.sorted()
        let active = String(try #require(logs.last).dropLast(4))
        let oneSegment = [".log", ".index", ".tags", ".time"].reduce(UInt64(0)) { total, suffix in
            var info = stat()
            return total + (stat(directory + "/" + active + suffix, &info) == 0 ? (UInt64(info.st_size) + 4095) / 4096 * 4096 : 0)
        }
        #expect(UInt64(published) * 200 > 10 * Self.maxBytes, "published only \(published) events")
        #expect(samples.load(ordering: .relaxed) > 100)
        #expect(worst.load(ordering: .relaxed) <= Self.maxBytes + oneSegment + 9 * 4096,
                "sampled \(worst.load(ordering: .relaxed)) bytes; bound \(Self.maxBytes), one segment \(oneSegment)")
        #expect(delivered.load(ordering: .relaxed) > 0)

        // Settled (no more rolls): the HTTP API, the metrics and the protocol port agree on the first retained id.
        let httpPort = try #require(server.httpPort)
        let answer = try await httpRequest(httpPort, "GET", "/api/v1/collections/c")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(answer.body.utf8)) as? [String: Any])
        let firstId = try #require(object["firstId"] as? Int)
        let lastId = try #require(object["lastId"] as? Int)
        #expect(firstId > 1 && lastId == published)
        #expect((object["retentionDeletedSegments"] as? Int ?? 0) > 0)
        let settings = try #require(object["settings"] as? [String: Any])
        let retention = try #require(settings["retention"] as? [String: Any])
        #expect(retention["maxBytes"] as? Int == Int(Self.maxBytes) && retention["maxAgeMs"] as? Int == 0)
        #expect((object["bytes"] as? Int ?? Int.max) <= Int(Self.maxBytes + oneSegment + 9 * 4096))
        let metrics = try await httpRequest(httpPort, "GET", "/metrics", json: false).body
        #expect(metrics.contains("exar_collection_first_id{collection=\"c\"} \(firstId)"), "\(metrics.prefix(2000))")
        let deleted = metrics.split(separator: "\n").first { $0.hasPrefix("exar_retention_deleted_segments_total{collection=\"c\"} ") }
        #expect(deleted.flatMap { Int($0.split(separator: " ").last ?? "") } ?? 0 > 0, "\(deleted ?? "no counter")")
        let page = try await httpRequest(httpPort, "GET", "/api/v1/collections/c/events?offset=0&limit=2")
        let events = (try JSONSerialization.jsonObject(with: Data(page.body.utf8)) as? [String: Any])?["events"] as? [[String: Any]]
        #expect(events?.first?["id"] as? Int == firstId)
        let client = try LineClient(port: port)
        client.send("Connect\tc\nSubscribe\tfalse\t3\t1\n")
        #expect(client.readLine() == "Connected" && client.readLine() == "Subscribed")
        #expect(client.readLine()?.hasPrefix("Event\t\(firstId)\t") == true)
        // Every gap the live subscriber saw was deleted.
        for gap in gaps.withLock({ $0 }) where gap.upperBound >= UInt64(firstId) {
            Issue.record("the subscriber missed ids \(gap) that are still retained")
        }
        #expect(server.log.contains("retention deleted"))
        let verify = try runInspect(["verify", directory])
        #expect(verify.status == 0, "\(verify.error)")
        #expect(server.stop() == 0)
    }
}

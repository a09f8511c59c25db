import Foundation
import Testing

/// Runs the real `exar-bench` binary: it starts its own exar-db (built beside it) and loads it.
@Suite(.serialized) struct BenchToolTests {
    private func bench(_ arguments: [String]) throws -> [String: Any] {
        let run = try runProduct("exar-bench", arguments + ["--json"])
        #expect(run.status == 0, "\(run.error)")
        return try #require(try JSONSerialization.jsonObject(with: Data(run.output.utf8)) as? [String: Any])
    }

    @Test func publishWorkloadReportsThroughputAndLatencies() throws {
        let result = try bench(["publish", "-n", "3000", "-c", "3", "-p", "8", "-s", "50"])
        #expect(result["workload"] as? String == "publish")
        #expect(result["events"] as? Int == 3000)
        #expect((result["events_per_second"] as? Double ?? 0) > 0)
        let latency = try #require(result["latency_us"] as? [String: Double])
        #expect(Set(latency.keys) == ["p50", "p90", "p99", "p99.9", "max"])
        #expect(latency["p50"]! > 0 && latency["p50"]! <= latency["p99"]! && latency["p99"]! <= latency["max"]!)
    }

    /// Against a server it did not start: exactly the asked events are stored, in id order from 1;
    /// a refused `Connect` fails the run with the server's answer.
    @Test func publishAgainstARunningServerStoresExactlyTheEventsAsked() async throws {
        let server = try ExarProcess()
        try await server.start()
        defer {
            server.stop()
            server.removeFiles()
        }
        let run = try runProduct("exar-bench", ["publish", "--port", "\(server.port)", "--collection", "b", "-n", "5003", "-c", "4", "-p", "5",
                                "-s", "20", "--json"])
        #expect(run.status == 0, "\(run.error)")
        let events = try #require(try readAllEvents(port: server.port, collection: "b"))
        #expect(events.count == 5003)
        #expect(events.allSatisfy { $0.hasSuffix("\t" + String(repeating: "x", count: 20)) })

        let guarded = try ExarProcess(server: ["username = \"u\"", "password = \"secret\""])
        try await guarded.start()
        defer {
            guarded.stop()
            guarded.removeFiles()
        }
        let refused = try runProduct("exar-bench", ["publish", "--port", "\(guarded.port)", "-n", "100", "-c", "1", "-p", "1"])
        #expect(refused.status != 0)
        #expect(refused.error.contains("connect answered: Error"), "\(refused.error)")
    }

    @Test func catchUpWorkloadReadsEverythingBack() throws {
        let all = try bench(["catchup", "-n", "4000"])
        #expect(all["events"] as? Int == 4000)
        #expect((all["megabytes_per_second"] as? Double ?? 0) > 0)
        let tagged = try bench(["catchup", "-n", "4000", "--tag", "tag1"])
        #expect(tagged["events"] as? Int == 1000)
    }

    @Test func fanOutWorkloadMeasuresDeliveryLatency() throws {
        let result = try bench(["fanout", "-k", "3", "-r", "5000", "-n", "1000"])
        #expect(result["events"] as? Int == 3000)
        let latency = try #require(result["latency_us"] as? [String: Double])
        #expect(latency["p50"]! > 0 && latency["p50"]! <= latency["max"]!)
    }

    /// Needs Debian's redis-server (CI installs it; `Benchmarks/compare-redis.sh` too).
    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/redis-server")))
    func redisPeerRunsTheSameLoadSideBySide() throws {
        let result = try bench(["publish", "-n", "2000", "-c", "2", "-p", "8", "--peer", "redis"])
        let exar = try #require(result["exar"] as? [String: Any])
        let redis = try #require(result["redis"] as? [String: Any])
        #expect(exar["events"] as? Int == 2000 && redis["events"] as? Int == 2000)
        #expect((redis["events_per_second"] as? Double ?? 0) > 0)
        #expect((result["ratio_events_per_second"] as? Double ?? 0) > 0)
        #expect((result["durability"] as? String ?? "").contains("appendonly no"))
        let catchUp = try bench(["catchup", "-n", "3000", "--peer", "redis"])
        #expect((catchUp["redis"] as? [String: Any])?["events"] as? Int == 3000)
        // Fan-out: XREAD BLOCK readers against a paced XADD publisher, every entry delivered to each.
        let fanOut = try bench(["fanout", "-k", "2", "-r", "5000", "-n", "1000", "--peer", "redis"])
        let redisFanOut = try #require(fanOut["redis"] as? [String: Any])
        #expect(redisFanOut["events"] as? Int == 2000)
        let redisLatency = try #require(redisFanOut["latency_us"] as? [String: Double])
        #expect(redisLatency["p50"]! > 0 && redisLatency["p50"]! <= redisLatency["max"]!)
    }

    /// Both sides sync before they answer: exar-db with `sync = always`, redis with `appendfsync always`.
    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/redis-server")))
    func durableRedisPeerSyncsOnBothSides() throws {
        let result = try bench(["publish", "-n", "300", "-c", "3", "-p", "2", "--peer", "redis", "--durable"])
        #expect((result["exar"] as? [String: Any])?["events"] as? Int == 300)
        #expect((result["redis"] as? [String: Any])?["events"] as? Int == 300)
        let durability = result["durability"] as? String ?? ""
        #expect(durability.contains("sync = always") && durability.contains("appendfsync always"))
    }

    /// Needs Debian's nats-server (CI installs it; `Benchmarks/compare-nats.sh` too).
    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/sbin/nats-server")))
    func natsPeerPublishesWithAcksAndReadsThroughAConsumer() throws {
        let result = try bench(["publish", "-n", "2000", "-c", "2", "-p", "8", "--peer", "nats"])
        let nats = try #require(result["nats"] as? [String: Any])
        #expect((result["exar"] as? [String: Any])?["events"] as? Int == 2000 && nats["events"] as? Int == 2000)
        let latency = try #require(nats["latency_us"] as? [String: Double])
        #expect(latency["p50"]! > 0 && latency["p50"]! <= latency["max"]!)
        #expect((result["durability"] as? String ?? "").contains("JetStream file storage"))
        let catchUp = try bench(["catchup", "-n", "3000", "--peer", "nats"])
        #expect((catchUp["nats"] as? [String: Any])?["events"] as? Int == 3000)
    }

    @Test func mixedWorkloadReportsEachPart() throws {
        let result = try bench(["mixed", "-n", "4000", "-c", "2", "-k", "2", "-r", "1"])
        let publish = try #require(result["publish"] as? [String: Any])
        let live = try #require(result["live"] as? [String: Any])
        let catchUp = try #require(result["catchup"] as? [String: Any])
        #expect(publish["events"] as? Int == 4000)
        #expect((publish["latency_us"] as? [String: Double])?["p50"] ?? 0 > 0)
        // Every live subscriber got every event.
        #expect(live["events"] as? Int == 8000)
        #expect((live["events_per_second"] as? Double ?? 0) > 0)
        // The reader read at least one pass (it starts while the collection fills).
        #expect((catchUp["events"] as? Int ?? -1) >= 0)
        #expect((catchUp["seconds"] as? Double ?? 0) > 0)
    }

    /// On a terminal (here a pseudo-terminal made by `script`), a progress bar is drawn on
    /// standard error; with --json or through a pipe, never.
    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/script")))
    func aProgressBarIsDrawnOnlyOnATerminal() throws {
        let binary = productsFolder.appendingPathComponent("exar-bench").path
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/script")
        process.arguments = ["-qec", "\(binary) publish -n 20000 -c 2 -p 4", "/dev/null"]
        let output = Pipe()
        process.standardOutput = output
        try process.run()
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        #expect(process.terminationStatus == 0)
        #expect(text.contains("exar-db publish ["), "\(text.prefix(500))")
        #expect(text.contains("throughput"))
        // Piped (the other tests' runs): no bar in the output.
        let piped = Process()
        piped.executableURL = URL(fileURLWithPath: binary)
        piped.arguments = ["publish", "-n", "60000", "-c", "2", "-p", "4"]
        let pipe = Pipe()
        piped.standardOutput = pipe
        piped.standardError = pipe
        try piped.run()
        let plain = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        piped.waitUntilExit()
        #expect(!plain.contains("["), "\(plain.prefix(500))")
    }
}

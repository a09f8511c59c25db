import Foundation
import Synchronization
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Runs `body` on `count` threads; the returned group is done when they all are.
private func spawn(_ count: Int, into group: DispatchGroup, _ body: @escaping @Sendable (Int) -> Void) {
    for number in 0..<count {
        group.enter()
        Thread {
            body(number)
            group.leave()
        }.start()
    }
}

/// The real exar-db under every kind of hostile client at once, while a good publisher and a good
/// live subscriber do their work: they get all of it, the server's memory stays bounded and every
/// descriptor of the hostile connections is released.
@Suite(.serialized) struct HostileLoadTests {
    @Test func goodClientsAreServedWhileHostileOnesAreContained() async throws {
        // Room for the connection flood in this process too.
        var limit = rlimit()
        getrlimit(Int32(RLIMIT_NOFILE.rawValue).resource, &limit)
        limit.rlim_cur = limit.rlim_max
        setrlimit(Int32(RLIMIT_NOFILE.rawValue).resource, &limit)

        let maxConnections = 300
        let server = try ExarProcess(database: ["segment_size = 8388608"],
                                     server: ["max_connections = \(maxConnections)", "max_line_bytes = 65536"])
        defer { server.removeFiles() }
        try await server.start()
        let port = server.port
        do {
            let warmUp = try LineClient(port: port)
            warmUp.send("Connect\tc\nPublish\tt\t0\twarm\n")
            #expect(warmUp.readLines(2) == ["Connected", "Published\t1"])
        }

        // The good clients connect first (max_connections counts everyone), then do their work:
        // 40,000 events of about 500 bytes published in bursts, all delivered live.
        let total = 40_000
        let subscriber = SubscriberLog()
        let reader = try UncheckedBox(LineClient(port: port))
        reader.value.send("Connect\tc\nSubscribe\ttrue\t1\n")
        #expect(reader.value.readLines(2) == ["Connected", "Subscribed"])
        let publisher = try LineClient(port: port)
        publisher.send("Connect\tc\n")
        #expect(publisher.readLine() == "Connected")
        try await Task.sleep(for: .milliseconds(200))
        let descriptorsBefore = server.openDescriptors
        let memoryBefore = server.residentAnonymousBytes
        let good = DispatchGroup()
        spawn(1, into: good) { _ in
            while subscriber.events.count < total, let line = reader.value.readLine() {
                subscriber.events.append(line)
            }
        }

        let stop = StopFlag()
        let hostiles = DispatchGroup()
        let refusals = Atomic<Int>(0)
        // Slowloris: a Publish line one byte at a time.
        spawn(20, into: hostiles) { _ in
            guard let client = try? LineClient(port: port) else { return }
            client.send("Connect\tc\n")
            for byte in "Publish\tt\t0\tslow".utf8 where !stop.isSet {
                client.send([byte])
                usleep(200_000)
            }
        }
        // Live subscribers that never read a byte.
        spawn(5, into: hostiles) { _ in
            guard let client = try? LineClient(port: port) else { return }
            client.send("Connect\tc\nSubscribe\ttrue\t0\n")
            while !stop.isSet { usleep(50_000) }
        }
        // Subscribers that read a little and vanish mid-stream, over and over.
        spawn(3, into: hostiles) { _ in
            while !stop.isSet {
                guard let client = try? LineClient(port: port) else { return }
                client.send("Connect\tc\nSubscribe\ttrue\t0\n")
                _ = client.readLines(50)
            }
        }
        // Random binary and overlong lines.
        spawn(4, into: hostiles) { number in
            var generator = SystemRandomNumberGenerator()
            while !stop.isSet {
                guard let client = try? LineClient(port: port) else { return }
                if number % 2 == 0 {
                    client.send((0..<4096).map { _ in UInt8.random(in: 0...255, using: &generator) })
                } else {
                    client.send("Connect\tc\nPublish\tt\t0\t" + String(repeating: "x", count: 100_000) + "\n")
                }
                usleep(20_000)
            }
        }
        // A flood of 2,000 connections, most over max_connections: each refused with an error.
        spawn(2, into: hostiles) { _ in
            var open: [LineClient] = []
            for _ in 0..<1000 where !stop.isSet {
                guard let client = try? LineClient(port: port) else { continue }
                open.append(client)
            }
            for client in open {
                // Admitted ones answer Connected, refused ones the error: either comes at once.
                client.send("Connect\tc\n")
                if client.readLine()?.hasPrefix("Error\tIoError\tConnectionRefused\ttoo many connections") == true {
                    refusals.add(1, ordering: .relaxed)
                }
            }
        }

        let payload = String(repeating: "p", count: 500)
        var acknowledged = 0
        for start in stride(from: 0, to: total, by: 100) {
            publisher.send((start..<(start + 100)).map { "Publish\tgood\t\($0)\t\(payload)\($0)\n" }.joined())
            acknowledged += publisher.readLines(100).filter { $0.hasPrefix("Published\t") }.count
        }
        #expect(acknowledged == total)
        #expect(good.wait(timeout: .now() + 60) == .success)
        #expect(subscriber.events.count == total)
        let memoryUnderLoad = server.residentAnonymousBytes

        stop.set()
        #expect(hostiles.wait(timeout: .now() + 60) == .success)
        #expect(refusals.load(ordering: .relaxed) > 0, "the flood should have gone over max_connections")
        // Every hostile connection is gone: the descriptors come back to where they were.
        var descriptorsAfter = server.openDescriptors
        for _ in 0..<100 where descriptorsAfter > descriptorsBefore {
            try await Task.sleep(for: .milliseconds(50))
            descriptorsAfter = server.openDescriptors
        }
        #expect(descriptorsAfter <= descriptorsBefore, "descriptors: \(descriptorsBefore) before, \(descriptorsAfter) after")
        // 20 MB went through stalled and vanishing subscribers: the heap grew by far less.
        // (AddressSanitizer keeps freed memory in quarantine, up to 256 MiB: allow for it.)
        let sanitized = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "__asan_init") != nil
        #expect(memoryUnderLoad - memoryBefore < (sanitized ? 512 : 64) << 20,
                "anonymous memory grew from \(memoryBefore >> 20) MiB to \(memoryUnderLoad >> 20) MiB")
        #expect(server.stop() == 0)
    }
}

/// Hands a value to one other thread (the test makes sure only one uses it at a time).
private final class UncheckedBox<Value>: @unchecked Sendable {
    let value: Value
    init(_ value: Value) { self.value = value }
}

extension Int32 {
    /// As `getrlimit`/`setrlimit` take it on glibc.
    fileprivate var resource: __rlimit_resource_t { __rlimit_resource_t(UInt32(self)) }
}

import ArgumentParser
import ExarModel
import ExarNet
import Foundation
import Histogram
import NIOCore
import Synchronization

/// Set once the publishers are done; the catch-up readers stop after their current pass.
private final class DoneFlag: Sendable {
    private let value = Atomic<Bool>(false)
    var isSet: Bool { value.load(ordering: .acquiring) }
    func set() { value.store(true, ordering: .releasing) }
}

struct MixedWorkload: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mixed",
        abstract: "Publishers, live subscribers and catch-up readers at once: each one's throughput, the publishers' latency.",
        discussion: """
            C connections publish N events (P in flight each) while K live subscribers follow them
            and R readers read the collection from the start again and again (non-live) until the
            publishing ends. Reports publish events/s and latency, events/s delivered live (all
            subscribers together, until the last one has every event) and events/s read by the
            catch-up readers.
            """)

    @OptionGroup var target: Target
    @Option(name: .customShort("n"), help: "Events to publish.") var events = 200_000
    @Option(name: .customShort("s"), help: "Data bytes per event.") var size = 100
    @Option(name: .customShort("c"), help: "Publishing connections.") var connections = 8
    @Option(name: .customShort("p"), help: "Publishes in flight per connection.") var pipeline = 16
    @Option(name: .customShort("k"), help: "Live subscribers.") var subscribers = 4
    @Option(name: .customShort("r"), help: "Catch-up readers.") var readers = 2

    func validate() throws {
        guard events > 0, size >= 0, connections > 0, pipeline > 0, subscribers >= 0, readers >= 0 else {
            throw ValidationError("counts must be positive")
        }
    }

    func run() async throws {
        let collection = target.collection ?? "bench-\(UUID().uuidString.prefix(8))"
        let meter = ProgressMeter.make("exar-db mixed  ", total: events, enabled: !target.json)
        let events = self.events, subscribers = self.subscribers, readers = self.readers, target = self.target
        let (publish, live, catchUp) = try await withServer(target) { host, port in
            let connect = Array(target.connectLine(collection).readableBytesView)
            // Live subscribers first, from the start, each until it has every event.
            var liveLine = ByteBuffer()
            liveLine.writeSubscribe(Query(live: true, offset: 0, limit: UInt64(events)))
            let live = try await startLiveSessions(
                host: host, port: port,
                sessions: Array(repeating: ExarLiveSession(connect: connect, subscribe: Array(liveLine.readableBytesView)),
                                count: subscribers),
                progress: nil)
            let finished = DoneFlag()
            let started = monotonicNanoseconds()
            // Catch-up readers: whole-collection reads, one after another, while publishing lasts.
            var allLine = ByteBuffer()
            allLine.writeSubscribe(Query(live: false, offset: 0))
            let subscribeAll = Array(allLine.readableBytesView)
            let reading = (0..<readers).map { _ in
                Task { () throws -> (events: Int, bytes: Int) in
                    var total = (events: 0, bytes: 0)
                    while !finished.isSet {
                        let pass = try await runExarCatchUp(host: host, port: port, connect: connect, subscribe: subscribeAll,
                                                            progress: nil)
                        total.events += pass.events
                        total.bytes += pass.bytes
                    }
                    return total
                }
            }
            let published: (Histogram<UInt64>, Double)
            do {
                published = try await runPublish(host: host, port: port, target: target, collection: collection, events: events,
                                                 size: size, connections: connections, pipeline: pipeline, tags: 4, progress: meter)
            } catch {
                finished.set()
                throw error
            }
            finished.set()
            var read = (events: 0, bytes: 0)
            for task in reading {
                let pass = try await task.value
                read.events += pass.events
                read.bytes += pass.bytes
            }
            let readSeconds = Double(monotonicNanoseconds() - started) / 1e9
            var delivered = 0
            for session in try await live.value { delivered += session.delivered }
            let liveSeconds = Double(monotonicNanoseconds() - started) / 1e9
            return (published, (delivered, liveSeconds), (read.events, read.bytes, readSeconds))
        }
        meter?.finish()
        let parameters = ["events": events, "size": size, "connections": connections, "pipeline": pipeline,
                          "subscribers": subscribers, "readers": readers]
        let summaries = [
            Summary(system: "exar-db", workload: "mixed: publish", parameters: parameters, events: events,
                    seconds: publish.1, bytesPerEvent: Double(size + 30), latency: publish.0),
            Summary(system: "exar-db", workload: "mixed: live delivery", parameters: parameters, events: live.0,
                    seconds: live.1, bytesPerEvent: Double(size + 40), latency: nil),
            Summary(system: "exar-db", workload: "mixed: catch-up reads", parameters: parameters, events: catchUp.0,
                    seconds: catchUp.2, bytesPerEvent: catchUp.0 > 0 ? Double(catchUp.1) / Double(catchUp.0) : 0, latency: nil),
        ]
        if target.json {
            let object: [String: Any] = ["publish": summaries[0].json, "live": summaries[1].json, "catchup": summaries[2].json]
            let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
            print(String(decoding: data, as: UTF8.self))
        } else {
            for (number, summary) in summaries.enumerated() {
                if number > 0 { print("") }
                summary.printTable()
            }
        }
    }
}

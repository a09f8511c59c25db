import ArgumentParser
import ExarModel
import ExarNet
import Foundation
import Histogram
import NIOCore
import Synchronization

/// `exar-bench group`: a consumer group of M members against one plain live subscription,
/// both delivering the same N stored events, in alternating rounds.
struct GroupWorkload: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "group",
        abstract: "Store N events, then deliver them to a consumer group of M members (acknowledging) and to one plain live subscription, alternating rounds.")

    @OptionGroup var target: Target
    @Option(name: .customShort("m"), help: "Members of the group (one connection each).") var members = 4
    @Option(name: .customShort("n"), help: "Events stored, then delivered in each round.") var events = 1_000_000
    @Option(name: .customShort("s"), help: "Data bytes per event.") var size = 100
    @Option(help: "Max in flight per member (the Join's field).") var inFlight = 1000
    @Option(help: "A member acknowledges (cumulatively) after this many events.") var ackEvery = 100
    @Option(help: "Rounds of each, alternating (medians are reported).") var rounds = 3

    func validate() throws {
        guard members > 0, events > 0, size >= 0, inFlight > 0, inFlight <= 100_000, ackEvery > 0, rounds > 0 else {
            throw ValidationError("counts must be positive, --in-flight at most 100000")
        }
        guard ackEvery <= inFlight else { throw ValidationError("--ack-every must not exceed --in-flight") }
    }

    func run() async throws {
        let collection = target.collection ?? "bench-\(UUID().uuidString.prefix(8))"
        let (plain, group) = try await withServer(target) { host, port in
            let loading = ProgressMeter.make("exar-db load   ", total: events, enabled: !target.json)
            _ = try await runPublish(host: host, port: port, target: target, collection: collection, events: events,
                                     size: size, connections: 4, pipeline: 64, tags: 4, progress: loading)
            loading?.finish()
            let connect = Array(target.connectLine(collection).readableBytesView)
            var plain: [Double] = []
            var group: [Double] = []
            for round in 0..<rounds {
                var subscribe = ByteBuffer()
                subscribe.writeSubscribe(Query(live: true, offset: 0, limit: UInt64(events)))
                let reader = ExarLiveSession(connect: connect, subscribe: Array(subscribe.readableBytesView))
                plain.append(try await timedDelivery(host: host, port: port, sessions: [reader]))

                var join = ByteBuffer()
                join.writeJoin(group: "bench-\(round)", offset: 0, maxInFlight: UInt64(inFlight), tag: nil)
                let shared = GroupProgress(total: events)
                let member = ExarGroupSession(opening: connect + Array(join.readableBytesView), ackEvery: ackEvery, shared: shared)
                group.append(try await timedDelivery(host: host, port: port, sessions: Array(repeating: member, count: members)))
                if !target.json {
                    print("round \(round + 1): plain \(Int(plain[round])) events/s, group of \(members) \(Int(group[round])) events/s")
                }
            }
            return (plain, group)
        }
        let plainMedian = median(plain)
        let groupMedian = median(group)
        if target.json {
            let object: [String: Any] = [
                "workload": "group", "parameters": ["members": members, "events": events, "size": size, "in_flight": inFlight,
                                                    "ack_every": ackEvery, "rounds": rounds],
                "plain_events_per_second": plain, "group_events_per_second": group,
                "plain_median": plainMedian, "group_median": groupMedian, "ratio": groupMedian / max(plainMedian, 1),
            ]
            let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
            print(String(decoding: data, as: UTF8.self))
        } else {
            print("plain live subscription  median \(Int(plainMedian)) events/s")
            print("group of \(members) members       median \(Int(groupMedian)) events/s (\(inFlight) in flight each, ack every \(ackEvery))")
            print("ratio                    group / plain = \(String(format: "%.2f", groupMedian / max(plainMedian, 1)))")
        }
    }

    /// Events per second from the first connection to the last event.
    private func timedDelivery<Session: LiveSession>(host: String, port: Int, sessions: [Session]) async throws -> Double {
        let started = monotonicNanoseconds()
        let done = try await startLiveSessions(host: host, port: port, sessions: sessions, progress: nil).value
        let seconds = Double(monotonicNanoseconds() - started) / 1e9
        let delivered = done.reduce(0) { $0 + $1.delivered }
        guard delivered >= events else { throw BenchError("delivered \(delivered) of \(events) events") }
        return Double(events) / seconds
    }
}

private func median(_ values: [Double]) -> Double {
    let sorted = values.sorted()
    return sorted.isEmpty ? 0 : sorted.count % 2 == 1 ? sorted[sorted.count / 2] : (sorted[sorted.count / 2 - 1] + sorted[sorted.count / 2]) / 2
}

/// The events a group's members received together; the group is done at `total`.
final class GroupProgress: Sendable {
    let total: Int
    private let received = Atomic<Int>(0)

    init(total: Int) {
        self.total = total
    }

    func add(_ count: Int) { received.add(count, ordering: .relaxed) }
    var isComplete: Bool { received.load(ordering: .relaxed) >= total }
}

/// A group member: `Connect`, `Join`, then `Event` lines, acknowledging the highest id every
/// `ackEvery` events; complete once the whole group received the N events.
struct ExarGroupSession: LiveSession {
    let opening: [UInt8]
    let ackEvery: Int
    let shared: GroupProgress
    private var state = 0  // 0 waiting for Connected, 1 for Subscribed, 2 streaming
    private var unacknowledged = 0
    private(set) var delivered = 0
    let latency = Histogram<UInt64>(highestTrackableValue: 60_000_000_000)

    init(opening: [UInt8], ackEvery: Int, shared: GroupProgress) {
        self.opening = opening
        self.ackEvery = ackEvery
        self.shared = shared
    }

    var isReady: Bool { state >= 2 }
    var isComplete: Bool { shared.isComplete }

    mutating func take(_ line: UnsafeRawBufferPointer, at now: UInt64) throws(BenchError) -> [UInt8] {
        switch state {
        case 0:
            guard line.elementsEqual("Connected".utf8) else { throw BenchError("connect answered: \(excerpt(line))") }
            state = 1
        case 1:
            guard line.elementsEqual("Subscribed".utf8) else { throw BenchError("join answered: \(excerpt(line))") }
            state = 2
        default:
            guard line.starts(with: "Event\t".utf8) else { throw BenchError("the group stream answered: \(excerpt(line))") }
            delivered += 1
            shared.add(1)
            unacknowledged += 1
            if unacknowledged >= ackEvery {
                unacknowledged = 0
                // Event\t<id>\t...: acknowledge up to this id.
                let id = line.dropFirst(6).prefix { $0 != UInt8(ascii: "\t") }
                return Array("Ack\t".utf8) + Array(id) + [UInt8(ascii: "\n")]
            }
        }
        return []
    }
}

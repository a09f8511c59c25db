import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// A consumer group under churn, checked against a model of what its members saw and did:
/// members join and leave (cleanly, or by a reset as a killed client's kernel sends), some ack at
/// once, some slowly, some never; the server is killed with SIGKILL twice and stopped with
/// SIGTERM once while they run, and more events are published between. At the end every event
/// was delivered, the group has acknowledged or parked each one, and no delivery came after an
/// acknowledgement the server must have had (PROTOCOL.md, "Consumer groups").
@Suite(.serialized) struct GroupChaosTests {
    /// Under a sanitizer the server runs several times slower (deliveries and acknowledgements
    /// take longer on their way): every window is widened by this factor there.
    static let scale: Double = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "__asan_init") != nil
        || dlsym(UnsafeMutableRawPointer(bitPattern: 0), "__tsan_init") != nil ? 4 : 1
    static let ackWait = 3000.0 * scale
    static let maxDeliver = 2
    /// An acknowledgement sent this long before the server died or stopped may be lost with it
    /// (it had no answer; the state is saved within 10 ms, to the page cache, with `sync = none`).
    static let serverWindow = 1500.0 * scale
    /// ... and one sent this long before its own connection was reset.
    static let resetWindow = 500.0 * scale
    /// An acknowledgement counts only when sent this long before its delivery's deadline.
    static let deadlineMargin = 1000.0 * scale
    /// A delivery this soon after an acknowledgement may have been on its way already.
    static let transit = 500.0 * scale

    @Test(arguments: [UInt64(1), 2])
    func membersComingGoingAndCrashingAgainstAModel(seed: UInt64) async throws {
        let server = try ExarProcess(database: [
            "segment_size = 65536",
            "groups = { ack_wait_in_ms = \(Int(Self.ackWait)), max_deliver = \(Self.maxDeliver) }",
        ])
        defer { server.removeFiles() }
        try await server.start()
        let model = GroupModel()
        let stop = StopFlag()
        let port = server.port
        // A publisher paced at about 1,000 events/s through every restart, so members always have work.
        let published = PacedPublisher()
        let publisher = Thread { published.run(port: port, stop: stop) }
        publisher.start()
        let spawner = Thread {
            var random = SplitMixGenerator(state: seed)
            var live: [Thread] = []
            var session = 0
            while !stop.isSet {
                live.removeAll { $0.isFinished }
                if live.count < 4 {
                    session += 1
                    let plan = MemberPlan.random(session: session, using: &random)
                    let thread = Thread { plan.run(port: port, model: model, stop: stop) }
                    thread.start()
                    live.append(thread)
                }
                usleep(UInt32(random.next() % 80_000))
            }
            while live.contains(where: { !$0.isFinished }) { usleep(10_000) }
        }
        spawner.start()

        // The server dies twice and stops cleanly once while members come and go.
        try await Task.sleep(for: .milliseconds(2500))
        model.serverEnded()
        #expect(server.stop(SIGKILL) == SIGKILL)
        try await server.start()
        try await Task.sleep(for: .milliseconds(2500))
        model.serverEnded()
        #expect(server.stop() == 0)
        try await server.start()
        try await Task.sleep(for: .milliseconds(2500))
        model.serverEnded()
        #expect(server.stop(SIGKILL) == SIGKILL)
        try await server.start()
        try await Task.sleep(for: .milliseconds(2500))
        stop.set()
        while !spawner.isFinished || !publisher.isFinished { try await Task.sleep(for: .milliseconds(20)) }

        // What the log holds, and every acknowledged publish in it.
        var data: [UInt64: String] = [:]
        for line in try #require(try readAllEvents(port: port, collection: "jobs")) {
            let fields = line.split(separator: "\t", omittingEmptySubsequences: false)
            if let id = UInt64(fields[0]), fields.count >= 4 { data[id] = String(fields[3]) }
        }
        #expect(data.count == data.keys.max() ?? 0, "ids skip")
        let acknowledged = published.acknowledged
        #expect(acknowledged.count > 3000, "\(acknowledged.count) publishes acknowledged")
        for (id, line) in acknowledged where data[id] != line {
            Issue.record("acknowledged publish \(id) (\(line)) reads as \(data[id] ?? "nothing")")
        }

        // Drain: two prompt members until the group holds nothing; then the parked events are
        // delivered again and acknowledged too.
        let last = UInt64(data.count)
        let drain = StopFlag()
        let drainers = (0..<2).map { number in
            Thread { MemberPlan.drainer(session: 1_000_000 + number).run(port: port, model: model, stop: drain) }
        }
        drainers.forEach { $0.start() }
        guard let httpPort = server.httpPort else {
            Issue.record("no HTTP port in the log")
            return
        }
        let path = "/api/v1/collections/jobs/groups/g"
        var group: [String: Any] = [:]
        func settled() async throws -> Bool {
            group = try await httpRequest(httpPort, "GET", path).object
            return group["position"] as? Int == Int(last) && group["inFlight"] as? Int == 0 && group["waiting"] as? Int == 0
        }
        try await eventually(seconds: 60 * Self.scale, settled)
        #expect(try await settled(), "not settled: \(group)")
        let parked = (group["parkedEvents"] as? [[String: Any]] ?? []).compactMap { ($0["id"] as? Int).map(UInt64.init) }
        #expect(group["ackedFloor"] as? Int == Int(last), "\(group)")
        #expect(group["lost"] as? Int == 0, "\(group)")
        let redelivering = model.now
        if !parked.isEmpty {
            let answer = try await httpRequest(httpPort, "POST", path + "/redeliver", headers: ["Content-Type": "application/json"])
            #expect(answer.object["redelivered"] as? Int == parked.count, "\(answer.body)")
            try await eventually(seconds: 60 * Self.scale) { try await settled() && group["parked"] as? Int == 0 }
            #expect(group["parked"] as? Int == 0, "after redelivery: \(group)")
        }
        drain.set()
        drainers.forEach { thread in while !thread.isFinished { usleep(10_000) } }
        #expect(server.stop() == 0)

        let report = model.check(lastId: last, data: data, parked: Set(parked), kills: 2, redelivering: redelivering)
        for problem in report.problems.prefix(20) { Issue.record("\(problem)") }
        #expect(report.problems.isEmpty)
        // The run did what it is for: redeliveries, resets and both kinds of ending happened.
        #expect(report.redeliveries > 0 && report.resets > 0 && report.sessions > 20, "\(report)")
        print("group chaos seed \(seed): \(report.sessions) sessions, \(report.deliveries) deliveries, "
              + "\(report.redeliveries) again, \(report.resets) resets, \(parked.count) parked (\(report.parkedSeenLess) seen less than max_deliver times)")
    }
}

/// Publishes bursts of 10 events every 10 ms over one connection, reconnecting when the server
/// goes; records each acknowledged event's id and data.
final class PacedPublisher: @unchecked Sendable {
    private let lock = NSLock()
    private var _acknowledged: [(id: UInt64, data: String)] = []
    var acknowledged: [(id: UInt64, data: String)] { lock.withLock { _acknowledged } }

    func run(port: Int, stop: StopFlag) {
        var number = 0
        while !stop.isSet {
            guard let client = try? LineClient(port: port) else {
                usleep(20_000)
                continue
            }
            client.setReceiveTimeout(milliseconds: 3000)
            client.send("Connect\tjobs\n")
            guard client.readLine() == "Connected" else { continue }
            publishing: while !stop.isSet {
                let burst = (0..<10).map { _ in
                    number += 1
                    return "job-\(number)"
                }
                client.send(burst.map { "Publish\tjob\t0\t\($0)\n" }.joined())
                for data in burst {
                    guard let answer = client.readLine(), answer.hasPrefix("Published\t"),
                          let id = UInt64(answer.dropFirst(10)) else { break publishing }
                    lock.withLock { _acknowledged.append((id, data)) }
                }
                usleep(10_000)
            }
        }
    }
}

/// Waits up to `seconds` for an asynchronous condition, recording an issue if it never holds.
private func eventually(seconds: Double, _ condition: () async throws -> Bool) async throws {
    let deadline = Date(timeIntervalSinceNow: seconds)
    while Date() < deadline {
        if try await condition() { return }
        try await Task.sleep(for: .milliseconds(100))
    }
    Issue.record("the condition did not hold within \(seconds) s")
}

/// What every member was handed and acknowledged, and when (ms on one monotonic clock).
final class GroupModel: @unchecked Sendable {
    struct Delivery {
        let session: Int
        /// When the member read it, and a time before which the server cannot have sent it (the
        /// member's socket did not hold it then): a starved member thread reads events late.
        let at: Double
        let sentAfter: Double
        let data: String
    }

    struct Acknowledgement {
        let session: Int
        let upTo: UInt64
        let at: Double
    }

    struct Report: CustomStringConvertible {
        var problems: [String] = []
        var sessions = 0
        var deliveries = 0
        var redeliveries = 0
        var resets = 0
        /// Parked events seen delivered fewer than max_deliver times (the rest went to connections that ended).
        var parkedSeenLess = 0
        var description: String { "\(sessions) sessions, \(deliveries) deliveries, \(redeliveries) again, \(resets) resets" }
    }

    private let lock = NSLock()
    private let start = DispatchTime.now().uptimeNanoseconds
    private var deliveries: [UInt64: [Delivery]] = [:]
    private var acknowledgements: [Acknowledgement] = []
    private var resets: [Int: Double] = [:]
    private var serverEnds: [Double] = []
    private var sessions = Set<Int>()

    var now: Double { Double(DispatchTime.now().uptimeNanoseconds - start) / 1e6 }

    func delivered(_ id: UInt64, data: String, session: Int, sentAfter: Double) {
        lock.withLock {
            deliveries[id, default: []].append(Delivery(session: session, at: now, sentAfter: sentAfter, data: data))
            sessions.insert(session)
        }
    }

    func acknowledged(upTo id: UInt64, session: Int) {
        lock.withLock { acknowledgements.append(Acknowledgement(session: session, upTo: id, at: now)) }
    }

    func reset(session: Int) {
        lock.withLock { resets[session] = now }
    }

    func serverEnded() {
        lock.withLock { serverEnds.append(now) }
    }

    /// Whether the server must have applied `ack` to the delivery `delivery` of its event.
    private func mustHaveCounted(_ ack: Acknowledgement, _ delivery: Delivery) -> Bool {
        guard ack.session == delivery.session, ack.at >= delivery.at,
              ack.at < delivery.sentAfter + GroupChaosTests.ackWait - GroupChaosTests.deadlineMargin else { return false }
        if serverEnds.contains(where: { $0 >= delivery.sentAfter && $0 <= ack.at + GroupChaosTests.serverWindow }) { return false }
        if let reset = resets[ack.session], reset <= ack.at + GroupChaosTests.resetWindow { return false }
        return true
    }

    /// - Parameters:
    ///   - parked: the events the group had parked when the members settled;
    ///   - kills: how many times the server was killed (each may forget the deliveries it made
    ///     since its last save, so an event may go out once more than `max_deliver` per kill);
    ///   - redelivering: when the parked events were handed back (deliveries after it start afresh).
    func check(lastId: UInt64, data: [UInt64: String], parked: Set<UInt64>, kills: Int, redelivering: Double) -> Report {
        lock.lock()
        defer { lock.unlock() }
        var report = Report()
        report.sessions = sessions.count
        report.resets = resets.count
        let acksBySession = Dictionary(grouping: acknowledgements, by: \.session)
        for id in 1...max(lastId, 1) {
            let handed = deliveries[id] ?? []
            report.deliveries += handed.count
            report.redeliveries += max(0, handed.count - 1)
            guard !handed.isEmpty else {
                report.problems.append("event \(id) was never delivered")
                continue
            }
            if let wrong = handed.first(where: { $0.data != data[id] }) {
                report.problems.append("event \(id) came with data \(wrong.data), not \(data[id] ?? "?")")
            }
            // Each delivery's acknowledgements: the session's acks covering the id after it came.
            var counted: Double?
            var acknowledgedAtAll = false
            for (number, delivery) in handed.enumerated() {
                if let counted, delivery.sentAfter > counted + GroupChaosTests.transit {
                    report.problems.append("event \(id) delivered again (#\(number + 1), session \(delivery.session), at \(Int(delivery.at)) ms) after an acknowledgement at \(Int(counted)) ms")
                }
                let next = number + 1 < handed.count ? handed[number + 1].at : .infinity
                // (An Ack after the next delivery may count too: a late one counts unless the
                // group had the event acknowledged since.)
                for ack in acksBySession[delivery.session] ?? [] where ack.upTo >= id && ack.at >= delivery.at {
                    acknowledgedAtAll = true
                    if counted == nil && ack.at < next && mustHaveCounted(ack, delivery) { counted = ack.at }
                }
            }
            let beforeRedelivery = handed.filter { $0.at < redelivering }.count
            if beforeRedelivery > GroupChaosTests.maxDeliver + kills {
                report.problems.append("event \(id) went out \(beforeRedelivery) times before it was parked")
            }
            if parked.contains(id) {
                // A delivery the member never read (its connection went first) counts on the server's
                // side only: fewer than max_deliver may have been seen here.
                if handed.count < GroupChaosTests.maxDeliver { report.parkedSeenLess += 1 }
                if let counted, counted < redelivering { report.problems.append("event \(id) parked though acknowledged at \(Int(counted)) ms") }
            } else if !acknowledgedAtAll {
                report.problems.append("event \(id) counts as acknowledged, but no member that had it acknowledged it")
            }
        }
        if let extra = deliveries.keys.first(where: { $0 > lastId || $0 == 0 }) {
            report.problems.append("event \(extra) delivered, but only 1...\(lastId) were published")
        }
        return report
    }
}

/// One member's life: how it acknowledges, how long it stays, how it goes.
struct MemberPlan: Sendable {
    enum Acking: Sendable { case prompt, slow, never }
    enum Ending: Sendable { case close, reset, unsubscribe }

    let session: Int
    let acking: Acking
    let maxInFlight: Int
    let lifetime: Double
    let ending: Ending

    static func random(session: Int, using random: inout SplitMixGenerator) -> MemberPlan {
        let roll = random.next() % 10
        let acking: Acking = roll < 5 ? .prompt : roll < 8 ? .slow : .never
        let endings: [Ending] = [.close, .reset, .unsubscribe]
        return MemberPlan(session: session, acking: acking,
                          maxInFlight: acking == .never ? 1 + Int(random.next() % 4) : 1 + Int(random.next() % 40),
                          lifetime: 200 + Double(random.next() % 1800), ending: endings[Int(random.next() % 3)])
    }

    static func drainer(session: Int) -> MemberPlan {
        MemberPlan(session: session, acking: .prompt, maxInFlight: 100, lifetime: .infinity, ending: .close)
    }

    /// Joins group `g` of `jobs` and lives its plan, until its lifetime ends, the server goes, or `stop`.
    func run(port: Int, model: GroupModel, stop: StopFlag) {
        guard let connection = MemberConnection(port: port) else { return }
        let born = model.now
        connection.send("Connect\tjobs\nJoin\tg\t0\t\(maxInFlight)\n")
        // It acknowledges the last event it read (the server counts an Ack for the events handed
        // out before that one: acknowledging the highest id read would miss a lower one redelivered later).
        var lastRead: UInt64 = 0
        var acknowledged: UInt64 = 0
        var lastAck = born
        var pending = ""
        // Bytes read now were not in the socket when the previous read began (unless that read
        // filled its buffer): the server sent them after `bound`. A line split over reads keeps
        // the bound of the read that brought its first bytes.
        var bound = born
        var partialBound = born
        while !stop.isSet && model.now - born < lifetime {
            let reading = model.now
            guard let (chunk, full) = connection.receive(timeoutMilliseconds: 30) else { return }  // the server went
            var lineBound = pending.isEmpty ? bound : partialBound
            pending += chunk
            while let newline = pending.firstIndex(of: "\n") {
                let line = pending[..<newline]
                pending = String(pending[pending.index(after: newline)...])
                let fields = line.split(separator: "\t", omittingEmptySubsequences: false)
                if fields.first == "Event", fields.count >= 5, let id = UInt64(fields[1]) {
                    model.delivered(id, data: String(fields[4]), session: session, sentAfter: lineBound)
                    lastRead = id
                }
                lineBound = bound
            }
            partialBound = lineBound
            if !full { bound = reading }
            guard lastRead != acknowledged else { continue }
            switch acking {
            case .prompt:
                break
            case .slow:
                if model.now - lastAck < 100 { continue }
                usleep(UInt32.random(in: 20_000...120_000))
            case .never:
                continue
            }
            connection.send("Ack\t\(lastRead)\n")
            model.acknowledged(upTo: lastRead, session: session)
            acknowledged = lastRead
            lastAck = model.now
        }
        switch ending {
        case .close:
            connection.close()
        case .reset:
            model.reset(session: session)
            connection.reset()
        case .unsubscribe:
            connection.send("Unsubscribe\n")
            connection.close()
        }
    }
}

/// A member's socket: non-blocking reads with a timeout, and both ways of going.
final class MemberConnection {
    private var fd: Int32

    init?(port: Int) {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        if result != 0 {
            Glibc.close(fd)
            return nil
        }
    }

    deinit { if fd >= 0 { Glibc.close(fd) } }

    func send(_ text: String) {
        var bytes = Array(text.utf8)[...]
        while !bytes.isEmpty {
            let sent = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if sent <= 0 { return }
            bytes = bytes.dropFirst(sent)
        }
    }

    /// What arrived within the timeout (maybe nothing) and whether it filled the read buffer
    /// (more may wait), or `nil` once the server closed.
    func receive(timeoutMilliseconds: Int32) -> (String, full: Bool)? {
        var poller = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        guard poll(&poller, 1, timeoutMilliseconds) > 0 else { return ("", false) }
        var chunk = [UInt8](repeating: 0, count: 65536)
        let count = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        return count > 0 ? (String(decoding: chunk[..<count], as: UTF8.self), count == chunk.count) : nil
    }

    func close() {
        Glibc.close(fd)
        fd = -1
    }

    /// Closes with a reset (SO_LINGER 0), as the kernel of a killed client may: unread bytes are dropped.
    func reset() {
        var linger = Glibc.linger(l_onoff: 1, l_linger: 0)
        setsockopt(fd, SOL_SOCKET, SO_LINGER, &linger, socklen_t(MemoryLayout<Glibc.linger>.size))
        close()
    }
}

/// A seedable generator for the member plans.
struct SplitMixGenerator: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

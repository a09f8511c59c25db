import ExarModel
import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The ids of `Event` lines.
func eventIds(_ lines: [String]) -> [UInt64] {
    lines.compactMap { line in
        let fields = line.split(separator: "\t", omittingEmptySubsequences: false)
        return fields.first == "Event" && fields.count >= 2 ? UInt64(fields[1]) : nil
    }
}

/// `Join`/`Ack` (PROTOCOL.md, "Consumer groups") against the real server.
@Suite(.serialized) struct GroupServerTests {
    @Test func membersOnTwoConnectionsShareEventsAndALeavingMembersEventsMoveOn() async throws {
        let server = try await TestServer(segmentSize: 16 * 1024)
        defer { server.removeFiles() }
        let first = try LineClient(port: server.port)
        first.send("Join\tg\t0\t0\nAck\t1\n")
        #expect(first.readLines(2) == ["Error\tIoError\tInvalidData\tunexpected TCP message",
                                       "Error\tIoError\tInvalidData\tunexpected TCP message"])
        first.send("Connect\tjobs\nJoin\nJoin\tg\nJoin\tg\t0\nJoin\tg\tx\t0\nJoin\tg\t0\t-1\nAck\t3\nAck\tx\n")
        #expect(first.readLines(8) == ["Connected", "Error\tParseError\tMissingField\t1", "Error\tParseError\tMissingField\t1",
                                       "Error\tParseError\tMissingField\t2",
                                       "Error\tParseError\tParseError\tinvalid digit found in string",
                                       "Error\tParseError\tParseError\tinvalid digit found in string",
                                       "Error\tIoError\tInvalidData\tunexpected TCP message",
                                       "Error\tParseError\tParseError\tinvalid digit found in string"])
        first.send("Join\ta/b\t0\t0\nJoin\tg\t0\t100001\n")
        #expect(first.readLines(2) == ["Error\tSubscriptionError", "Error\tSubscriptionError"])

        let publisher = try LineClient(port: server.port)
        publisher.send("Connect\tjobs\n" + (1...10).map { "Publish\tjob\t0\tj\($0)\n" }.joined())
        #expect(publisher.readLines(11).last == "Published\t10")

        // Member one may hold 3; member two, joined after, gets what is left in turn.
        first.send("Join\tg\t0\t3\n")
        let firstLines = first.readLines(4)
        #expect(firstLines == ["Subscribed", "Event\t1\t\(eventTimestamp(firstLines, 1))\tjob\tj1",
                               "Event\t2\t\(eventTimestamp(firstLines, 2))\tjob\tj2",
                               "Event\t3\t\(eventTimestamp(firstLines, 3))\tjob\tj3"])
        let second = try LineClient(port: server.port)
        second.send("Connect\tjobs\nJoin\tg\t0\t4\tjob\n")
        #expect(second.readLines(2) == ["Connected", "Error\tSubscriptionError"])  // the group reads every event
        second.send("Join\tg\t99\t4\n")  // the offset of a later Join does not matter
        let secondLines = second.readLines(5)
        #expect(secondLines.first == "Subscribed" && eventIds(secondLines) == [4, 5, 6, 7])
        // Cumulative acknowledgements of one's own events make room; others' ids do nothing.
        first.send("Ack\t2\n")
        #expect(eventIds(first.readLines(2)) == [8, 9])
        second.send("Ack\t3\n")  // not its events
        second.send("Ack\t5\n")
        #expect(eventIds(second.readLines(1)) == [10])
        // Member one leaves (Unsubscribe): its unacknowledged 3, 8, 9 go to member two as it has room.
        first.send("Unsubscribe\n")
        #expect(first.readLine() == "EndOfEventStream")
        first.send("Ack\t9\n")
        #expect(first.readLine() == "Error\tIoError\tInvalidData\tunexpected TCP message")
        // Member two holds 10, above them: a member is never handed an id below one it holds (its
        // Ack of 10 would cover an event it may not have read yet), so they wait for that Ack.
        second.setReceiveTimeout(milliseconds: 300)
        #expect(second.readLine() == nil)
        second.setReceiveTimeout(milliseconds: 10_000)
        second.send("Ack\t10\n")
        #expect(eventIds(second.readLines(3)) == [3, 8, 9])
        // A late Ack of 10 (no longer held) covers only what came before 10: not these.
        second.send("Ack\t10\n")
        // Member two disconnects without acknowledging them: a new member gets them again.
        try await Task.sleep(for: .milliseconds(50))
        Glibc.shutdown(second.descriptor, Int32(SHUT_RDWR))
        let third = try LineClient(port: server.port)
        third.send("Connect\tjobs\nJoin\tg\t0\t0\n")
        let thirdLines = third.readLines(5)
        #expect(thirdLines.prefix(2) == ["Connected", "Subscribed"] && eventIds(thirdLines) == [3, 8, 9], "\(thirdLines)")
        publisher.send("Publish\tjob\t0\tj11\n")
        #expect(publisher.readLine() == "Published\t11")
        #expect(eventIds(third.readLines(1)) == [11])
        third.send("Ack\t11\n")
        let collection = try server.database.collection("jobs")
        for _ in 0..<400 where collection.group("g")?.ackedFloor != 11 { try await Task.sleep(for: .milliseconds(10)) }
        #expect(collection.group("g")?.ackedFloor == 11)
        try await server.stop()
    }

    /// A paused feed goes on once the members have room for a quarter of what they may hold; less
    /// room than that still gets events, at the group's next timer tick.
    @Test func roomBelowTheResumeThresholdStillGetsEvents() async throws {
        let server = try await TestServer(segmentSize: 1 << 20)
        defer { server.removeFiles() }
        let publisher = try LineClient(port: server.port)
        publisher.send("Connect\tjobs\n" + (1...20).map { "Publish\tjob\t0\tj\($0)\n" }.joined())
        #expect(publisher.readLines(21).last == "Published\t20")
        // Two members of 4 each: 8 in flight, the feed pauses. One acknowledges a single event:
        // room for 1 of 8, below the threshold of 2.
        let first = try LineClient(port: server.port)
        first.send("Connect\tjobs\nJoin\tg\t0\t4\n")
        #expect(first.readLines(2) == ["Connected", "Subscribed"])
        let second = try LineClient(port: server.port)
        second.send("Connect\tjobs\nJoin\tg\t0\t4\n")
        #expect(second.readLines(2) == ["Connected", "Subscribed"])
        let firstIds = eventIds(first.readLines(4))
        #expect(eventIds(second.readLines(4)).count == 4)
        first.send("Ack\t\(firstIds[0])\n")
        // Within the timer's period (1 s with an hour to acknowledge) it gets one more, event 9.
        #expect(eventIds(first.readLines(1)) == [9])
        // Room for 4 of 8 resumes at once.
        second.send("Ack\t20\n")
        #expect(eventIds(second.readLines(4)) == [10, 11, 12, 13])
        try await server.stop()
    }

    /// Acknowledged events are not delivered again after a clean restart, nor after kill -9 once
    /// the group's state was saved (sync = none saves within 10 ms, to the page cache).
    @Test func aGroupResumesAfterARestartAndAfterKill9() async throws {
        let server = try ExarProcess(database: ["segment_size = 65536", "groups = { ack_wait_in_ms = 60000, max_deliver = 5 }"])
        defer { server.removeFiles() }
        try await server.start()
        let publisher = try LineClient(port: server.port)
        publisher.send("Connect\tjobs\n" + (1...20).map { "Publish\tjob\t0\tj\($0)\n" }.joined())
        #expect(publisher.readLines(21).last == "Published\t20")
        var member = try LineClient(port: server.port)
        member.send("Connect\tjobs\nJoin\tg\t0\t8\n")
        #expect(eventIds(member.readLines(10)) == Array(1...8))
        member.send("Ack\t5\n")
        #expect(eventIds(member.readLines(5)) == Array(9...13))
        try await Task.sleep(for: .milliseconds(300))
        #expect(server.stop(SIGKILL) == SIGKILL)

        try await server.start()
        member = try LineClient(port: server.port)
        member.send("Connect\tjobs\nJoin\tg\t0\t8\n")
        // 6-13 were unacknowledged: they come again, in order, then what was never delivered.
        #expect(eventIds(member.readLines(10)) == Array(6...13))
        member.send("Ack\t13\n")
        #expect(eventIds(member.readLines(7)) == Array(14...20))
        member.send("Ack\t18\n")
        try await Task.sleep(for: .milliseconds(100))
        #expect(server.stop() == 0)

        try await server.start()
        member = try LineClient(port: server.port)
        member.send("Connect\tjobs\nJoin\tg\t0\t0\n")
        #expect(eventIds(member.readLines(4)) == [19, 20])
        #expect(server.stop() == 0)
    }
}

/// The timestamp the server gave the `id`-th event line of `lines` (stamped at publish time).
private func eventTimestamp(_ lines: [String], _ id: UInt64) -> String {
    for line in lines {
        let fields = line.split(separator: "\t", omittingEmptySubsequences: false)
        if fields.count >= 3 && fields[0] == "Event" && UInt64(fields[1]) == id { return String(fields[2]) }
    }
    return "?"
}

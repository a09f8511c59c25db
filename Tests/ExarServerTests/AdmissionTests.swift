import Foundation
import Testing

/// `max_connections` and the throttling of wrong credentials, on the real server.
@Suite(.serialized) struct AdmissionTests {
    @Test func connectionsOverTheLimitAreRefusedWithAnErrorAndClosed() async throws {
        let server = try await TestServer(maxConnections: 3)
        defer { server.removeFiles() }
        var admitted: [LineClient] = []
        for _ in 0..<3 {
            let client = try LineClient(port: server.port)
            client.send("Connect\tc\n")
            #expect(client.readLine() == "Connected")
            admitted.append(client)
        }
        for _ in 0..<5 {
            let refused = try LineClient(port: server.port)
            refused.send("Connect\tc\n")
            #expect(refused.readLine() == "Error\tIoError\tConnectionRefused\ttoo many connections (max_connections = 3)")
            #expect(refused.isClosedByServer())
        }
        // The admitted ones are unaffected.
        admitted[0].send("Publish\tt\t0\tx\n")
        #expect(admitted[0].readLine() == "Published\t1")
        // A slot freed is a slot taken again (the server notices the close on its loop).
        admitted.removeLast()
        var replaced = false
        for _ in 0..<100 where !replaced {
            let client = try LineClient(port: server.port)
            client.send("Connect\tc\n")
            if client.readLine() == "Connected" {
                replaced = true
                admitted.append(client)
            } else {
                try await Task.sleep(for: .milliseconds(50))
            }
        }
        #expect(replaced)
        #expect(server.server.connectionCount == 3)
        try await server.stop()
    }

    @Test func wrongCredentialsAreAnsweredLateAndTheGuesserIsClosed() async throws {
        let server = try await TestServer(username: "admin", password: "s3cret", maxLoginFailures: 3)
        defer { server.removeFiles() }
        let guesser = try LineClient(port: server.port)
        let started = ContinuousClock.now
        guesser.send("Connect\tc\tadmin\ta\nConnect\tc\tadmin\tb\nConnect\tc\tadmin\tc\nConnect\tc\tadmin\ts3cret\n")
        // Another client is served at once while the guesser waits.
        let honest = try LineClient(port: server.port)
        honest.send("Connect\tc\tadmin\ts3cret\nPublish\tt\t0\tx\n")
        #expect(honest.readLines(2) == ["Connected", "Published\t1"])
        #expect(guesser.readLines(3) == Array(repeating: "Error\tAuthenticationError", count: 3))
        // 100 + 200 + 400 ms of delays, then the connection closes: the fourth (right) guess is never read.
        #expect(ContinuousClock.now - started >= .milliseconds(700))
        #expect(guesser.isClosedByServer())
        // A new connection may log in.
        let again = try LineClient(port: server.port)
        again.send("Connect\tc\tadmin\ts3cret\n")
        #expect(again.readLine() == "Connected")
        try await server.stop()
    }
}

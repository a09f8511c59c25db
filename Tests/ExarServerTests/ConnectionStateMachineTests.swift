import ExarModel
@testable import ExarNet
import Testing

@testable import ExarServer

@Suite struct ConnectionStateMachineTests {
    let unexpected = ConnectionStateMachine.Action.answerError(.io(.invalidData, "unexpected TCP message"))

    @Test func idleBoundStreaming() {
        var machine = ConnectionStateMachine(credentials: nil)
        #expect(machine.receive(.success(.subscribe(Query()))) == unexpected)
        #expect(machine.receive(.success(.unsubscribe)) == unexpected)
        #expect(machine.receive(.success(.connect(collection: "c", username: nil, password: nil))) == .connect(collection: "c"))
        machine.connected()
        #expect(machine.receive(.success(.connect(collection: "c", username: nil, password: nil))) == unexpected)
        let fields = PublishFields(timestamp: 0, tags: 0..<1, data: 1..<1)
        #expect(machine.receive(.success(.publish(fields))) == .publish(fields))
        #expect(machine.receive(.failure(.parse(.missingField(2)))) == .answerError(.parse(.missingField(2))))
        #expect(machine.receive(.success(.serverMessage)) == unexpected)
        #expect(machine.receive(.success(.subscribe(Query(live: true)))) == .subscribe(Query(live: true)))
        machine.streamStarted()
        #expect(machine.state == .streaming)
        machine.streamEnded()
        #expect(machine.state == .bound)
        #expect(machine.receive(.success(.unsubscribe)) == unexpected)
    }

    @Test func credentialsAreChecked() {
        var machine = ConnectionStateMachine(credentials: Credentials(username: "u", password: "p"), maxLoginFailures: 3)
        #expect(machine.receive(.success(.connect(collection: "c", username: nil, password: nil))) == .refuseLogin(delayMilliseconds: 100, close: false))
        #expect(machine.receive(.success(.connect(collection: "c", username: "u", password: "x"))) == .refuseLogin(delayMilliseconds: 200, close: false))
        #expect(machine.receive(.success(.connect(collection: "c", username: "u", password: "p"))) == .connect(collection: "c"))
        var guesser = ConnectionStateMachine(credentials: Credentials(username: "u", password: "p"), maxLoginFailures: 8)
        let delays = (0..<8).map { _ in guesser.receive(.success(.connect(collection: "c", username: "u", password: "?"))) }
        #expect(delays == [100, 200, 400, 800, 1600, 3200, 3200].map { .refuseLogin(delayMilliseconds: $0, close: false) }
                + [.refuseLogin(delayMilliseconds: 3200, close: true)])
    }

    @Test func constantTimeComparisonKeepsTheWholeLengthDifference() {
        #expect(Credentials.constantTimeEquals(Array("abc".utf8), Array("abc".utf8)))
        #expect(!Credentials.constantTimeEquals(Array("abc".utf8), Array("abcd".utf8)))
        #expect(!Credentials.constantTimeEquals(Array("abc".utf8), Array("abd".utf8)))
        // Padding with NUL bytes by a multiple of 256 once folded into 8 bits and matched.
        for padding in [1, 255, 256, 512, 65536] {
            let padded = Array("secret".utf8) + [UInt8](repeating: 0, count: padding)
            #expect(!Credentials.constantTimeEquals(Array("secret".utf8), padded))
            #expect(!Credentials.constantTimeEquals(padded, Array("secret".utf8)))
        }
        let credentials = Credentials(username: "admin", password: "secret")
        #expect(credentials.accepts(username: "admin", password: "secret"))
        #expect(!credentials.accepts(username: "admin", password: "secret" + String(repeating: "\0", count: 256)))
        #expect(!credentials.accepts(username: "admin" + String(repeating: "\0", count: 256), password: "secret"))
        #expect(!credentials.accepts(username: "admin", password: nil))
    }

    @Test func sessionMessagesWithoutCredentials() {
        var machine = ConnectionStateMachine(credentials: nil)
        #expect(machine.receive(.success(.select(collection: "a"))) == .select(collection: "a"))
        #expect(machine.receive(.success(.drop(collection: "a"))) == .drop(collection: "a"))
        #expect(machine.receive(.success(.authenticate(username: "any", password: "pair"))) == .authenticated)
        machine.selected()
        #expect(machine.state == .bound)
        #expect(machine.receive(.success(.select(collection: "b"))) == .select(collection: "b"))
        #expect(machine.receive(.success(.subscribe(Query()))) == .subscribe(Query()))
    }

    @Test func sessionMessagesWithCredentials() {
        var machine = ConnectionStateMachine(credentials: Credentials(username: "u", password: "p"))
        #expect(machine.receive(.success(.select(collection: "a"))) == .answerError(.authentication))
        #expect(machine.receive(.success(.drop(collection: "a"))) == .answerError(.authentication))
        #expect(machine.receive(.success(.authenticate(username: "u", password: "x"))) == .refuseLogin(delayMilliseconds: 100, close: false))
        #expect(machine.receive(.success(.select(collection: "a"))) == .answerError(.authentication))
        #expect(machine.receive(.success(.authenticate(username: "u", password: "p"))) == .authenticated)
        #expect(machine.receive(.success(.select(collection: "a"))) == .select(collection: "a"))
        #expect(machine.receive(.success(.drop(collection: "a"))) == .drop(collection: "a"))

        #expect(machine.receive(.success(.connect(collection: "c", username: nil, password: nil))) == .connect(collection: "c"))
        #expect(machine.receive(.success(.connect(collection: "c", username: "u", password: "x"))) == .refuseLogin(delayMilliseconds: 200, close: false))

        var connected = ConnectionStateMachine(credentials: Credentials(username: "u", password: "p"))
        #expect(connected.receive(.success(.connect(collection: "c", username: "u", password: "p"))) == .connect(collection: "c"))
        connected.connected()
        #expect(connected.receive(.success(.select(collection: "d"))) == .select(collection: "d"))
    }
}

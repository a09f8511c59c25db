/// A username and password, compared in constant time.
package struct Credentials: Sendable, Equatable {
    package let username: String
    package let password: String

    package init(username: String, password: String) {
        self.username = username
        self.password = password
    }

    /// Whether the given credentials match, taking the same time wherever they differ.
    package func accepts(username given: String?, password givenPassword: String?) -> Bool {
        let userMatches = Self.constantTimeEquals(Array(username.utf8), Array((given ?? "").utf8))
        let passwordMatches = Self.constantTimeEquals(Array(password.utf8), Array((givenPassword ?? "").utf8))
        return userMatches && passwordMatches && given != nil && givenPassword != nil
    }

    /// The delay of the answer to the `failures`-th wrong guess in a row: the first after 100 ms, doubling, at most 3.2 s.
    package static func loginDelayMilliseconds(afterFailures failures: Int) -> Int {
        let doublings = min(max(failures - 1, 0), 10)
        return min(firstLoginDelayMilliseconds << doublings, maximumLoginDelayMilliseconds)
    }

    /// The delay of the first wrong guess.
    package static let firstLoginDelayMilliseconds = 100
    /// The longest delay of a wrong guess.
    package static let maximumLoginDelayMilliseconds = 3200

    /// Compares every byte of the longer input, so the time does not reveal where they differ.
    /// Different lengths never match, whatever the bytes (the length difference is kept whole,
    /// not folded into the byte differences).
    package static func constantTimeEquals(_ expected: [UInt8], _ given: [UInt8]) -> Bool {
        var difference = UInt(truncatingIfNeeded: expected.count ^ given.count)
        let length = max(expected.count, given.count)
        for index in 0..<length {
            let a = index < expected.count ? expected[index] : 0
            let b = index < given.count ? given[index] : 0
            difference |= UInt(a ^ b)
        }
        return difference == 0
    }
}

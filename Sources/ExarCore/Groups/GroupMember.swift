extension ConsumerGroup {
    /// A member and the events it holds.
    ///
    /// A member is never handed an id below one it holds (a waiting id goes to a member whose
    /// held ids are all smaller), so what it holds came in increasing id order, and `Ack x`
    /// for a held `x` covers exactly the held events that came before `x`: ones the member has
    /// read. An `Ack` of an id it no longer holds (acknowledged already, or taken back after its
    /// deadline) covers only held events handed out before that id was, found from the delivery
    /// numbers of its last released ids. An `Ack` of an id it was never handed (or handed too
    /// long ago to be remembered) covers the held events up to it, except those handed out since
    /// it was last given an id lower than one it had before (a redelivery). So no acknowledgement
    /// covers a redelivered event handed out after the acknowledged one, which the member may not
    /// have read.
    ///
    /// A late `Ack` (one that arrives after the deadline of an event it covers) still counts for
    /// that event if the group has not had it acknowledged since: an `Ack x` whose delivery
    /// number is known (`x` held, or remembered as released) also covers the remembered events
    /// taken back from this member that were handed out before `x`, up to `x` (``Acknowledgement/late``): waiting, held by
    /// another member now, or parked.
    final class Member {
        /// What an `Ack` covers: held ids (taken out of the member), and ids this member had
        /// until their deadline passed, handed out before the acknowledged one.
        struct Acknowledgement {
            var held: [UInt64] = []
            var late: [UInt64] = []
        }

        private struct Released {
            let id: UInt64
            let sequence: UInt64
            /// Taken back at its deadline (not acknowledged by this member).
            var timedOut: Bool
        }

        let number: Int
        let sink: any SubscriptionSink
        let maxInFlight: Int
        /// Ids handed to it and not acknowledged, ascending (and so in the order they were handed).
        private(set) var inFlight: [UInt64] = []
        /// The delivery number of each id in `inFlight`.
        private var sequences: [UInt64] = []
        private var nextSequence: UInt64 = 0
        /// The highest id it was ever handed, and the delivery number of the last id it was
        /// handed below that one (a redelivery).
        private var highestHanded: UInt64 = 0
        private var backwardSequence: UInt64?
        /// The ids it last stopped holding and their delivery numbers, for late `Ack`s (a ring),
        /// and how many of them were taken back at their deadline.
        private var released: [Released] = []
        private var releasedNext = 0
        private var timedOutRemembered = 0
        static let releasedMemory = 256
        var blocked = false
        var touched = false

        init(number: Int, sink: any SubscriptionSink, maxInFlight: Int) {
            self.number = number
            self.sink = sink
            self.maxInFlight = maxInFlight
        }

        var hasRoom: Bool { !blocked && inFlight.count < maxInFlight }

        /// Whether `id` may be handed to it: it has room and holds nothing above `id`.
        func mayTake(_ id: UInt64) -> Bool { hasRoom && (inFlight.last ?? 0) < id }

        func hold(_ id: UInt64) {
            precondition((inFlight.last ?? 0) < id, "a member is handed increasing ids")
            if id < highestHanded { backwardSequence = nextSequence }
            highestHanded = max(highestHanded, id)
            inFlight.append(id)
            sequences.append(nextSequence)
            nextSequence += 1
        }

        /// Stops holding `id`: its deadline passed (`timedOut`), or another member's late `Ack`
        /// acknowledged it.
        func remove(_ id: UInt64, timedOut: Bool) {
            let index = Self.upperBound(inFlight, id) - 1
            guard index >= 0 && inFlight[index] == id else { return }
            remember(id, sequences[index], timedOut: timedOut)
            inFlight.remove(at: index)
            sequences.remove(at: index)
        }

        /// What an `Ack` of `id` covers; the held ids are taken out of `inFlight`.
        func acknowledge(upTo id: UInt64) -> Acknowledgement {
            var count = Self.upperBound(inFlight, id)
            // The delivery number that bounds what this Ack covers, when it is known.
            var bound: UInt64?
            if count > 0 && inFlight[count - 1] == id {
                bound = sequences[count - 1]
            } else if let sequence = releasedSequence(of: id) {
                // Not held: only what was handed out before it was.
                bound = sequence
                while count > 0 && sequences[count - 1] > sequence { count -= 1 }
            } else if let backwardSequence {
                // Never held (or forgotten): nothing handed out since the last redelivery.
                while count > 0 && sequences[count - 1] >= backwardSequence { count -= 1 }
            }
            var result = Acknowledgement()
            if let bound, timedOutRemembered > 0 {
                for index in released.indices where released[index].timedOut && released[index].sequence <= bound
                    && released[index].id <= id {
                    result.late.append(released[index].id)
                    released[index].timedOut = false
                    timedOutRemembered -= 1
                }
            }
            guard count > 0 else { return result }
            result.held = Array(inFlight[..<count])
            for index in 0..<count { remember(inFlight[index], sequences[index], timedOut: false) }
            inFlight.removeFirst(count)
            sequences.removeFirst(count)
            return result
        }

        /// Everything it holds, given up (it leaves).
        func releaseAll() -> [UInt64] {
            defer {
                inFlight.removeAll()
                sequences.removeAll()
            }
            return inFlight
        }

        private func remember(_ id: UInt64, _ sequence: UInt64, timedOut: Bool) {
            let entry = Released(id: id, sequence: sequence, timedOut: timedOut)
            if timedOut { timedOutRemembered += 1 }
            if released.count < Self.releasedMemory {
                released.append(entry)
            } else {
                if released[releasedNext].timedOut { timedOutRemembered -= 1 }
                released[releasedNext] = entry
            }
            releasedNext = (releasedNext + 1) % Self.releasedMemory
        }

        private func releasedSequence(of id: UInt64) -> UInt64? {
            var found: UInt64?
            for entry in released where entry.id == id { found = max(found ?? 0, entry.sequence) }
            return found
        }

        /// The number of elements `<= id`.
        static func upperBound(_ ids: [UInt64], _ id: UInt64) -> Int {
            var low = 0
            var high = ids.count
            while low < high {
                let mid = (low + high) / 2
                if ids[mid] <= id { low = mid + 1 } else { high = mid }
            }
            return low
        }
    }
}

#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Synchronization

/// A progress bar on standard error while a workload runs, when standard error is a terminal
/// (never in `--json` runs or when piped): the share done, the count and the current rate.
final class ProgressMeter: Sendable {
    private let label: String
    private let total: Int
    private let done = Atomic<Int>(0)
    private let stopped = Atomic<Bool>(false)
    private let finished = DispatchSemaphore(value: 0)

    /// A meter that draws only when standard error is a terminal and `enabled`; `nil` otherwise,
    /// so drivers pay nothing when nobody watches.
    static func make(_ label: String, total: Int, enabled: Bool) -> ProgressMeter? {
        guard enabled, isatty(STDERR_FILENO) == 1, total > 0 else { return nil }
        let meter = ProgressMeter(label: label, total: total)
        let thread = Thread { meter.draw() }
        thread.name = "exar-bench-progress"
        thread.start()
        return meter
    }

    private init(label: String, total: Int) {
        self.label = label
        self.total = total
    }

    /// Counts `count` more units done (events answered, delivered or read).
    func advance(_ count: Int = 1) {
        done.add(count, ordering: .relaxed)
    }

    /// Stops drawing and clears the line.
    func finish() {
        guard !stopped.exchange(true, ordering: .acquiringAndReleasing) else { return }
        finished.wait()
    }

    private func draw() {
        let width = 30
        var lastCount = 0
        var lastTime = Date()
        while !stopped.load(ordering: .acquiring) {
            usleep(250_000)
            let count = min(done.load(ordering: .relaxed), total)
            let now = Date()
            let rate = Double(count - lastCount) / max(now.timeIntervalSince(lastTime), 0.001)
            (lastCount, lastTime) = (count, now)
            let filled = count * width / total
            let bar = String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled)
            let line = "\r\(label) [\(bar)] \(count * 100 / total)%  \(count)/\(total)  \(Int(rate)) /s   "
            FileHandle.standardError.write(Data(line.utf8))
        }
        FileHandle.standardError.write(Data(("\r" + String(repeating: " ", count: 100) + "\r").utf8))
        finished.signal()
    }
}

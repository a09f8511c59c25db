import ExarCore
import ExarModel
import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// A failure of `exar-db import`, said to the person running it.
struct ImportError: Error, CustomStringConvertible {
    let description: String

    init(_ description: String) {
        self.description = description
    }
}

/// Set by SIGINT or SIGTERM while the import writes: it stops between two batches and drops the
/// collection it was filling.
let importInterrupted = Atomic<Bool>(false)

extension ExarError {
    /// The error's text without the protocol's kind prefix, for messages to a person.
    var plainText: String {
        switch self {
        case .io(_, let text): text
        case .connection(let reason) where !reason.isEmpty: reason
        case .validation(let reason): reason
        default: description
        }
    }
}

/// Imports logs of the original Exar DB into collections of a ``Database``, all or nothing per
/// collection:
/// 1. every log is read and checked whole (nothing is opened or written before all pass);
/// 2. every target collection is opened, which takes its lock, and must be empty (collections
///    this step created are deleted again when one of them fails);
/// 3. each log is read again and published in batches; a collection whose writing fails is dropped.
struct Importer {
    /// A log that passed the check: its event count and the bytes of its lines.
    struct CheckedLog {
        let log: OriginalLog
        let count: UInt64
        let bytes: Int
    }

    /// A collection filled from its log.
    struct Imported {
        let name: String
        let count: UInt64
        let seconds: Double
    }

    /// Why the import stopped, what it had imported by then and which logs it did not import.
    struct Failure: Error {
        let message: String
        let imported: [Imported]
        let notImported: [String]
    }

    let configuration: DatabaseConfiguration
    let logs: [OriginalLog]
    /// Events per publish call.
    var batchSize = 10_000
    /// Publish calls a collection may have in flight (reading overlaps writing; memory stays bounded).
    var publishesInFlight = 4
    /// Prints a line of progress.
    let say: (String) -> Void

    /// Checks, then imports, every log; returns what it imported.
    /// - Throws: ``Failure`` saying what went wrong, what was imported (kept) and what was not.
    func run() throws(Failure) -> [Imported] {
        let allNames = logs.map(\.name)
        var checked: [CheckedLog] = []
        for log in logs {
            do {
                let result = try check(log)
                say(result.count == 0
                    ? "checked \(log.path): empty, nothing to import"
                    : "checked \(log.path): \(result.count) events (ids 1-\(result.count)), \(result.bytes) bytes")
                checked.append(result)
            } catch {
                throw Failure(message: error.description, imported: [], notImported: allNames)
            }
        }
        let toImport = checked.filter { $0.count > 0 }
        if toImport.isEmpty { return [] }

        let (database, opened) = try open(toImport, allNames: allNames)
        defer { database.close() }
        var imported: [Imported] = []
        for (index, target) in opened.enumerated() {
            let started = ContinuousClock.now
            do {
                try publish(target.checked, into: target.collection)
            } catch {
                // Nothing half imported: this collection goes, and the ones not yet filled go
                // back to how they were (those this import created are deleted).
                var notes = [error.description]
                do {
                    try database.drop(target.checked.log.name)
                    notes.append("the partly imported collection \(target.checked.log.name) was dropped")
                } catch let dropError {
                    notes.append("dropping the partly imported collection \(target.checked.log.name) failed too (\(dropError.plainText)): delete its folder \(configuration.directory(forCollection: target.checked.log.name)) with the server stopped")
                }
                for later in opened[(index + 1)...] where !later.existed {
                    try? database.drop(later.checked.log.name)
                }
                throw Failure(message: notes.joined(separator: "; "), imported: imported,
                              notImported: opened[index...].map(\.checked.log.name))
            }
            let seconds = Double((ContinuousClock.now - started) / .milliseconds(1)) / 1000
            let item = Imported(name: target.checked.log.name, count: target.checked.count, seconds: seconds)
            imported.append(item)
            say(Self.summary(item))
        }
        return imported
    }

    /// `orders: 1234 events imported (ids 1-1234) in 0.2 s, 6170 events/s`
    static func summary(_ item: Imported) -> String {
        let rate = item.seconds >= 0.1 ? ", \(Int(Double(item.count) / item.seconds)) events/s" : ""
        return "\(item.name): \(item.count) events imported (ids 1-\(item.count)) in \(String(format: "%.1f", item.seconds)) s\(rate)"
    }

    // MARK: Step 1: check

    /// Reads `log` whole and checks every line as the import will read it.
    /// - Throws: ``ImportError`` naming the file and line of the first problem.
    func check(_ log: OriginalLog) throws(ImportError) -> CheckedLog {
        let reader = try LineReader(path: log.path)
        let maximum = configuration.configuration(forCollection: log.name).maximumEventBytes
        var expected: UInt64 = 1
        while try reader.refill() {
            if importInterrupted.load(ordering: .relaxed) { throw ImportError("interrupted") }
            while let next = reader.nextLine() {
                do {
                    _ = try OriginalEvent.parse(next.line, expectedId: expected, maximumEventBytes: maximum)
                } catch {
                    throw ImportError("\(log.path) line \(next.number): \(error.reason)")
                }
                expected += 1
            }
        }
        return CheckedLog(log: log, count: expected - 1, bytes: reader.consumedBytes)
    }

    // MARK: Step 2: open

    struct Target {
        let checked: CheckedLog
        let collection: ExarCore.Collection
        /// Whether the collection's folder was there before the import.
        let existed: Bool
    }

    /// Opens the database and every target collection (taking their locks); each must be empty.
    /// - Throws: ``Failure`` after deleting again what this step created.
    func open(_ checked: [CheckedLog], allNames: [String]) throws(Failure) -> (Database, [Target]) {
        let logsPathExisted = FileManager.default.fileExists(atPath: configuration.logsPath)
        let database: Database
        do {
            database = try Database(configuration: configuration)
        } catch {
            throw Failure(message: "cannot open the database in \(configuration.logsPath): \(error.plainText)",
                          imported: [], notImported: allNames)
        }
        var targets: [Target] = []
        var problem: String?
        for item in checked {
            if importInterrupted.load(ordering: .relaxed) {
                problem = "interrupted"
                break
            }
            let name = item.log.name
            let directory = configuration.directory(forCollection: name)
            let existed = FileManager.default.fileExists(atPath: directory)
            do {
                let collection = try database.collection(name)
                targets.append(Target(checked: item, collection: collection, existed: existed))
                let last = collection.lastId
                if last > 0 {
                    problem = "collection \(name) (\(directory)) already has \(last) events (ids 1-\(last)): the import only fills empty collections"
                    break
                }
            } catch {
                if case .io(.wouldBlock, _) = error {
                    problem = "cannot import into collection \(name): \(error.plainText); stop the server that has it open, then import again"
                } else {
                    problem = "cannot open collection \(name) (\(directory)): \(error.plainText)"
                }
                break
            }
        }
        guard let problem else { return (database, targets) }
        for target in targets where !target.existed {
            try? database.drop(target.checked.log.name)
        }
        database.close()
        if !logsPathExisted { rmdir(configuration.logsPath) }  // only when still empty
        throw Failure(message: problem, imported: [], notImported: allNames)
    }

    // MARK: Step 3: publish

    /// Publishes the events of `checked` into the empty `collection`, in batches, then syncs it.
    /// - Throws: ``ImportError`` when a publish fails, the file changed since the check, or the
    ///   import was interrupted.
    func publish(_ checked: CheckedLog, into collection: ExarCore.Collection) throws(ImportError) {
        let name = checked.log.name
        // Only the bytes that were checked: lines appended since are not imported.
        let reader = try LineReader(path: checked.log.path, limit: checked.bytes)
        let maximum = collection.configuration.maximumEventBytes
        let window = PublishWindow(limit: publishesInFlight)
        var expected: UInt64 = 1
        var problem: String?
        while problem == nil {
            if importInterrupted.load(ordering: .relaxed) {
                problem = "\(name): interrupted"
                break
            }
            do {
                guard try reader.refill() else { break }
            } catch {
                problem = error.description
                break
            }
            guard window.reserve() else { break }
            let firstId = expected
            var lineProblem: String?
            do throws(ExarError) {
                try collection.publish({ (appender: inout PublishAppender) throws(ExarError) in
                    while appender.count < batchSize, let next = reader.nextLine() {
                        let event: OriginalEvent
                        do throws(LineProblem) {
                            event = try OriginalEvent.parse(next.line, expectedId: expected, maximumEventBytes: maximum)
                        } catch {
                            lineProblem = "\(checked.log.path) line \(next.number) changed since it was checked: \(error.reason)"
                            throw .validation(error.reason)
                        }
                        try appender.appendValidated(timestamp: event.timestamp, tags: event.tags, data: event.data)
                        expected += 1
                    }
                }, completion: { result in
                    window.complete(result, name: name, expectedFirstId: firstId)
                })
            } catch {
                window.cancel()
                problem = lineProblem ?? "\(name): publishing failed at id \(firstId): \(error.plainText)"
            }
        }
        let (stored, failure) = window.finish()
        if let failure = problem ?? failure {
            throw ImportError(failure)
        }
        if stored != checked.count || collection.lastId != checked.count {
            throw ImportError("\(name): stored \(stored) events (last id \(collection.lastId)) where the log has \(checked.count)")
        }
        do {
            try collection.flush()
        } catch {
            throw ImportError("\(name): syncing the imported events to disk failed: \(error.plainText)")
        }
    }
}

/// The publishes of one collection in flight: at most `limit`, so reading the next batch overlaps
/// the writer storing the previous ones without the whole file waiting in memory.
final class PublishWindow: @unchecked Sendable {  // every var is guarded by `condition`
    private let condition = NSCondition()
    private let limit: Int
    private var inFlight = 0
    private var stored: UInt64 = 0
    private var failure: String?

    init(limit: Int) {
        self.limit = limit
    }

    /// Waits for a free place; `false` once a publish failed.
    func reserve() -> Bool {
        condition.lock()
        defer { condition.unlock() }
        while inFlight >= limit && failure == nil { condition.wait() }
        guard failure == nil else { return false }
        inFlight += 1
        return true
    }

    /// Gives back a place whose publish call threw (its completion never comes).
    func cancel() {
        condition.lock()
        inFlight -= 1
        condition.broadcast()
        condition.unlock()
    }

    /// Records the outcome of one publish call (on the writer's thread, or the caller's).
    func complete(_ result: PublishResult, name: String, expectedFirstId: UInt64) {
        condition.lock()
        defer {
            inFlight -= 1
            condition.broadcast()
            condition.unlock()
        }
        if result.storedCount > 0 && result.firstId != expectedFirstId && failure == nil {
            failure = "\(name): the collection gave id \(result.firstId) to the event with id \(expectedFirstId)"
        }
        stored += UInt64(result.storedCount)
        if let error = result.error, failure == nil {
            failure = "\(name): publishing failed after \(stored) events: \(error.plainText)"
        }
    }

    /// Waits until nothing is in flight; returns the events stored and the first failure.
    func finish() -> (stored: UInt64, failure: String?) {
        condition.lock()
        defer { condition.unlock() }
        while inFlight > 0 { condition.wait() }
        return (stored, failure)
    }
}

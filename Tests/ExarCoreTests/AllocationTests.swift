import ExarCore
import ExarModel
import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Segment files are allocated on disk as they fill, not when they are created: a collection
/// costs what it holds plus a few pages, whatever its segment size.
@Suite struct AllocationTests {
    /// Blocks allocated under `path` (what `du` says), and the files' full sizes.
    private func usage(_ path: String) -> (allocated: UInt64, apparent: UInt64) {
        var allocated: UInt64 = 0
        var apparent: UInt64 = 0
        for name in (try? FileManager.default.contentsOfDirectory(atPath: path)) ?? [] {
            var info = stat()
            guard stat(path + "/" + name, &info) == 0 else { continue }
            allocated += UInt64(info.st_blocks) * 512
            apparent += UInt64(info.st_size)
        }
        return (allocated, apparent)
    }

    @Test func aSmallCollectionTakesAFewPagesWhateverItsSegmentSize() async throws {
        let folder = TemporaryFolder()
        let database = try makeDatabase(folder, segmentSize: 64 << 20, indexInterval: 4096)
        defer { database.close() }
        let empty = try database.collection("empty")
        let one = try database.collection("one")
        try await one.publish(Event(tags: ["t"], data: "hello"))
        let emptyUse = usage(folder.path + "/empty")
        let oneUse = usage(folder.path + "/one")
        #expect(emptyUse.apparent > 64 << 20, "the files keep their full size: \(emptyUse)")
        #expect(emptyUse.allocated <= 16 << 10, "an empty collection: \(emptyUse.allocated) bytes on disk")
        #expect(oneUse.allocated <= 48 << 10, "one event: \(oneUse.allocated) bytes on disk")
        #expect(try one.read(.all).map(\.data) == ["hello"])
        #expect(empty.lastId == 0)
    }

    /// The names of this process's threads (a collection's would carry its name).
    private func threadNames() -> [String] {
        let tasks = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/task")) ?? []
        return tasks.compactMap { task in
            (try? String(contentsOfFile: "/proc/self/task/\(task)/comm", encoding: .utf8))?
                .trimmingCharacters(in: .whitespacesAndNewlines)
        }
    }

    @Test func aThousandCollectionsCostTheirDataNotThreadsOrDescriptors() async throws {
        let folder = TemporaryFolder()
        let database = try makeDatabase(folder, segmentSize: 64 << 20, indexInterval: 4096, scanners: 2)
        defer { database.close() }
        // Fewer under a sanitizer, where each open costs several times more.
        let sanitized = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "__asan_init") != nil
            || dlsym(UnsafeMutableRawPointer(bitPattern: 0), "__tsan_init") != nil
        let count = sanitized ? 300 : 1000
        for number in 0..<count {
            try await database.collection("c\(number)").publish(Event(tags: ["t"], data: "event \(number)"))
        }
        // Threads: the shared lanes only (as many as the cores, at least 2, for writers and for
        // scanners), none per collection.
        let lanes = max(2, ProcessInfo.processInfo.activeProcessorCount)
        let names = threadNames()
        #expect(names.filter { $0.hasPrefix("exar-w") }.count == lanes, "\(names)")
        #expect(names.filter { $0.hasPrefix("exar-s") }.count == lanes, "\(names)")
        // Descriptors: each collection's lock file, nothing else.
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd")) ?? []
        let open = entries.filter { entry in
            (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/fd/" + entry))?.hasPrefix(folder.path) ?? false
        }.count
        #expect(open == count)
        // Disk: a few pages per collection, not a 64 MiB segment.
        var allocated: UInt64 = 0
        if let walker = FileManager.default.enumerator(atPath: folder.path) {
            for case let name as String in walker {
                var info = stat()
                if lstat(folder.path + "/" + name, &info) == 0 { allocated += UInt64(info.st_blocks) * 512 }
            }
        }
        #expect(allocated <= UInt64(count) * (64 << 10), "\(allocated / UInt64(count)) bytes a collection")
        #expect(try database.collection("c\(count - 1)").read(.all).map(\.data) == ["event \(count - 1)"])
    }

    @Test(arguments: [Compression.none, .lz4])
    func aGrowingSegmentTakesAboutWhatItHoldsAndGoesOnAfterReopening(compression: Compression) async throws {
        let folder = TemporaryFolder()
        let directory = folder.path + "/c"
        var expected: [String] = []
        func publish(_ collection: ExarCore.Collection, _ range: Range<Int>) async throws {
            for burst in range {
                let events = (0..<100).map { Event(tags: ["tag-\(burst % 50)", "all"], data: sampleData(burst * 100 + $0, size: 500)) }
                try await collection.publish(events)
                expected += events.map(\.data)
            }
        }
        do {
            let database = try makeDatabase(folder, segmentSize: 64 << 20, indexInterval: 4096, compression: compression)
            let collection = try database.collection("c")
            try await publish(collection, 0..<60)  // 3 MB of events
            let statistics = collection.statistics
            // Tags and data, each record's 16-byte header and a batch header per 100 events (at most).
            let stored = statistics.eventBytesAppended + statistics.eventsAppended * 16 + 600 * 64
            let use = usage(directory)
            // What the events take, plus the step being filled and the two allocated ahead of
            // the writer (an eighth of what the file holds each, at most 1 MiB), and the side files.
            let step = min(max(stored / 8, 16 << 10), 1 << 20)
            #expect(use.allocated <= stored + 3 * step + (256 << 10), "\(use.allocated) bytes on disk for \(stored)")
            database.close()
            // Sealed at close, the log gives back what was allocated ahead of its end (on the
            // allocation queue, soon after): its data, its header and an extent block at most.
            let logFile = try #require(folder.files(in: "c", suffix: ".log").first)
            var info = stat()
            try await waitUntil(seconds: 10) {
                stat(logFile, &info) == 0 && UInt64(info.st_blocks) * 512 <= UInt64(stored + 3 * 4096)
            }
        }
        // Reopened (sealed at close, so trusted without a scan), it takes more events where it stopped.
        let database = try makeDatabase(folder, segmentSize: 64 << 20, indexInterval: 4096, compression: compression)
        defer { database.close() }
        let collection = try database.collection("c")
        #expect(collection.recoveryNotes.isEmpty)
        try await publish(collection, 60..<120)
        #expect(try collection.read(.all).map(\.data) == expected)
        #expect(try collection.read(Query(offset: 0, tag: "tag-7")).count == 3 * 100)  // bursts 7, 57 and 107
        #expect(try collection.read(Query(offset: 0, tag: "absent")).isEmpty)
        #expect(collection.statistics.segments == 1)
    }
}

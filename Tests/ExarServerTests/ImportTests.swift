import Foundation
import ExarModel
import Testing

@testable import exar_db

#if canImport(Glibc)
import Glibc
#endif

/// An event as the original (Rust) Exar DB's log holds it.
private struct OriginalLine {
    var id: Int
    var timestamp: UInt64
    var tags: [String]
    var data: String

    /// The line without its LF, as the original's `to_tab_separated_string` makes it; also what
    /// our server sends after `Event\t`.
    var text: String { "\(id)\t\(timestamp)\t\(tags.joined(separator: " "))\t\(data)" }
}

/// Writes `<folder>/<name>.log` as the original's logger does (each event's line and an LF,
/// ids from 1) and `<name>.index.log` as its line index persists (`lines bytes`, one pair every
/// `granularity` lines). `lines` replaces whole lines of the log (for damage); `ending` follows the last one.
private func writeOriginalLog(
    in folder: String, name: String, events: [OriginalLine], granularity: Int = 100,
    lines replaced: [Int: String] = [:], ending: String = "\n"
) throws {
    var log = ""
    var index = ""
    var bytes = 0
    for (number, event) in zip(1..., events) {
        let line = replaced[number] ?? event.text
        log += line + (number == events.count ? ending : "\n")
        bytes += line.utf8.count + 1
        if (event.id + 1) % granularity == 0 { index += "\(event.id + 1) \(bytes)\n" }
    }
    try log.write(toFile: folder + "/" + name + ".log", atomically: false, encoding: .utf8)
    try index.write(toFile: folder + "/" + name + ".index.log", atomically: false, encoding: .utf8)
}

/// `count` events with what data of the original may hold: TABs, spaces, quotes, non-ASCII,
/// empty data, long data; timestamps in milliseconds, not always increasing.
private func sampleEvents(_ count: Int, salt: String = "") -> [OriginalLine] {
    (1...count).map { id in
        let tags: [String] = switch id % 4 {
        case 0: ["order"]
        case 1: ["order", "created"]
        case 2: ["ünïcode", "t\(id % 7)"]
        default: ["a", "b", "c"]
        }
        let data: String = switch id % 6 {
        case 0: "with\ttabs\tinside \(id)\t"
        case 1: #"{"id": \#(id), "text": "a b  c", "salt": "\#(salt)"}"#
        case 2: "emoji 🎉 and ñ \(id)"
        case 3: id % 12 == 3 ? "" : "trailing space \(id) "
        case 4: String(repeating: "x\(id % 10)", count: id % 97 == 4 ? 1500 : 3)
        default: "\(salt)plain \(id)"
        }
        return OriginalLine(id: id, timestamp: 1_480_000_000_000 + UInt64(id * 37 % 1000) + UInt64(id) * 1000,
                            tags: tags, data: data)
    }
}

private func makeFolder(_ label: String) throws -> String {
    let folder = NSTemporaryDirectory() + "exar-import-\(label)-" + UUID().uuidString
    try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
    return folder
}

private func runImport(_ server: ExarProcess, from folder: String, _ extra: [String] = []) throws
    -> (status: Int32, output: String, error: String)
{
    try runProduct("exar-db", ["import", "--from", folder, "-c", server.folder + "/exar-db.toml"] + extra)
}

private func exists(_ path: String) -> Bool { FileManager.default.fileExists(atPath: path) }


/// `exar-db import`, the real binary, on logs written as the original writes them; the real
/// server then serves what it imported.
@Suite struct ImportTests {
    @Test func everyLogIsImportedAndServedByteForByteWithIdsContinuing() async throws {
        let original = try makeFolder("original")
        defer { try? FileManager.default.removeItem(atPath: original) }
        let orders = sampleEvents(2500)
        let users = sampleEvents(3, salt: "u")
        try writeOriginalLog(in: original, name: "orders", events: orders)
        try writeOriginalLog(in: original, name: "users", events: users)
        // Small segments: the import rolls many of them.
        let server = try ExarProcess(database: ["segment_size = 65536"])
        defer { server.removeFiles() }

        let run = try runImport(server, from: original, ["--batch-size", "700"])
        #expect(run.status == 0, "\(run.error)")
        #expect(run.output.contains("orders: 2500 events imported (ids 1-2500)"), "\(run.output)")
        #expect(run.output.contains("users: 3 events imported (ids 1-3)"), "\(run.output)")
        #expect(run.output.contains("done: 2 collections, 2503 events imported"), "\(run.output)")
        #expect(!exists(server.dataFolder + "/orders.index"), "the .index.log file is no collection")

        try await server.start()
        #expect(try readAllEvents(port: server.port, collection: "orders") == orders.map(\.text))
        #expect(try readAllEvents(port: server.port, collection: "users") == users.map(\.text))
        let client = try LineClient(port: server.port)
        client.send("Connect\torders\nPublish\tafter import\t0\tnext\n")
        #expect(client.readLines(2) == ["Connected", "Published\t2501"])
        let another = try LineClient(port: server.port)
        another.send("Connect\tusers\nPublish\tx\t0\ty\n")
        #expect(another.readLines(2) == ["Connected", "Published\t4"])
        #expect(server.stop() == 0)

        let verify = try runInspect(["verify", server.dataFolder + "/orders"])
        #expect(verify.status == 0, "\(verify.output)\(verify.error)")
    }

    @Test func aCollectionThatHasEventsIsRefusedAndNothingChanges() async throws {
        let original = try makeFolder("original")
        defer { try? FileManager.default.removeItem(atPath: original) }
        try writeOriginalLog(in: original, name: "alpha", events: sampleEvents(10))
        try writeOriginalLog(in: original, name: "zeta", events: sampleEvents(10))
        let server = try ExarProcess()
        defer { server.removeFiles() }
        try await server.start()
        let client = try LineClient(port: server.port)
        client.send("Connect\tzeta\nPublish\tmine\t5\tkeep me\nPublish\tmine\t6\tand me\n")
        #expect(client.readLines(3) == ["Connected", "Published\t1", "Published\t2"])
        #expect(server.stop() == 0)

        let run = try runImport(server, from: original)
        #expect(run.status != 0)
        #expect(run.error.contains("collection zeta"), "\(run.error)")
        #expect(run.error.contains("already has 2 events (ids 1-2)"), "\(run.error)")
        #expect(run.error.contains("nothing imported"), "\(run.error)")
        // alpha was opened (created) before zeta was found full, and deleted again.
        #expect(!exists(server.dataFolder + "/alpha"))

        try await server.start()
        #expect(try readAllEvents(port: server.port, collection: "zeta") == ["1\t5\tmine\tkeep me", "2\t6\tmine\tand me"])
        #expect(server.stop() == 0)
    }

    @Test(arguments: [
        (3, "x3\t1480000003111\ttag\tdata", "line 3: bad id \"x3\""),
        (3, "5\t1480000003111\ttag\tdata", "line 3: id 5 is not the next one (expected 3)"),
        (3, "2\t1480000003111\ttag\tdata", "line 3: id 2 is not the next one (expected 3)"),
        (3, "3\t14800000031x1\ttag\tdata", "line 3: bad timestamp \"14800000031x1\""),
        (3, "3\t\ttag\tdata", "line 3: bad timestamp \"\""),
        (3, "3\t1480000003111\ttag", "line 3: missing fields: found 3 of 4"),
        (3, "3", "line 3: missing fields: found 1 of 4"),
        (3, "", "line 3: empty line"),
        (3, "3\t1480000003111\ttag  other\tdata", "line 3: bad tags \"tag  other\": event must not contain empty tags"),
        (3, "3\t1480000003111\t\tdata", "line 3: bad tags \"\": event must not contain empty tags"),
        (3, "3\t1480000003111\ttag \tdata", "line 3: bad tags"),
    ])
    func aDamagedLineIsNamedAndNothingIsImported(line: Int, text: String, expected: String) async throws {
        let original = try makeFolder("damaged")
        defer { try? FileManager.default.removeItem(atPath: original) }
        try writeOriginalLog(in: original, name: "good", events: sampleEvents(20))
        try writeOriginalLog(in: original, name: "orders", events: sampleEvents(20), lines: [line: text])
        let server = try ExarProcess()
        defer { server.removeFiles() }

        let run = try runImport(server, from: original)
        #expect(run.status != 0)
        #expect(run.error.contains(original + "/orders.log " + expected), "\(run.error)")
        #expect(run.error.contains("nothing imported"), "\(run.error)")
        #expect(!exists(server.dataFolder), "nothing may be created before every log passed")
    }

    @Test func aLastLineWithoutItsNewlineIsRefused() throws {
        let original = try makeFolder("torn")
        defer { try? FileManager.default.removeItem(atPath: original) }
        try writeOriginalLog(in: original, name: "orders", events: sampleEvents(7), ending: "")
        let server = try ExarProcess()
        defer { server.removeFiles() }
        let run = try runImport(server, from: original)
        #expect(run.status != 0)
        #expect(run.error.contains("orders.log line 7: the file does not end with a newline"), "\(run.error)")
        #expect(!exists(server.dataFolder))
    }

    @Test func onlyTheNamedCollectionsAreImported() async throws {
        let original = try makeFolder("selection")
        defer { try? FileManager.default.removeItem(atPath: original) }
        let events = ["a": sampleEvents(5, salt: "a"), "b": sampleEvents(6, salt: "b"), "c": sampleEvents(7, salt: "c")]
        for (name, list) in events { try writeOriginalLog(in: original, name: name, events: list) }
        let server = try ExarProcess()
        defer { server.removeFiles() }

        let missing = try runImport(server, from: original, ["--collection", "a", "--collection", "nope"])
        #expect(missing.status != 0)
        #expect(missing.error.contains("no original log for collection nope"), "\(missing.error)")
        #expect(!exists(server.dataFolder))

        let run = try runImport(server, from: original, ["--collection", "c", "--collection", "a"])
        #expect(run.status == 0, "\(run.error)")
        #expect(run.output.contains("c: 7 events imported (ids 1-7)"), "\(run.output)")
        #expect(run.output.contains("a: 5 events imported (ids 1-5)"), "\(run.output)")
        #expect(!run.output.contains("b:"), "\(run.output)")
        #expect(!exists(server.dataFolder + "/b"))

        try await server.start()
        #expect(try readAllEvents(port: server.port, collection: "a") == events["a"]!.map(\.text))
        #expect(try readAllEvents(port: server.port, collection: "c") == events["c"]!.map(\.text))
        #expect(try readAllEvents(port: server.port, collection: "b") == [])
        #expect(server.stop() == 0)
    }

    @Test func aCollectionOpenInARunningServerIsRefused() async throws {
        let original = try makeFolder("locked")
        defer { try? FileManager.default.removeItem(atPath: original) }
        let orders = sampleEvents(50)
        try writeOriginalLog(in: original, name: "aaa", events: sampleEvents(4))
        try writeOriginalLog(in: original, name: "orders", events: orders)
        let server = try ExarProcess()
        defer { server.removeFiles() }
        try await server.start()
        let client = try LineClient(port: server.port)
        client.send("Connect\torders\n")
        #expect(client.readLine() == "Connected")

        let run = try runImport(server, from: original)
        #expect(run.status != 0)
        #expect(run.error.contains("cannot import into collection orders: collection folder \(server.dataFolder)/orders is in use by another process"), "\(run.error)")
        #expect(run.error.contains("stop the server that has it open"), "\(run.error)")
        #expect(run.error.contains("nothing imported"), "\(run.error)")
        #expect(!exists(server.dataFolder + "/aaa"))
        #expect(server.stop() == 0)

        // With the server stopped, the same import goes through.
        let again = try runImport(server, from: original)
        #expect(again.status == 0, "\(again.error)")
        try await server.start()
        #expect(try readAllEvents(port: server.port, collection: "orders") == orders.map(\.text))
        #expect(server.stop() == 0)
    }

    @Test func anInterruptedImportLeavesNoPartialCollection() async throws {
        let original = try makeFolder("interrupted")
        defer { try? FileManager.default.removeItem(atPath: original) }
        // Large enough that a debug build is still importing when the signal comes.
        let line = String(repeating: "p", count: 100)
        var text = ""
        text.reserveCapacity(300_000 * 130)
        for id in 1...300_000 { text += "\(id)\t\(1_480_000_000_000 + id)\ttag\t\(line)\n" }
        try text.write(toFile: original + "/orders.log", atomically: false, encoding: .utf8)
        let server = try ExarProcess()
        defer { server.removeFiles() }

        let process = Process()
        process.executableURL = productsFolder.appendingPathComponent("exar-db")
        process.arguments = ["import", "--from", original, "-c", server.folder + "/exar-db.toml"]
        let output = Pipe()
        let error = Pipe()
        process.standardOutput = output
        process.standardError = error
        try process.run()
        // Once the log is checked and the collection created, the import writes: interrupt it then.
        var printed = ""
        while !printed.contains("checked ") {
            let chunk = output.fileHandleForReading.availableData
            if chunk.isEmpty { break }
            printed += String(decoding: chunk, as: UTF8.self)
        }
        for _ in 0..<500 where !exists(server.dataFolder + "/orders") { try await Task.sleep(for: .milliseconds(10)) }
        kill(process.processIdentifier, SIGINT)
        let said = String(decoding: error.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        printed += String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        // Never a partial collection: interrupted, nothing is left; done before the signal
        // could land (a machine busy elsewhere), all of it is there.
        if process.terminationStatus == 0 {
            #expect(printed.contains("300000 events imported"), "\(printed)")
            try await server.start()
            let client = try LineClient(port: server.port)
            client.send("Connect\torders\nPublish\tt\t0\tnext\n")
            #expect(client.readLines(2) == ["Connected", "Published\t300001"])
            #expect(server.stop() == 0)
            return
        }
        #expect(process.terminationStatus == 1)
        #expect(said.contains("interrupted"), "\(said)")
        // Usually while writing; on a loaded machine the signal may come before the first write.
        #expect(said.contains("the partly imported collection orders was dropped") || said.contains("nothing imported"), "\(said)")
        #expect(!exists(server.dataFolder + "/orders"))
    }

    @Test(.enabled(if: canMountTmpfs, "needs root to mount a tmpfs"))
    func aDiskThatFillsMidwayLeavesNoPartialCollection() async throws {
        let original = try makeFolder("full")
        defer { try? FileManager.default.removeItem(atPath: original) }
        try writeOriginalLog(in: original, name: "first", events: sampleEvents(100))
        let big = (1...6000).map { OriginalLine(id: $0, timestamp: UInt64($0), tags: ["big"], data: String(repeating: "d", count: 300)) }
        try writeOriginalLog(in: original, name: "second", events: big)
        let server = try ExarProcess(database: ["segment_size = 65536"])
        defer { server.removeFiles() }
        guard try mountTmpfs(at: server.dataFolder, size: "1m") else { return }
        defer { umount2(server.dataFolder, Int32(MNT_DETACH)) }

        let run = try runImport(server, from: original, ["--batch-size", "500"])
        #expect(run.status != 0)
        #expect(run.output.contains("first: 100 events imported"), "\(run.output)")
        #expect(run.error.contains("second: publishing failed"), "\(run.error)")
        #expect(run.error.contains("No space left on device"), "\(run.error)")
        #expect(run.error.contains("the partly imported collection second was dropped"), "\(run.error)")
        #expect(run.error.contains("imported (kept): first (100 events)"), "\(run.error)")
        #expect(run.error.contains("not imported: second"), "\(run.error)")
        #expect(!exists(server.dataFolder + "/second"))
        #expect(exists(server.dataFolder + "/first"))
    }
}

/// The parser of original log lines, in-process.
@Suite struct OriginalLogLineTests {
    private struct Fields: Equatable {
        var id: UInt64, timestamp: UInt64, tags: String, data: String
    }

    /// The fields of a good line, or the reason a bad one gives.
    private func parse(_ text: String, expectedId: UInt64 = 1, maximum: Int = 1 << 20) -> (Fields?, String?) {
        Array(text.utf8).withUnsafeBytes { bytes in
            do throws(LineProblem) {
                let event = try OriginalEvent.parse(bytes, expectedId: expectedId, maximumEventBytes: maximum)
                return (Fields(id: event.id, timestamp: event.timestamp, tags: String(decoding: event.tags, as: UTF8.self),
                               data: String(decoding: event.data, as: UTF8.self)), nil)
            } catch {
                return (nil, error.reason)
            }
        }
    }

    @Test func fieldsAreSplitAsTheOriginalSplitsThem() {
        #expect(parse("1\t1480000000123\ta b\tdata\twith\ttabs").0
                == Fields(id: 1, timestamp: 1_480_000_000_123, tags: "a b", data: "data\twith\ttabs"))
        // Rust's lines() drops a CR before the LF; empty data is data.
        #expect(parse("1\t2\tt\tdata\r").0?.data == "data")
        #expect(parse("1\t2\tt\t").0?.data == "")
        #expect(parse("18446744073709551615\t2\tt\td", expectedId: .max).0?.id == .max)
    }

    @Test func badFieldsAreNamed() {
        #expect(parse("+1\t2\tt\td").1 == "bad id \"+1\"")
        #expect(parse("18446744073709551616\t2\tt\td").1 == "bad id \"18446744073709551616\"")
        #expect(parse("1\t0\tt\td").1?.hasPrefix("bad timestamp 0") == true)
        #expect(parse("1\t-5\tt\td").1 == "bad timestamp \"-5\"")
        #expect(parse("1\t2\ta  b\td").1 == "bad tags \"a  b\": event must not contain empty tags")
        // A CR inside a tag was stored by the original, and is kept.
        #expect(parse("1\t2\tt\r\td").0?.tags == "t\r")
        #expect(parse("1\t2\tt\tabcdef", maximum: 4).1?.hasPrefix("event of 7 bytes is larger than a segment can hold (4)") == true)
        #expect(parse("1\t2\tt\tbad \u{FFFD}").1 == nil)
    }

    @Test func invalidUTF8IsFound() {
        func check(_ bytes: [UInt8]) -> Int? { bytes.withUnsafeBytes { UTF8Validation.firstInvalidByte(in: $0) } }
        #expect(check(Array("plain ascii, longer than eight bytes".utf8)) == nil)
        #expect(check(Array("ünïcode 🎉 ok".utf8)) == nil)
        #expect(check([0x61, 0x62, 0x63, 0x64, 0x65, 0x66, 0x67, 0x68, 0xFF]) == 8)
        #expect(check([0xC0, 0x80]) == 0)  // overlong
        #expect(check([0xED, 0xA0, 0x80]) == 0)  // a surrogate
        #expect(check([0xF4, 0x90, 0x80, 0x80]) == 0)  // above U+10FFFF
        #expect(check([0x61, 0xE2, 0x82]) == 1)  // cut short
        let line = Array("1\t2\tt\tbad ".utf8) + [0xFE]
        let reason = line.withUnsafeBytes { bytes -> String? in
            do throws(LineProblem) {
                _ = try OriginalEvent.parse(bytes, expectedId: 1, maximumEventBytes: 100)
                return nil
            } catch {
                return error.reason
            }
        }
        #expect(reason == "data is not valid UTF-8 (byte 5 of the data)")
    }
}

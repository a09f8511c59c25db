import ExarCore
import ExarModel
import ExarNet
import Foundation
import NIOCore

/// The code paths the fuzzers drive, shared with the tests that replay the committed corpus and
/// every crash found so far. Each function must return normally for any input; a trap (a failed
/// precondition, an out-of-bounds access, a sanitizer report) is a finding.
public enum FuzzTargets {
    /// The server's input path: framing a byte stream into lines (arriving in chunks whose sizes
    /// the input's first byte picks), parsing each as a client request, and each as a server
    /// message as the client library would.
    public static func protocolInput(_ input: UnsafeRawBufferPointer) {
        guard !input.isEmpty else { return }
        let chunk = Int(input[0]) % 64 + 1
        let stream = UnsafeRawBufferPointer(rebasing: input[1...])
        var decoder = LineFrameDecoder(maximumLineBytes: 256)
        var buffer = ByteBufferAllocator().buffer(capacity: stream.count)
        var offset = 0
        while offset < stream.count {
            let end = min(offset + chunk, stream.count)
            buffer.writeBytes(UnsafeRawBufferPointer(rebasing: stream[offset..<end]))
            offset = end
            while true {
                let line: ByteBuffer?
                do {
                    line = try decoder.nextLine(&buffer)
                } catch {
                    return  // the connection would be closed: nothing more is read
                }
                guard let line else { break }
                check(line)
            }
            buffer.discardReadBytes()
        }
    }

    private static func check(_ line: ByteBuffer) {
        precondition(line.readableBytes <= 257, "a framed line is longer than the limit")
        // The line reader's UTF-8 check agrees with the standard library's.
        let valid = line.withUnsafeReadableBytes { UTF8Validation.isValid($0) }
        precondition(valid == (String(validating: line.readableBytesView, as: UTF8.self) != nil), "UTF-8 checks disagree")
        let parsed = ClientRequest.parse(line)
        precondition(valid || parsed == .failure(ClientRequest.invalidUTF8), "invalid UTF-8 was parsed")
        switch parsed {
        case .success(.publish(let fields)):
            precondition(fields.tags.lowerBound >= 0 && fields.tags.upperBound <= line.readableBytes)
            precondition(fields.data.lowerBound >= 0 && fields.data.upperBound <= line.readableBytes)
            precondition(fields.tags.upperBound <= fields.data.lowerBound)
            let validated = (try? fields.validateTags(in: line)) != nil
            precondition(validated == fields.tagsAreValid, "the parse's tag check and validateTags disagree")
        case .success, .failure:
            break
        }
        _ = try? ServerMessage.parse(line)
    }

    /// The storage read paths on an arbitrary segment file: the inspector's walk (what
    /// `exar-inspect verify` does) and the engine's recovery and reads (what the server does on
    /// open). `folder` is an empty scratch folder; it is left with the files of the run.
    public static func segmentFile(_ input: UnsafeRawBufferPointer, folder: String) {
        let collection = folder + "/c"
        try? FileManager.default.createDirectory(atPath: collection, withIntermediateDirectories: true)
        let path = collection + "/00000000000000000001.log"
        _ = FileManager.default.createFile(atPath: path, contents: Data(input))
        if let inspector = try? SegmentInspector(logPath: path) {
            let summary = inspector.summary()
            if summary.eventCount > 0 {
                inspector.forEachEvent(in: 1...(inspector.baseId + summary.eventCount), tag: nil) { _ in }
            }
        }
        guard let database = try? Database(configuration: DatabaseConfiguration(
            logsPath: folder, defaults: CollectionConfiguration(segmentSize: 4096, indexIntervalBytes: 256)))
        else { return }
        defer { database.close() }
        guard let opened = try? database.collection("c") else { return }
        // What recovery kept must read back completely: ids in order, from 1.
        if let events = try? opened.read(.all) {
            var expected: UInt64 = 1
            for event in events {
                precondition(event.id >= expected, "ids out of order after recovery")
                expected = event.id + 1
            }
        }
        _ = try? opened.read(Query(offset: 2, limit: 3, tag: "t"))
    }
}

#if FUZZING
/// libFuzzer's driver (in the fuzzer runtime `-sanitize=fuzzer` links); the fuzzer executables
/// call it from their `main`.
@_silgen_name("LLVMFuzzerRunDriver")
public func LLVMFuzzerRunDriver(
    _ argc: UnsafeMutablePointer<CInt>,
    _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
    _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt
) -> CInt

extension FuzzTargets {
    /// Runs libFuzzer with `argc`/`argv` and the target's C entry point.
    public static func runFuzzer(
        _ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?,
        _ entry: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt
    ) -> CInt {
        var count = argc
        var arguments = argv
        return LLVMFuzzerRunDriver(&count, &arguments, entry)
    }
}
#endif

extension FuzzTargets {
    /// Without the fuzzer: runs each file named on the command line through `body` once
    /// (replaying a finding), printing `ok: FILE` after each.
    public static func replay(_ body: (UnsafeRawBufferPointer) -> Void) throws {
        for path in CommandLine.arguments.dropFirst() {
            let bytes = try Data(contentsOf: URL(fileURLWithPath: path))
            bytes.withUnsafeBytes { body($0) }
            print("ok: \(path)")
        }
    }
}

import ExarFuzzTargets
import Foundation

/// A scratch folder per process, emptied before each input.
private let scratch = NSTemporaryDirectory() + "exar-fuzz-segment-\(getpid())"

/// One input: a segment file through the inspector, recovery and reads.
@_cdecl("LLVMFuzzerTestOneInput")
public func LLVMFuzzerTestOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    try? FileManager.default.removeItem(atPath: scratch)
    FuzzTargets.segmentFile(UnsafeRawBufferPointer(start: data, count: data == nil ? 0 : size), folder: scratch)
    return 0
}

#if FUZZING
// Built with `-sanitize=fuzzer` (`make fuzz`): SwiftPM links an executable's `main` to
// `<module>_main`, so that symbol starts libFuzzer's driver.
@_cdecl("exar_fuzz_segment_main")
public func fuzzerMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    FuzzTargets.runFuzzer(argc, argv, LLVMFuzzerTestOneInput)
}
#else
/// Without the fuzzer: `exar-fuzz-segment FILE...` replays inputs.
@main enum ReplaySegment {
    static func main() throws {
        try FuzzTargets.replay { _ = LLVMFuzzerTestOneInput($0.baseAddress?.assumingMemoryBound(to: UInt8.self), $0.count) }
        try? FileManager.default.removeItem(atPath: scratch)
    }
}
#endif

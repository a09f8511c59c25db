import ExarFuzzTargets
import Foundation

/// A scratch folder per process, emptied before each input.
private let scratch = NSTemporaryDirectory() + "exar-fuzz-segment-\(getpid())"

private func run(_ input: UnsafeRawBufferPointer) {
    try? FileManager.default.removeItem(atPath: scratch)
    FuzzTargets.segmentFile(input, folder: scratch)
}

#if FUZZING
// Built with `-sanitize=fuzzer` (see `make fuzz`): libFuzzer drives the input. SwiftPM links an
// executable's `main` to `<module>_main`, so that symbol starts libFuzzer's driver.
@_silgen_name("LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(
    _ argc: UnsafeMutablePointer<CInt>,
    _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
    _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt
) -> CInt

@_cdecl("exar_fuzz_segment_main")
public func fuzzerMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    var count = argc
    var arguments = argv
    return LLVMFuzzerRunDriver(&count, &arguments) { data, size in
        LLVMFuzzerTestOneInput(data, size)
    }
}

/// One input (libFuzzer's own `main`, when the linker picks it, calls this).
@_cdecl("LLVMFuzzerTestOneInput")
public func LLVMFuzzerTestOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    guard let data else { return 0 }
    run(UnsafeRawBufferPointer(start: data, count: size))
    return 0
}
#else
/// Without the fuzzer: runs the given input files once (replaying a finding).
@main enum ReplaySegment {
    static func main() throws {
        for path in CommandLine.arguments.dropFirst() {
            let bytes = try Data(contentsOf: URL(fileURLWithPath: path))
            bytes.withUnsafeBytes { run($0) }
            print("ok: \(path)")
        }
        try? FileManager.default.removeItem(atPath: scratch)
    }
}
#endif

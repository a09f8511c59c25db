import ExarFuzzTargets

/// One input: the protocol input path (framing and parsing).
@_cdecl("LLVMFuzzerTestOneInput")
public func LLVMFuzzerTestOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    guard let data else { return 0 }
    FuzzTargets.protocolInput(UnsafeRawBufferPointer(start: data, count: size))
    return 0
}

#if FUZZING
// Built with `-sanitize=fuzzer` (`make fuzz`): SwiftPM links an executable's `main` to
// `<module>_main`, so that symbol starts libFuzzer's driver.
@_cdecl("exar_fuzz_protocol_main")
public func fuzzerMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    FuzzTargets.runFuzzer(argc, argv, LLVMFuzzerTestOneInput)
}
#else
/// Without the fuzzer: `exar-fuzz-protocol FILE...` replays inputs.
@main enum ReplayProtocol {
    static func main() throws {
        try FuzzTargets.replay { _ = LLVMFuzzerTestOneInput($0.baseAddress?.assumingMemoryBound(to: UInt8.self), $0.count) }
    }
}
#endif

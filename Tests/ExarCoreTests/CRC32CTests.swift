@testable import ExarCore
import Testing

/// The batch checksum: the CPU's instruction and the portable tables agree, with the standard
/// check values, over every length and alignment that the 8-byte steps and the tail can meet.
@Suite struct CRC32CTests {
    @Test func knownValues() {
        let check = Array("123456789".utf8)
        #expect(check.withUnsafeBytes { CRC32C.checksum($0) } == 0xE306_9283)
        #expect(check.withUnsafeBytes { CRC32C.softwareUpdate(0, $0) } == 0xE306_9283)
        let zeros = [UInt8](repeating: 0, count: 32)
        #expect(zeros.withUnsafeBytes { CRC32C.checksum($0) } == 0x8A91_36AA)
        let ones = [UInt8](repeating: 0xFF, count: 32)
        #expect(ones.withUnsafeBytes { CRC32C.checksum($0) } == 0x62A8_AB43)
    }

    @Test func bothWaysAgreeOnEveryLengthAndAlignment() {
        var generator = SystemRandomNumberGenerator()
        let bytes = (0..<700).map { _ in UInt8.random(in: 0...255, using: &generator) }
        bytes.withUnsafeBytes { all in
            for start in 0..<9 {
                for length in 0..<(all.count - start) {
                    let slice = UnsafeRawBufferPointer(rebasing: all[start..<(start + length)])
                    #expect(CRC32C.update(7, slice) == CRC32C.softwareUpdate(7, slice))
                }
            }
            // Chained updates equal one update over the whole.
            let whole = CRC32C.checksum(all)
            let split = CRC32C.update(CRC32C.checksum(UnsafeRawBufferPointer(rebasing: all[0..<333])),
                                      UnsafeRawBufferPointer(rebasing: all[333...]))
            #expect(whole == split)
        }
        print("CRC-32C in hardware: \(CRC32C.usesHardware)")
    }
}

import CExarCRC

/// CRC-32C (Castagnoli), the checksum of every batch.
///
/// With the CPU's CRC-32C instruction where there is one (x86-64 SSE 4.2, ARMv8 CRC); else
/// software slicing-by-8, where eight 256-entry tables let the loop consume eight bytes per step.
enum CRC32C {
    /// Whether `update` uses the CPU's instruction.
    static let usesHardware = exar_crc32c_hardware_available() != 0

    /// The reflected Castagnoli polynomial.
    static let polynomial: UInt32 = 0x82F6_3B78

    /// 8 tables of 256 entries, allocated once and never freed (they live as long as the process).
    nonisolated(unsafe) static let tables: UnsafePointer<UInt32> = {
        let table = UnsafeMutablePointer<UInt32>.allocate(capacity: 8 * 256)
        for index in 0..<256 {
            var crc = UInt32(index)
            for _ in 0..<8 {
                crc = (crc & 1) != 0 ? (crc >> 1) ^ polynomial : crc >> 1
            }
            table[index] = crc
        }
        for index in 0..<256 {
            var crc = table[index]
            for slice in 1..<8 {
                crc = table[Int(crc & 0xFF)] ^ (crc >> 8)
                table[slice * 256 + index] = crc
            }
        }
        return UnsafePointer(table)
    }()

    /// Extends `crc` (the value returned for the bytes before) over `bytes`.
    static func update(_ crc: UInt32, _ bytes: UnsafeRawBufferPointer) -> UInt32 {
        guard let base = bytes.baseAddress, !bytes.isEmpty else { return crc }
        if usesHardware { return exar_crc32c_hardware_update(crc, base, bytes.count) }
        return softwareUpdate(crc, bytes)
    }

    /// `update` in portable Swift.
    static func softwareUpdate(_ crc: UInt32, _ bytes: UnsafeRawBufferPointer) -> UInt32 {
        guard let base = bytes.baseAddress, !bytes.isEmpty else { return crc }
        let t = tables
        var c = ~crc
        var offset = 0
        let count = bytes.count
        // Bounds: every load below reads bytes [offset, offset + 8) with offset + 8 <= count.
        while offset &+ 8 <= count {
            let word = base.loadLE(at: offset, as: UInt64.self) ^ UInt64(c)
            c = t[7 &* 256 &+ Int(word & 0xFF)]
                ^ t[6 &* 256 &+ Int((word >> 8) & 0xFF)]
                ^ t[5 &* 256 &+ Int((word >> 16) & 0xFF)]
                ^ t[4 &* 256 &+ Int((word >> 24) & 0xFF)]
                ^ t[3 &* 256 &+ Int((word >> 32) & 0xFF)]
                ^ t[2 &* 256 &+ Int((word >> 40) & 0xFF)]
                ^ t[1 &* 256 &+ Int((word >> 48) & 0xFF)]
                ^ t[Int(word >> 56)]
            offset &+= 8
        }
        while offset < count {
            let byte = base.load(fromByteOffset: offset, as: UInt8.self)
            c = t[Int((c ^ UInt32(byte)) & 0xFF)] ^ (c >> 8)
            offset &+= 1
        }
        return ~c
    }

    /// The checksum of `bytes`.
    static func checksum(_ bytes: UnsafeRawBufferPointer) -> UInt32 {
        update(0, bytes)
    }
}

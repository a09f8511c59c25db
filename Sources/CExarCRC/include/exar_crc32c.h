#ifndef EXAR_CRC32C_H
#define EXAR_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/// Whether this CPU computes CRC-32C in hardware (x86-64 SSE 4.2, or the ARMv8 CRC extension).
int exar_crc32c_hardware_available(void);

/// Extends `crc` (the running value, not inverted) over `length` bytes at `data` with the CPU's
/// CRC-32C instruction. Call only when `exar_crc32c_hardware_available()` returned non-zero.
uint32_t exar_crc32c_hardware_update(uint32_t crc, const void *data, size_t length);

#endif

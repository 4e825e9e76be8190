/* CRC-32C (Castagnoli) for file and record checksums (internal, common). */
#ifndef NINES_CRC32C_H
#define NINES_CRC32C_H
#include <stddef.h>
#include <stdint.h>
/* Extend `crc` (start with 0) over buf[0..len). crc32c("123456789") = 0xE3069283. */
uint32_t crc32c(uint32_t crc, const void *buf, size_t len);
#endif

/* sha256.h - SHA-256 (FIPS 180-4), for API key hashes and policy versions. */
#ifndef ENG_SHA256_H
#define ENG_SHA256_H

#include <stddef.h>
#include <stdint.h>

/* Writes the 64-character lower-case hex digest of data[0..len) and a NUL
 * into hex (65 bytes). */
void sha256_hex(const void *data, size_t len, char hex[65]);

#endif

/* siphash.h - SipHash-2-4 (Aumasson and Bernstein, 2012), a keyed hash:
 * without the 128-bit key its tags can be neither predicted nor made to
 * collide, and it costs a few hundred instructions for a short input where
 * SHA-256 costs ~15,000.  Used where a secret per-process key is enough
 * (the authentication cache, core/auth.c), never for stored hashes. */
#ifndef ENG_SIPHASH_H
#define ENG_SIPHASH_H

#include <stddef.h>
#include <stdint.h>

/* The 64-bit tag of data[0..len) under key k (16 bytes as two little-endian
 * words k[0], k[1]). */
uint64_t siphash24_64(const uint64_t k[2], const void *data, size_t len);
/* The 128-bit variant: tag[0] then tag[1] (the first and second 8 bytes of
 * the specification's output). */
void siphash24_128(const uint64_t k[2], const void *data, size_t len, uint64_t tag[2]);

#endif

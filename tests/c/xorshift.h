/* xorshift.h - the C tests' random numbers: xorshift64, so a test draws
 * the same sequence on every run and machine.  A test may define
 * XORSHIFT_SEED before including this to draw another sequence. */
#ifndef ALLOT_TEST_XORSHIFT_H
#define ALLOT_TEST_XORSHIFT_H

#include <stdint.h>

#ifndef XORSHIFT_SEED
#define XORSHIFT_SEED 0x9e3779b97f4a7c15ull
#endif

static uint64_t seed = XORSHIFT_SEED;

static uint64_t
next(void)
{
    seed ^= seed << 13;
    seed ^= seed >> 7;
    seed ^= seed << 17;
    return seed;
}

#endif

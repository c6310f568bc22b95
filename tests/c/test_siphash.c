/* test_siphash.c - SipHash-2-4 against the reference test vectors (key
 * 00 01 .. 0f, message 00 01 .. len-1), 64- and 128-bit tags, and the
 * key's effect. */
#include <stdint.h>
#include <stdio.h>

#include "check.h"
#include "siphash.h"

static const char *
hex128(const uint64_t t[2])
{
    static char buf[33];
    for (int i = 0; i < 16; i++) {
        snprintf(buf + 2 * i, 3, "%02x", (unsigned)((t[i / 8] >> (8 * (i % 8))) & 0xff));
    }
    return buf;
}

int
main(void)
{
    const uint64_t key[2] = {0x0706050403020100ull, 0x0f0e0d0c0b0a0908ull};
    unsigned char msg[64];
    for (int i = 0; i < 64; i++) {
        msg[i] = (unsigned char)i;
    }
    CHECK(siphash24_64(key, msg, 0) == 0x726fdb47dd0e0e31ull);
    CHECK(siphash24_64(key, msg, 15) == 0xa129ca6149be45e5ull);
    uint64_t t[2];
    siphash24_128(key, msg, 0, t);
    CHECK_STR(hex128(t), "a3817f04ba25a8e66df67214c7550293");
    siphash24_128(key, msg, 63, t);
    CHECK_STR(hex128(t), "5150d1772f50834a503e069a973fbd7c");
    /* Another key, another tag. */
    const uint64_t other[2] = {key[0] ^ 1, key[1]};
    uint64_t u[2];
    siphash24_128(key, msg, 43, t);
    siphash24_128(other, msg, 43, u);
    CHECK(t[0] != u[0] && t[1] != u[1]);
    return check_exit();
}

/* siphash.c - SipHash-2-4, 64- and 128-bit tags, written from the
 * specification's description (two compression rounds per 8-byte word,
 * four finalization rounds). */
#include "siphash.h"

#define ROTL(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))

struct sip {
    uint64_t v0, v1, v2, v3;
};

static void
sip_round(struct sip *s)
{
    s->v0 += s->v1;
    s->v1 = ROTL(s->v1, 13);
    s->v1 ^= s->v0;
    s->v0 = ROTL(s->v0, 32);
    s->v2 += s->v3;
    s->v3 = ROTL(s->v3, 16);
    s->v3 ^= s->v2;
    s->v0 += s->v3;
    s->v3 = ROTL(s->v3, 21);
    s->v3 ^= s->v0;
    s->v2 += s->v1;
    s->v1 = ROTL(s->v1, 17);
    s->v1 ^= s->v2;
    s->v2 = ROTL(s->v2, 32);
}

static void
sip_word(struct sip *s, uint64_t m)
{
    s->v3 ^= m;
    sip_round(s);
    sip_round(s);
    s->v0 ^= m;
}

/* Initializes and absorbs the whole input (with its length byte). */
static void
sip_absorb(struct sip *s, const uint64_t k[2], const void *data, size_t len, int wide)
{
    const unsigned char *p = data;
    s->v0 = k[0] ^ 0x736f6d6570736575ull;
    s->v1 = k[1] ^ 0x646f72616e646f6dull;
    s->v2 = k[0] ^ 0x6c7967656e657261ull;
    s->v3 = k[1] ^ 0x7465646279746573ull;
    if (wide) {
        s->v1 ^= 0xee;
    }
    size_t full = len - len % 8;
    for (size_t i = 0; i < full; i += 8) {
        uint64_t m = 0;
        for (int j = 7; j >= 0; j--) {
            m = (m << 8) | p[i + (size_t)j];
        }
        sip_word(s, m);
    }
    uint64_t last = (uint64_t)(len & 0xff) << 56;
    for (size_t j = 0; j < len % 8; j++) {
        last |= (uint64_t)p[full + j] << (8 * j);
    }
    sip_word(s, last);
}

static uint64_t
sip_final(struct sip *s)
{
    for (int i = 0; i < 4; i++) {
        sip_round(s);
    }
    return s->v0 ^ s->v1 ^ s->v2 ^ s->v3;
}

uint64_t
siphash24_64(const uint64_t k[2], const void *data, size_t len)
{
    struct sip s;
    sip_absorb(&s, k, data, len, 0);
    s.v2 ^= 0xff;
    return sip_final(&s);
}

void
siphash24_128(const uint64_t k[2], const void *data, size_t len, uint64_t tag[2])
{
    struct sip s;
    sip_absorb(&s, k, data, len, 1);
    s.v2 ^= 0xee;
    tag[0] = sip_final(&s);
    s.v1 ^= 0xdd;
    tag[1] = sip_final(&s);
}

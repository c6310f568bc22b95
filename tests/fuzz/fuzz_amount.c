/* fuzz_amount.c - credit amounts (amount.h) from text and from JSON.
 * Whatever parses is within AMOUNT_MILLI_MAX, formats to text that parses
 * back to the same value, and converts to JSON and back unchanged. */
#include <jansson.h>

#include "amount.h"
#include "fuzz_util.h"

static void
check_round_trip(int64_t milli)
{
    char buf[32];
    int64_t again = 0;
    FUZZ_ASSERT(milli >= -AMOUNT_MILLI_MAX && milli <= AMOUNT_MILLI_MAX);
    amount_format(milli, buf, sizeof buf);
    FUZZ_ASSERT(amount_parse(buf, &again, NULL) == 0 && again == milli);
    json_t *j = amount_to_json(milli);
    FUZZ_ASSERT(j != NULL);
    FUZZ_ASSERT(amount_from_json(j, &again, NULL) == 0 && again == milli);
    json_decref(j);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = fuzz_cstr(data, size);
    if (s == NULL) {
        return 0;
    }
    struct eng_error err = {0};
    int64_t milli = 0;
    if (amount_parse(s, &milli, &err) == 0) {
        check_round_trip(milli);
    }
    /* The same text as a JSON number, the way request bodies arrive. */
    json_error_t jerr;
    json_t *v = json_loadb(s, size, JSON_DECODE_ANY, &jerr);
    if (v != NULL) {
        if (amount_from_json(v, &milli, &err) == 0) {
            check_round_trip(milli);
        }
        json_decref(v);
    }
    /* The rounding helpers on non-negative operands taken from the input. */
    if (size >= 24) {
        int64_t a, b, c;
        memcpy(&a, data, 8);
        memcpy(&b, data + 8, 8);
        memcpy(&c, data + 16, 8);
        a = a < 0 ? -(a + 1) : a;
        b = b < 0 ? -(b + 1) : b;
        c = c <= 0 ? 1 : c;
        /* The engine's ranges: an amount times a percentage or minutes. */
        a %= AMOUNT_MILLI_MAX / 1000;
        b %= 1000000;
        int64_t lo = amount_muldiv_floor(a, b, c), hi = amount_muldiv_ceil(a, b, c);
        FUZZ_ASSERT(lo <= hi && hi - lo <= 1);
    }
    free(s);
    return 0;
}

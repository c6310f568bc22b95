/* test_json_flat.c - json_flat_parse (util/json_flat.h) against jansson's
 * json_loadb with the flags of every request body (JSON_REJECT_DUPLICATES):
 * plain flat objects give exactly jansson's value; everything else --
 * valid JSON it does not take (escapes, UTF-8, reals, nesting, long
 * integers) and invalid text (duplicates, trailing bytes, leading zeros,
 * cut short) -- gives NULL, so that jansson decides; and 20,000 random
 * texts built from flat-object tokens, many of them broken, never give a
 * value jansson would not. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "json_flat.h"

/* 1 when json_flat_parse takes the text and gives jansson's value, 0 when
 * it leaves it to jansson, -1 when it gives a value jansson would not. */
static int
compare(const char *text, size_t len)
{
    json_t *flat = json_flat_parse(text, len);
    if (flat == NULL) {
        return 0;
    }
    json_t *want = json_loadb(text, len, JSON_REJECT_DUPLICATES, NULL);
    int ok = want != NULL && json_is_object(want) && json_equal(flat, want);
    if (!ok) {
        printf("# differs: %.*s\n", (int)len, text);
    }
    json_decref(flat);
    json_decref(want);
    return ok ? 1 : -1;
}

static int
cmp(const char *text)
{
    return compare(text, strlen(text));
}

#define XORSHIFT_SEED 0x2545f4914f6cdd1dull
#include "xorshift.h"

int
main(void)
{
    static const char *const taken[] = {
        "{}",
        " \t\r\n{ }\n",
        "{\"resource_id\":\"res_1\",\"user_id\":\"usr_2\",\"start\":\"2027-01-04T09:00:00Z\","
        "\"end\":\"2027-01-04T10:00:00Z\",\"payment_method\":\"credits\"}",
        "{ \"a\" : \"\" , \"n\" : -12 , \"z\" : 0, \"t\":true,\"f\":false,\"x\":null }",
        "{\"max\":999999999999999999,\"min\":-999999999999999999,\"m0\":-0}",
        "{\"s\":\" !#$%&'()*+,-./0123456789:;<=>?@AZ[]^_`az{|}~\"}",
    };
    for (size_t i = 0; i < sizeof taken / sizeof taken[0]; i++) {
        CHECK_INT(cmp(taken[i]), 1);
    }
    static const char *const left[] = {
        "",
        "[]",
        "\"{}\"",
        "{\"a\":1,\"a\":2}",              /* duplicate: jansson's error */
        "{\"a\":1234567890123456789}",    /* 19 digits */
        "{\"a\":1.5}",
        "{\"a\":1e3}",
        "{\"a\":1E3}",
        "{\"a\":01}",
        "{\"a\":-}",
        "{\"a\":{}}",
        "{\"a\":[]}",
        "{\"a\":\"\\n\"}",
        "{\"a\":\"\xc3\xa9\"}",
        "{\"a\":\"\x7f\"}",
        "{\"a\":\"\x01\"}",
        "{\"a\":1,}",
        "{,}",
        "{\"a\" 1}",
        "{\"a\":1 \"b\":2}",
        "{\"a\":1} {}",
        "{\"a\":1}x",
        "{\"a\":nul}",
        "{\"a\":nullx}",
        "{\"a\":truex}",
        "{\"a\":1",
        "{\"a\":\"b",
        "{\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\":1}",
        "{a:1}",
        "{\"a\":NaN}",
    };
    for (size_t i = 0; i < sizeof left / sizeof left[0]; i++) {
        CHECK_INT(cmp(left[i]), 0);
    }
    /* A key or value containing a NUL byte is not taken either. */
    static const char nul[] = "{\"a\":\"x\0y\"}";
    CHECK_INT(compare(nul, sizeof nul - 1), 0);

    /* Random texts from the tokens of flat objects, most well formed,
     * some with a token dropped, doubled or swapped. */
    static const char *const keys[] = {"\"a\"", "\"b\"", "\"start\"", "\"id\"", "\"\""};
    static const char *const values[] = {
        "\"x\"", "\"\"", "1", "-7", "0", "123456789012345678", "true", "false", "null",
        "1.5", "\"\\u00e9\"", "[]", "{}", "00", "-", "1234567890123456789", "\"a b\""};
    static const char *const blanks[] = {"", " ", "\n", "\t ", "\r\n"};
    int bad = 0, taken_n = 0;
    for (int i = 0; i < 20000; i++) {
        char text[512];
        size_t n = 0;
        int members = (int)(next() % 5);
        int broken = next() % 4 == 0 ? (int)(next() % 6) : -1;
        n += (size_t)snprintf(text + n, sizeof text - n, "%s{", blanks[next() % 5]);
        for (int m = 0; m < members; m++) {
            const char *parts[4] = {m > 0 ? "," : "", keys[next() % 5], ":",
                                    values[next() % (sizeof values / sizeof values[0])]};
            for (int k = 0; k < 4; k++) {
                if (broken == k && m == members - 1) {
                    continue; /* a token dropped */
                }
                n += (size_t)snprintf(text + n, sizeof text - n, "%s%s", blanks[next() % 5],
                                      parts[k]);
            }
        }
        n += (size_t)snprintf(text + n, sizeof text - n, "%s%s%s", blanks[next() % 5],
                              broken == 4 ? "" : "}", broken == 5 ? "}" : blanks[next() % 5]);
        int r = compare(text, n);
        bad += r < 0;
        taken_n += r > 0;
    }
    CHECK_INT(bad, 0);
    CHECK(taken_n > 1000); /* the fast path is actually met */
    return check_exit();
}

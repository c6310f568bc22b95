/* test_json_out.c - json_out renders exactly what jansson's json_dumps
 * renders with the flags of every HTTP answer (JSON_COMPACT |
 * JSON_ENCODE_ANY | JSON_REAL_PRECISION(15)): chosen values (escapes,
 * UTF-8, integer and real edges) and 3,000 random trees, including a
 * buffer too small for the text.  And json_buf (answers written as text)
 * writes what json_out renders of the value the tree path builds: amounts
 * as amount_to_json, instants as json_time, ids as id_json, strings as
 * json_string (refusing what it refuses), from a buffer that starts small
 * on the stack and grows. */
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "amount.h"
#include "check.h"
#include "json_out.h"
#include "timeutil.h"
#include "values.h"

#define FLAGS (JSON_COMPACT | JSON_ENCODE_ANY | JSON_REAL_PRECISION(15))

/* Whether json_out and json_dumps agree on v (v is taken). */
static int
same(json_t *v)
{
    char *want = json_dumps(v, FLAGS);
    char small[16], big[1 << 16];
    size_t need = json_out(v, small, sizeof small);
    size_t got = json_out(v, big, sizeof big);
    int ok = want != NULL && need == strlen(want) && got == need && got < sizeof big &&
             memcmp(big, want, got) == 0 &&
             memcmp(small, want, need < sizeof small ? need : sizeof small) == 0;
    if (!ok) {
        printf("# want %s\n# got  %.*s\n", want ? want : "(null)", (int)(got < sizeof big ? got : 0),
               big);
    }
    free(want);
    json_decref(v);
    return ok;
}

#include "xorshift.h"

/* A random string: plain letters, escapes, control bytes, UTF-8. */
static json_t *
random_string(void)
{
    static const char *const pieces[] = {"a", "Z", "9", " ", "\"", "\\", "/", "\n", "\t", "\r",
                                         "\b", "\f", "\x01", "\x1f", "\x7f", "é", "€", "😀",
                                         "bkg_12", "lot_", "\xe2\x80\xa8"};
    char buf[256];
    size_t len = 0;
    int n = (int)(next() % 12);
    for (int i = 0; i < n; i++) {
        const char *p = pieces[next() % (sizeof pieces / sizeof pieces[0])];
        memcpy(buf + len, p, strlen(p));
        len += strlen(p);
    }
    if (next() % 7 == 0) {
        buf[len++] = '\0'; /* an embedded NUL */
    }
    return json_stringn(buf, len);
}

static json_t *
random_value(int depth)
{
    switch (next() % (depth > 4 ? 5 : 7)) {
    case 0: return json_integer((json_int_t)(next() % 2000000) - 1000000);
    case 1: {
        static const double reals[] = {0.5, 1.5, -2.25, 0.1, 0.001, 1e-7, 1e20, 1e21, 2.5e-300,
                                       1e300, 123456789012.345, 1.0, -0.0, 0.0, 3.0e15, 1e16};
        if (next() % 2 == 0) {
            return json_real(reals[next() % (sizeof reals / sizeof reals[0])]);
        }
        /* Not in [10^12, 9 * 10^12): there json_out writes a real that is
         * an amount's double exactly, where jansson rounds to 15 digits
         * (test_amounts_past_1e12 checks that band). */
        double r;
        do {
            r = (double)(int64_t)next() / (double)(1 + next() % 100000);
        } while (fabs(r) >= 1e12 && fabs(r) < JSON_OUT_MILLI_EXACT);
        return json_real(r);
    }
    case 2: return random_string();
    case 3: return next() % 3 == 0 ? json_null() : json_boolean(next() % 2);
    case 4: return json_integer((json_int_t)next());
    case 5: {
        json_t *a = json_array();
        int n = (int)(next() % 5);
        for (int i = 0; i < n; i++) {
            json_array_append_new(a, random_value(depth + 1));
        }
        return a;
    }
    default: {
        json_t *o = json_object();
        int n = (int)(next() % 5);
        for (int i = 0; i < n; i++) {
            json_t *k = random_string();
            json_object_setn_new(o, json_string_value(k), json_string_length(k),
                                 random_value(depth + 1));
            json_decref(k);
        }
        return o;
    }
    }
}

/* Whether json_buf's writer agrees with json_out of the tree value v
 * (taken; NULL: the tree path refuses, so the writer must fail too). */
static int
buf_same(json_t *v, struct json_buf *b)
{
    int ok;
    if (v == NULL) {
        ok = b->failed;
    } else {
        char want[512];
        size_t need = json_out(v, want, sizeof want);
        ok = !b->failed && need > 0 && need <= sizeof want && need == b->len &&
             memcmp(b->data, want, need) == 0;
        if (!ok) {
            printf("# want %.*s\n# got  %.*s\n", (int)need, want, (int)b->len, b->data);
        }
    }
    json_decref(v);
    json_buf_reset(b);
    return ok;
}

static void
buf_checks(void)
{
    char stack[8];
    struct json_buf b;
    json_buf_init(&b, stack, sizeof stack);
    int amounts = 0;
    const int64_t edges[] = {0, 1, -1, 999, 1000, -1000, 1500, 10, 100, 120, 1001, 999999999999999,
                             -999999999999999, INT64_C(1000000000000000),
                             INT64_C(1000000000000001), (INT64_C(1) << 53) + 1, INT64_MAX,
                             INT64_MIN + 1};
    for (size_t i = 0; i < sizeof edges / sizeof edges[0]; i++) {
        json_buf_amount(&b, edges[i]);
        amounts += buf_same(amount_to_json(edges[i]), &b);
    }
    for (int i = 0; i < 20000; i++) {
        int64_t m = (int64_t)(next() >> (next() % 63));
        m = i % 2 ? -m : m;
        json_buf_amount(&b, m);
        amounts += buf_same(amount_to_json(m), &b);
    }
    CHECK_INT(amounts, (int)(sizeof edges / sizeof edges[0]) + 20000);
    int strings = 0;
    for (int i = 0; i < 3000; i++) {
        json_t *r = random_string();
        /* A C string: up to an embedded NUL, and sometimes cut inside a
         * UTF-8 character (json_string refuses that, so must the writer). */
        char text[256];
        size_t n = strlen(json_string_value(r));
        n = i % 5 == 0 && n > 0 ? n - 1 : n;
        memcpy(text, json_string_value(r), n);
        text[n] = '\0';
        json_decref(r);
        json_buf_string(&b, text);
        strings += buf_same(json_string(text), &b);
    }
    CHECK_INT(strings, 3000);
    const int64_t times[] = {0, 1767225600, -62135596800, 253402300799, TIME_NEVER, 1};
    for (size_t i = 0; i < sizeof times / sizeof times[0]; i++) {
        json_buf_time(&b, times[i]);
        CHECK(buf_same(json_time(times[i]), &b));
    }
    json_buf_id(&b, "bkg", 1234567);
    CHECK(buf_same(id_json("bkg", 1234567), &b));
    /* A text that grows from the stack onto the heap keeps every byte. */
    json_t *list = json_array();
    JSON_BUF_LIT(&b, "[");
    for (int i = 0; i < 300; i++) {
        if (i > 0) {
            JSON_BUF_LIT(&b, ",");
        }
        json_t *v = random_value(0);
        json_buf_value(&b, v);
        json_array_append_new(list, v);
    }
    JSON_BUF_LIT(&b, "]");
    CHECK(b.heap != NULL);
    char *want = json_dumps(list, FLAGS);
    const char *got = json_buf_cstr(&b);
    CHECK(want != NULL && got != NULL && strcmp(got, want) == 0);
    free(want);
    json_decref(list);
    /* A failure sticks until the buffer is reset. */
    json_buf_reset(&b);
    json_buf_string(&b, "\xff");
    JSON_BUF_LIT(&b, "x");
    CHECK(b.failed && json_buf_cstr(&b) == NULL);
    json_buf_reset(&b);
    CHECK(!b.failed && b.len == 0);
    json_buf_free(&b);
}

/* Totals past 10^12 (sums of amounts): written as their exact decimal, as
 * json_buf_amount writes them, and read back to the same double; jansson's
 * 15 digits would round them (1999999999999.999 -> 2000000000000.0). */
static void
test_amounts_past_1e12(void)
{
    char got[64], want[64];
    json_t *total = json_real(1999999999999.999);
    size_t n = json_out(total, got, sizeof got);
    json_decref(total);
    CHECK(n > 0 && n < sizeof got);
    got[n < sizeof got ? n : 0] = '\0';
    CHECK_STR(got, "1999999999999.999");
    int bad = 0;
    for (int i = 0; i < 20000; i++) {
        int64_t m = (int64_t)(1000000000000000u + next() % 7796093022208000u);
        if (i % 2) {
            m = -m;
        }
        json_t *v = amount_to_json(m);
        n = json_out(v, got, sizeof got);
        got[n < sizeof got ? n : 0] = '\0';
        amount_format(m, want, sizeof want);
        if (strchr(want, '.') == NULL) {
            strcat(want, ".0"); /* a whole amount is a json integer: not here */
        }
        struct json_buf b;
        char stack[64];
        json_buf_init(&b, stack, sizeof stack);
        json_buf_amount(&b, m);
        bool whole = m % 1000 == 0;
        if (whole ? json_integer_value(v) != m / 1000
                  : (strcmp(got, want) != 0 || strtod(got, NULL) != json_real_value(v) ||
                     b.len != n || memcmp(b.data, got, n) != 0)) {
            if (bad++ < 3) {
                printf("# %lld: got %s, want %s\n", (long long)m, got, want);
            }
        }
        json_buf_free(&b);
        json_decref(v);
    }
    CHECK_INT(bad, 0);
}

int
main(void)
{
    test_amounts_past_1e12();
    CHECK(same(json_pack("{s:s, s:i, s:f, s:b, s:n, s:[], s:{}}", "id", "bkg_1", "n", 42,
                         "amount", 1.5, "ok", 1, "none", "list", "obj")));
    CHECK(same(json_string("quote \" backslash \\ slash / tab \t nl \n cr \r bs \b ff \f")));
    static const char controls[] = "nul \0 one \x01 us \x1f del \x7f";
    CHECK(same(json_stringn(controls, sizeof controls - 1)));
    CHECK(same(json_string("Zürich € 😀 \xe2\x80\xa8")));
    CHECK(same(json_integer(INT64_MIN)));
    CHECK(same(json_integer(INT64_MAX)));
    CHECK(same(json_integer(0)));
    const double reals[] = {0.0, -0.0, 1.0, 100.0, 1e15, 1e16, 1e17, 1e20, 1e21, 1e100, 1e-5,
                            1e-4, 0.1, 0.3, 2.5, 1234.567, 999999999999.999, DBL_MAX, DBL_MIN,
                            5e-324, -1e-300, 123456789012345678.0};
    for (size_t i = 0; i < sizeof reals / sizeof reals[0]; i++) {
        CHECK(same(json_real(reals[i])));
    }
    /* Amounts (thousandths) take a path of their own (put_real_milli):
     * every size of decimal, signs, trailing zeros, the edges of 10^12, and
     * values near but not on a thousandth. */
    const double edges[] = {0.001, -0.001, 0.01, 0.05, 0.999, 1.001, 1.01, 1.1, 10.0, -10.5,
                            999999999999.0, -999999999999.999, 1e12, -1e12, 1e12 - 0.001,
                            0.0015, 1.0005, 1e-3 * 0.5, 9e12, -9e12, 9.5e12, 8796093022208.0};
    for (size_t i = 0; i < sizeof edges / sizeof edges[0]; i++) {
        CHECK(same(json_real(edges[i])));
    }
    int amounts = 0;
    for (int i = 0; i < 20000; i++) {
        int64_t m = (int64_t)(next() % 1000000000000000u) >> (next() % 50);
        double v = (double)(i % 2 ? -m : m) / 1000.0;
        amounts += same(json_real(i % 3 == 2 ? nextafter(v, 1e300) : v));
    }
    CHECK_INT(amounts, 20000);
    CHECK(same(json_array()));
    CHECK(same(json_object()));
    /* What JSON cannot hold is refused, not rendered. */
    json_t *nan = json_real(NAN); /* jansson itself refuses a NaN real */
    CHECK(nan == NULL || json_out(nan, (char[8]){0}, 8) == 0);
    json_decref(nan);
    int agreed = 0;
    for (int i = 0; i < 3000; i++) {
        agreed += same(random_value(0));
    }
    CHECK_INT(agreed, 3000);
    buf_checks();
    return check_exit();
}

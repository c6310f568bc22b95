/* test_amount.c - exact fixed-point amounts: parsing, JSON, formatting,
 * rounding helpers, and the CSV writer that prints them. */
#include <stdlib.h>

#include "amount.h"
#include "check.h"
#include "csv.h"

static int64_t
parse(const char *s, int *rc)
{
    int64_t v = 0;
    *rc = amount_parse(s, &v, NULL);
    return v;
}

static int64_t
from_json(json_t *v, int *rc)
{
    int64_t milli = 0;
    *rc = amount_from_json(v, &milli, NULL);
    json_decref(v);
    return milli;
}

static void
test_parse(void)
{
    int rc;
    CHECK_INT(parse("12", &rc), 12000);
    CHECK_INT(rc, 0);
    CHECK_INT(parse("1.5", &rc), 1500);
    CHECK_INT(parse("0.001", &rc), 1);
    CHECK_INT(parse("-0.25", &rc), -250);
    CHECK_INT(parse("1000000000000", &rc), 1000000000000000);
    CHECK_INT(rc, 0);
    const char *bad[] = {"1.2345", "", "-", "1.", ".5", "1e3", "abc", "1.5x", "1000000000000.001",
                         "99999999999999", " 1", NULL};
    for (int i = 0; bad[i] != NULL; i++) {
        parse(bad[i], &rc);
        CHECK_INT(rc, ENG_EINVAL);
    }
}

static void
test_json(void)
{
    int rc;
    CHECK_INT(from_json(json_integer(7), &rc), 7000);
    CHECK_INT(from_json(json_real(1.5), &rc), 1500);
    CHECK_INT(from_json(json_real(0.1), &rc), 100);
    CHECK_INT(from_json(json_real(0.3), &rc), 300);
    CHECK_INT(from_json(json_real(999999999999.999), &rc), 999999999999999);
    CHECK_INT(rc, 0);
    from_json(json_real(1.2345), &rc);
    CHECK_INT(rc, ENG_EINVAL);
    from_json(json_real(1e308), &rc);
    CHECK_INT(rc, ENG_EINVAL);
    from_json(json_integer(2000000000000), &rc);
    CHECK_INT(rc, ENG_EINVAL);
    from_json(json_string("1"), &rc);
    CHECK_INT(rc, ENG_EINVAL);
    /* Every 3-decimal value survives JSON -> milli -> JSON text -> milli. */
    for (int64_t m = -5000; m <= 5000; m += 7) {
        json_t *j = amount_to_json(m);
        char *text = json_dumps(j, JSON_ENCODE_ANY | JSON_REAL_PRECISION(15));
        json_t *back = json_loads(text, JSON_DECODE_ANY, NULL);
        int64_t again = from_json(back, &rc);
        if (again != m || rc != 0) {
            CHECK_INT(again, m);
        }
        free(text);
        json_decref(j);
    }
    /* The real is the double strtod gives for the decimal text, small and
     * large, both signs (amount_to_json divides instead of parsing). */
    int same = 0, tried = 0;
    for (int64_t m = 1; m < AMOUNT_MILLI_MAX; m = m * 3 + 7) {
        for (int sign = -1; sign <= 1; sign += 2) {
            int64_t v = sign * m;
            if (v % 1000 == 0) {
                continue;
            }
            char buf[32];
            amount_format(v, buf, sizeof buf);
            json_t *j = amount_to_json(v);
            tried++;
            same += json_is_real(j) && json_real_value(j) == strtod(buf, NULL);
            json_decref(j);
        }
    }
    CHECK_INT(same, tried);
    CHECK(1);
}

static void
test_format(void)
{
    char buf[32];
    amount_format(1500, buf, sizeof buf);
    CHECK_STR(buf, "1.5");
    amount_format(2000, buf, sizeof buf);
    CHECK_STR(buf, "2");
    amount_format(-250, buf, sizeof buf);
    CHECK_STR(buf, "-0.25");
    amount_format(1, buf, sizeof buf);
    CHECK_STR(buf, "0.001");
    amount_format(1000000000000000, buf, sizeof buf);
    CHECK_STR(buf, "1000000000000");
    CHECK_INT(amount_muldiv_floor(1001, 50000, 100000), 500);
    CHECK_INT(amount_muldiv_ceil(1000, 20, 60), 334);
    CHECK_INT(amount_muldiv_floor(INT64_C(1000000000000000), 1000, 1000), 1000000000000000);
}

static void
test_csv(void)
{
    struct csv c = {0};
    csv_field(&c, "plain");
    csv_field(&c, "with,comma");
    csv_field(&c, "say \"hi\"");
    csv_end_row(&c);
    json_t *half = json_real(0.5);
    csv_json(&c, half);
    csv_field(&c, "line\nbreak");
    csv_end_row(&c);
    json_decref(half);
    char *text = csv_take(&c);
    CHECK_STR(text, "plain,\"with,comma\",\"say \"\"hi\"\"\"\r\n0.5,\"line\nbreak\"\r\n");
    free(text);
}

int
main(void)
{
    test_parse();
    test_json();
    test_format();
    test_csv();
    return check_exit();
}

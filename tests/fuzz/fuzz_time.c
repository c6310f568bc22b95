/* fuzz_time.c - RFC 3339 instants, dates and months (timeutil.h).
 * Whatever the text: no crash or undefined behaviour, and whatever parses
 * formats back to text that parses to the same value. */
#include "fuzz_util.h"
#include "timeutil.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = fuzz_cstr(data, size);
    if (s == NULL) {
        return 0;
    }
    struct eng_error err = {0};
    int64_t t = 0, t2 = 0;
    char buf[64];
    if (time_parse_rfc3339(s, &t, &err) == 0) {
        time_format_rfc3339(t, buf, sizeof buf);
        FUZZ_ASSERT(time_parse_rfc3339(buf, &t2, &err) == 0);
        FUZZ_ASSERT(t == t2);
    }
    struct civil_date d, d2;
    if (date_parse(s, &d, &err) == 0) {
        FUZZ_ASSERT(date_valid(d));
        date_format(d, buf, sizeof buf);
        FUZZ_ASSERT(date_parse(buf, &d2, &err) == 0 && date_cmp(d, d2) == 0);
        FUZZ_ASSERT(date_cmp(date_from_days(date_to_days(d)), d) == 0);
        /* Period arithmetic on any valid date stays in range. */
        struct civil_date m = period_start_date(PERIOD_MONTH, d);
        FUZZ_ASSERT(date_valid(m) && date_cmp(m, d) <= 0);
        (void)date_add_months(d, (int)(size % 25) - 12);
    }
    if (month_parse(s, &d, &err) == 0) {
        month_format(d, buf, sizeof buf);
        FUZZ_ASSERT(month_parse(buf, &d2, &err) == 0 && date_cmp(d, d2) == 0);
    }
    free(s);
    return 0;
}

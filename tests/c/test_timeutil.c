/* test_timeutil.c - civil date arithmetic, periods, parsing and formatting,
 * and zone conversions through the system's tz database (tzif.c),
 * including the DST days that make a "day" 23, 23.5, 24.5 or 25 hours
 * long, checked against glibc's own reading of the same files. */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "check.h"
#include "timeutil.h"
#include "tzif.h"

/* A compact date literal for the checks below. */
static struct civil_date
ymd(int y, int m, int d)
{
    return (struct civil_date){y, m, d};
}

static int
same_date(struct civil_date a, struct civil_date b)
{
    return date_cmp(a, b) == 0;
}

/* The date as text, so a failing CHECK_STR shows what came out. */
static const char *
fmt_date(struct civil_date d)
{
    static char buf[4][32];
    static int next;
    char *b = buf[next++ % 4];
    date_format(d, b, sizeof buf[0]);
    return b;
}

/* time_parse_rfc3339 result, or a sentinel on failure. */
static int64_t
parse_time(const char *s)
{
    int64_t t = 0;
    struct eng_error err;
    return time_parse_rfc3339(s, &t, &err) == 0 ? t : INT64_MIN;
}

static int64_t
midnight(const char *zone, int y, int m, int d)
{
    int64_t t = 0;
    struct eng_error err;
    return tz_local_midnight(zone, ymd(y, m, d), &t, &err) == 0 ? t : INT64_MIN;
}

static void
test_rfc3339_parse(void)
{
    struct eng_error err;
    int64_t t = 0;

    CHECK_INT(parse_time("2026-01-15T10:00:00Z"), 1768471200);
    CHECK_INT(parse_time("2026-01-15T11:00:00+01:00"), 1768471200);
    CHECK_INT(parse_time("2026-01-15T05:30:00-04:30"), 1768471200);
    CHECK_INT(parse_time("2026-01-15t10:00:00z"), 1768471200);
    CHECK_INT(parse_time("2026-01-15T10:00:00-00:00"), 1768471200);
    CHECK_INT(parse_time("2026-01-15T10:00:00.000Z"), 1768471200);
    CHECK_INT(parse_time("2026-01-15T11:00:00.0+01:00"), 1768471200);
    CHECK_INT(parse_time("1970-01-01T00:00:00Z"), 0);
    CHECK_INT(parse_time("1969-12-31T23:59:59Z"), -1);
    CHECK_INT(parse_time("2000-02-29T00:00:00Z"), 951782400);
    CHECK_INT(parse_time("2026-01-01T00:30:00+23:59"), 1767227400 - 86340);
    CHECK_INT(parse_time("0001-01-01T00:00:00Z"), -62135596800LL);
    CHECK_INT(parse_time("9999-12-31T23:59:59Z"), 253402300799LL);

    /* A non-zero fraction has its own message; the caller gets no value. */
    t = 42;
    CHECK_INT(time_parse_rfc3339("2026-01-15T10:00:00.5Z", &t, &err), ENG_EINVAL);
    CHECK_STR(err.msg, "sub-second times are not supported");
    CHECK_INT(t, 42);
    CHECK_INT(time_parse_rfc3339("2026-01-15T10:00:00.0001Z", &t, &err), ENG_EINVAL);
    CHECK_STR(err.msg, "sub-second times are not supported");

    CHECK_INT(time_parse_rfc3339("2026-01-15T10:00:00", &t, &err), ENG_EINVAL);
    CHECK(strstr(err.msg, "YYYY-MM-DDTHH:MM:SSZ") != NULL);
    CHECK(strstr(err.msg, "+HH:MM") != NULL);
    CHECK_INT(time_parse_rfc3339("2026-02-30T10:00:00Z", &t, &err), ENG_EINVAL);
    CHECK(strstr(err.msg, "out of range") != NULL);
    CHECK(strstr(err.msg, "RFC 3339") != NULL);
    CHECK_INT(time_parse_rfc3339(NULL, &t, &err), ENG_EINVAL);

    static const char *const bad[] = {
        "",
        "2026-01-15",
        "2026-01-15T10:00Z",
        "2026-01-15 10:00:00Z",
        "2026-1-15T10:00:00Z",
        "2026-01-15T1:00:00Z",
        " 2026-01-15T10:00:00Z",
        "+2026-01-15T10:00:00Z",
        "2026-01-15T10:00:00Z ",
        "2026-01-15T10:00:00Zx",
        "2026-01-15T10:00:00ZZ",
        "2026-01-15T10:00:00+0100",
        "2026-01-15T10:00:00+01",
        "2026-01-15T10:00:00+01:00:00",
        "2026-01-15T10:00:00+24:00",
        "2026-01-15T10:00:00+01:60",
        "2026-01-15T10:00:00.Z",
        "2026-01-15T10:00:00.000",
        "2026-01-15T10:00:00,000Z",
        "2026-01-15T24:00:00Z",
        "2026-01-15T10:60:00Z",
        "2026-01-15T10:00:60Z",
        "2026-13-15T10:00:00Z",
        "2026-00-15T10:00:00Z",
        "2026-01-00T10:00:00Z",
        "2025-02-29T10:00:00Z",
        "0000-01-01T00:00:00Z",
        "0001-01-01T00:00:00+00:01",
        "9999-12-31T23:59:59-00:01",
        "２０２６-01-15T10:00:00Z",
    };
    int accepted = 0;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (time_parse_rfc3339(bad[i], &t, &err) != ENG_EINVAL) {
            printf("# accepted bad time \"%s\"\n", bad[i]);
            accepted++;
        }
    }
    CHECK_INT(accepted, 0);
}

static void
test_rfc3339_format(void)
{
    char buf[32];

    time_format_rfc3339(0, buf, sizeof buf);
    CHECK_STR(buf, "1970-01-01T00:00:00Z");
    time_format_rfc3339(-1, buf, sizeof buf);
    CHECK_STR(buf, "1969-12-31T23:59:59Z");
    time_format_rfc3339(1768471200, buf, sizeof buf);
    CHECK_STR(buf, "2026-01-15T10:00:00Z");
    time_format_rfc3339(951782400 + 86399, buf, sizeof buf);
    CHECK_STR(buf, "2000-02-29T23:59:59Z");
    /* Out-of-range instants saturate; TIME_NEVER reads as the last second. */
    time_format_rfc3339(TIME_NEVER, buf, sizeof buf);
    CHECK_STR(buf, "9999-12-31T23:59:59Z");
    time_format_rfc3339(INT64_MIN, buf, sizeof buf);
    CHECK_STR(buf, "0001-01-01T00:00:00Z");
    /* 21 bytes is enough; a shorter buffer is truncated, never overrun. */
    char small[21];
    time_format_rfc3339(1768471200, small, sizeof small);
    CHECK_STR(small, "2026-01-15T10:00:00Z");
    memset(buf, 'x', sizeof buf);
    time_format_rfc3339(1768471200, buf, 5);
    CHECK_STR(buf, "2026");
    CHECK(buf[5] == 'x');

    /* Round trips across the whole supported range, including pre-epoch
     * and pre-Gregorian-reform instants. */
    int bad = 0;
    for (int64_t t = -62135596800LL; t <= 253402300799LL; t += 7777777LL * 13 + 11) {
        char s[32];
        time_format_rfc3339(t, s, sizeof s);
        if (parse_time(s) != t) {
            printf("# round trip failed for %" PRId64 " (%s)\n", t, s);
            bad++;
        }
    }
    CHECK_INT(bad, 0);
}

static void
test_date_month_parse(void)
{
    struct civil_date d = {0, 0, 0};
    struct eng_error err;
    char buf[16];

    CHECK_INT(date_parse("2026-01-05", &d, &err), 0);
    CHECK(same_date(d, ymd(2026, 1, 5)));
    CHECK_INT(date_parse("2024-02-29", &d, &err), 0);
    CHECK_INT(date_parse("0001-01-01", &d, &err), 0);
    CHECK_INT(date_parse("9999-12-31", &d, &err), 0);
    CHECK_INT(date_parse("2026-1-5", &d, &err), ENG_EINVAL);
    CHECK(strstr(err.msg, "YYYY-MM-DD") != NULL);
    CHECK_INT(date_parse("2026-02-29", &d, &err), ENG_EINVAL);
    CHECK(strstr(err.msg, "2026-02-29") != NULL);
    CHECK_INT(date_parse("2026-01-05x", &d, &err), ENG_EINVAL);
    CHECK_INT(date_parse("2026-01-0", &d, &err), ENG_EINVAL);
    CHECK_INT(date_parse("0000-01-01", &d, &err), ENG_EINVAL);
    CHECK_INT(date_parse("2026-13-01", &d, &err), ENG_EINVAL);
    CHECK_INT(date_parse("2026-04-31", &d, &err), ENG_EINVAL);
    CHECK_INT(date_parse("2026/01/05", &d, &err), ENG_EINVAL);
    CHECK_INT(date_parse("+026-01-05", &d, &err), ENG_EINVAL);
    CHECK_INT(date_parse("", &d, &err), ENG_EINVAL);
    CHECK_INT(date_parse(NULL, &d, &err), ENG_EINVAL);
    CHECK(same_date(d, ymd(9999, 12, 31))); /* failures leave *out alone */

    CHECK_INT(month_parse("2026-03", &d, &err), 0);
    CHECK(same_date(d, ymd(2026, 3, 1)));
    CHECK_INT(month_parse("2026-3", &d, &err), ENG_EINVAL);
    CHECK(strstr(err.msg, "YYYY-MM") != NULL);
    CHECK_INT(month_parse("2026-00", &d, &err), ENG_EINVAL);
    CHECK_INT(month_parse("2026-13", &d, &err), ENG_EINVAL);
    CHECK_INT(month_parse("2026-03-01", &d, &err), ENG_EINVAL);
    CHECK_INT(month_parse("0000-01", &d, &err), ENG_EINVAL);
    CHECK_INT(month_parse(NULL, &d, &err), ENG_EINVAL);

    date_format(ymd(2026, 1, 5), buf, sizeof buf);
    CHECK_STR(buf, "2026-01-05");
    date_format(ymd(1, 1, 1), buf, sizeof buf);
    CHECK_STR(buf, "0001-01-01");
    month_format(ymd(2026, 3, 17), buf, sizeof buf);
    CHECK_STR(buf, "2026-03");
    char small[8];
    month_format(ymd(2026, 11, 1), small, sizeof small);
    CHECK_STR(small, "2026-11");
}

static void
test_civil_days(void)
{
    CHECK_INT(date_to_days(ymd(1970, 1, 1)), 0);
    CHECK_INT(date_to_days(ymd(1969, 12, 31)), -1);
    CHECK_INT(date_to_days(ymd(2000, 3, 1)), 11017);
    CHECK_INT(date_to_days(ymd(1, 1, 1)), -719162);
    CHECK_INT(date_to_days(ymd(9999, 12, 31)), 2932896);
    CHECK_STR(fmt_date(date_from_days(-719162)), "0001-01-01");
    CHECK_STR(fmt_date(date_from_days(11016)), "2000-02-29");
    CHECK_STR(fmt_date(date_from_days(2932896)), "9999-12-31");

    /* Every day of 0001..9999: from_days inverts to_days and successive
     * days are successive valid dates. */
    int bad = 0;
    struct civil_date prev = ymd(0, 12, 31);
    for (int64_t n = -719162; n <= 2932896; n++) {
        struct civil_date d = date_from_days(n);
        struct civil_date expect = prev;
        expect.day++;
        if (!date_valid(expect)) {
            expect = prev.month == 12 ? ymd(prev.year + 1, 1, 1)
                                      : ymd(prev.year, prev.month + 1, 1);
        }
        if (!same_date(d, expect) || date_to_days(d) != n || !date_valid(d)) {
            bad++;
        }
        prev = d;
    }
    CHECK_INT(bad, 0);

    CHECK(date_valid(ymd(2024, 2, 29)));
    CHECK(date_valid(ymd(2000, 2, 29)));
    CHECK(!date_valid(ymd(1900, 2, 29)));
    CHECK(!date_valid(ymd(2026, 2, 29)));
    CHECK(!date_valid(ymd(0, 1, 1)));
    CHECK(!date_valid(ymd(10000, 1, 1)));
    CHECK(!date_valid(ymd(2026, 0, 1)));
    CHECK(!date_valid(ymd(2026, 1, 32)));

    CHECK_INT(date_wday(ymd(1970, 1, 1)), 4);
    CHECK_INT(date_wday(ymd(2026, 3, 1)), 7);
    CHECK_INT(date_wday(ymd(2026, 2, 23)), 1);
    CHECK_INT(date_wday(ymd(2026, 7, 15)), 3);
    CHECK_INT(date_wday(ymd(1, 1, 1)), 1);
    CHECK_INT(date_wday(ymd(1969, 12, 28)), 7);

    CHECK(date_cmp(ymd(2026, 1, 1), ymd(2025, 12, 31)) > 0);
    CHECK(date_cmp(ymd(2026, 1, 1), ymd(2026, 2, 1)) < 0);
    CHECK(date_cmp(ymd(2026, 1, 2), ymd(2026, 1, 1)) > 0);
    CHECK_INT(date_cmp(ymd(2026, 1, 1), ymd(2026, 1, 1)), 0);

    CHECK_STR(fmt_date(date_add_days(ymd(2026, 2, 28), 1)), "2026-03-01");
    CHECK_STR(fmt_date(date_add_days(ymd(2024, 2, 28), 1)), "2024-02-29");
    CHECK_STR(fmt_date(date_add_days(ymd(2026, 1, 1), -1)), "2025-12-31");
    CHECK_STR(fmt_date(date_add_days(ymd(2026, 1, 1), 365)), "2027-01-01");
    CHECK_STR(fmt_date(date_add_days(ymd(2024, 1, 1), 366)), "2025-01-01");
    CHECK_STR(fmt_date(date_add_days(ymd(1970, 1, 1), -719162)), "0001-01-01");
}

static void
test_add_months(void)
{
    CHECK_STR(fmt_date(date_add_months(ymd(2026, 1, 31), 1)), "2026-02-28");
    CHECK_STR(fmt_date(date_add_months(ymd(2024, 1, 31), 1)), "2024-02-29");
    CHECK_STR(fmt_date(date_add_months(ymd(2026, 1, 31), 13)), "2027-02-28");
    CHECK_STR(fmt_date(date_add_months(ymd(2026, 1, 31), 3)), "2026-04-30");
    CHECK_STR(fmt_date(date_add_months(ymd(2026, 3, 31), -1)), "2026-02-28");
    CHECK_STR(fmt_date(date_add_months(ymd(2026, 1, 15), -1)), "2025-12-15");
    CHECK_STR(fmt_date(date_add_months(ymd(2026, 5, 31), -25)), "2024-04-30");
    CHECK_STR(fmt_date(date_add_months(ymd(2026, 1, 15), -12)), "2025-01-15");
    CHECK_STR(fmt_date(date_add_months(ymd(2026, 1, 15), -13)), "2024-12-15");
    CHECK_STR(fmt_date(date_add_months(ymd(2024, 2, 29), 12)), "2025-02-28");
    CHECK_STR(fmt_date(date_add_months(ymd(2024, 2, 29), 48)), "2028-02-29");
    CHECK_STR(fmt_date(date_add_months(ymd(2026, 12, 31), 1)), "2027-01-31");
    CHECK_STR(fmt_date(date_add_months(ymd(2026, 7, 4), 0)), "2026-07-04");
}

static void
test_period_kinds(void)
{
    struct eng_error err;
    enum period_kind k = PERIOD_NONE;
    static const char *const names[] = {"none", "weekly", "monthly", "quarterly", "yearly"};

    for (int i = PERIOD_NONE; i <= PERIOD_YEAR; i++) {
        CHECK_INT(period_kind_parse(names[i], &k, &err), 0);
        CHECK_INT(k, i);
        CHECK_STR(period_kind_name((enum period_kind)i), names[i]);
    }
    CHECK_INT(period_kind_parse("Weekly", &k, &err), ENG_EINVAL);
    CHECK(strstr(err.msg, "\"quarterly\"") != NULL);
    CHECK_INT(period_kind_parse("daily", &k, &err), ENG_EINVAL);
    CHECK_INT(period_kind_parse("", &k, &err), ENG_EINVAL);
    CHECK_INT(period_kind_parse(NULL, &k, &err), ENG_EINVAL);
}

static void
test_periods(void)
{
    CHECK_STR(fmt_date(period_start_date(PERIOD_WEEK, ymd(2026, 3, 1))), "2026-02-23");
    CHECK_STR(fmt_date(period_start_date(PERIOD_WEEK, ymd(2026, 2, 23))), "2026-02-23");
    CHECK_STR(fmt_date(period_start_date(PERIOD_WEEK, ymd(2026, 1, 1))), "2025-12-29");
    CHECK_STR(fmt_date(period_start_date(PERIOD_MONTH, ymd(2026, 3, 17))), "2026-03-01");
    CHECK_STR(fmt_date(period_start_date(PERIOD_QUARTER, ymd(2026, 5, 20))), "2026-04-01");
    CHECK_STR(fmt_date(period_start_date(PERIOD_QUARTER, ymd(2026, 3, 31))), "2026-01-01");
    CHECK_STR(fmt_date(period_start_date(PERIOD_QUARTER, ymd(2026, 12, 31))), "2026-10-01");
    CHECK_STR(fmt_date(period_start_date(PERIOD_QUARTER, ymd(2026, 7, 1))), "2026-07-01");
    CHECK_STR(fmt_date(period_start_date(PERIOD_YEAR, ymd(2026, 8, 9))), "2026-01-01");
    CHECK_STR(fmt_date(period_start_date(PERIOD_NONE, ymd(2026, 8, 9))), "2026-08-09");

    CHECK_STR(fmt_date(period_add(PERIOD_WEEK, ymd(2025, 12, 29), 1)), "2026-01-05");
    CHECK_STR(fmt_date(period_add(PERIOD_WEEK, ymd(2025, 12, 29), -1)), "2025-12-22");
    CHECK_STR(fmt_date(period_add(PERIOD_WEEK, ymd(2026, 2, 23), 0)), "2026-02-23");
    CHECK_STR(fmt_date(period_add(PERIOD_MONTH, ymd(2026, 11, 1), 3)), "2027-02-01");
    CHECK_STR(fmt_date(period_add(PERIOD_MONTH, ymd(2026, 1, 1), -13)), "2024-12-01");
    CHECK_STR(fmt_date(period_add(PERIOD_QUARTER, ymd(2026, 10, 1), 1)), "2027-01-01");
    CHECK_STR(fmt_date(period_add(PERIOD_QUARTER, ymd(2026, 10, 1), -5)), "2025-07-01");
    CHECK_STR(fmt_date(period_add(PERIOD_YEAR, ymd(2026, 1, 1), -26)), "2000-01-01");
    CHECK_STR(fmt_date(period_add(PERIOD_YEAR, ymd(2026, 1, 1), 1)), "2027-01-01");
    CHECK_STR(fmt_date(period_add(PERIOD_NONE, ymd(2026, 8, 9), 5)), "2026-08-09");
    CHECK(!date_valid(period_add(PERIOD_YEAR, ymd(2026, 1, 1), INT64_MAX)));
    CHECK(!date_valid(period_add(PERIOD_WEEK, ymd(2026, 1, 5), INT64_MIN)));

    CHECK_INT(period_index(PERIOD_WEEK, ymd(2026, 3, 1), ymd(2026, 3, 2)), 1);
    CHECK_INT(period_index(PERIOD_WEEK, ymd(2026, 2, 23), ymd(2026, 3, 1)), 0);
    CHECK_INT(period_index(PERIOD_WEEK, ymd(2026, 1, 1), ymd(2025, 12, 28)), -1);
    CHECK_INT(period_index(PERIOD_WEEK, ymd(2025, 12, 31), ymd(2026, 1, 4)), 0);
    CHECK_INT(period_index(PERIOD_MONTH, ymd(2025, 12, 31), ymd(2026, 1, 1)), 1);
    CHECK_INT(period_index(PERIOD_MONTH, ymd(2026, 3, 15), ymd(2025, 3, 1)), -12);
    CHECK_INT(period_index(PERIOD_MONTH, ymd(2026, 3, 1), ymd(2026, 3, 31)), 0);
    CHECK_INT(period_index(PERIOD_QUARTER, ymd(2025, 12, 31), ymd(2026, 1, 1)), 1);
    CHECK_INT(period_index(PERIOD_QUARTER, ymd(2026, 3, 31), ymd(2026, 1, 1)), 0);
    CHECK_INT(period_index(PERIOD_QUARTER, ymd(2026, 4, 1), ymd(2025, 12, 31)), -2);
    CHECK_INT(period_index(PERIOD_QUARTER, ymd(2026, 1, 1), ymd(2025, 12, 31)), -1);
    CHECK_INT(period_index(PERIOD_QUARTER, ymd(2024, 2, 10), ymd(2026, 11, 30)), 11);
    CHECK_INT(period_index(PERIOD_YEAR, ymd(2025, 12, 31), ymd(2026, 1, 1)), 1);
    CHECK_INT(period_index(PERIOD_YEAR, ymd(2026, 6, 1), ymd(2020, 1, 1)), -6);
    CHECK_INT(period_index(PERIOD_NONE, ymd(2020, 6, 1), ymd(2026, 1, 1)), 0);

    /* period_add and period_index agree: n periods after a's period start
     * is the start of b's period. */
    int bad = 0;
    for (int kind = PERIOD_WEEK; kind <= PERIOD_YEAR; kind++) {
        for (int64_t i = 0; i < 4000; i++) {
            struct civil_date a = date_from_days(19000 + i * 37 % 3000 - 1500);
            struct civil_date b = date_from_days(19000 + i * 53 % 2900 - 1400);
            struct civil_date sa = period_start_date((enum period_kind)kind, a);
            int64_t n = period_index((enum period_kind)kind, a, b);
            if (!same_date(period_add((enum period_kind)kind, sa, n),
                           period_start_date((enum period_kind)kind, b))) {
                bad++;
            }
        }
    }
    CHECK_INT(bad, 0);
}

static void
test_tz_valid(void)
{
    char long_name[200];

    memset(long_name, 'A', sizeof long_name - 1);
    long_name[sizeof long_name - 1] = '\0';
    CHECK(tz_valid("Europe/Paris"));
    CHECK(tz_valid("UTC"));
    CHECK(tz_valid("America/New_York"));
    CHECK(tz_valid("America/Port-au-Prince"));
    CHECK(tz_valid("Etc/GMT+5"));
    CHECK(!tz_valid("Mars/Base"));
    CHECK(!tz_valid(""));
    CHECK(!tz_valid("Etc/Unknown"));
    CHECK(!tz_valid(NULL));
    CHECK(!tz_valid("europe/paris"));
    CHECK(!tz_valid("GMT+05:00"));
    CHECK(!tz_valid("Europe/Paris\n"));
    CHECK(!tz_valid(" Europe/Paris"));
    CHECK(!tz_valid(long_name));
}

static void
test_tz_midnight(void)
{
    struct eng_error err;
    int64_t t = 0;

    CHECK_INT(midnight("Europe/Paris", 2026, 1, 1), 1767222000); /* 2025-12-31T23:00Z */
    CHECK_INT(midnight("UTC", 2026, 1, 15), 1768435200);
    /* Spring forward at 02:00: a 23-hour day.  Fall back: 25 hours. */
    CHECK_INT(midnight("Europe/Paris", 2026, 3, 29), 1774738800);
    CHECK_INT(midnight("Europe/Paris", 2026, 3, 30), 1774821600);
    CHECK_INT(midnight("Europe/Paris", 2026, 3, 30) - midnight("Europe/Paris", 2026, 3, 29),
              82800);
    CHECK_INT(midnight("Europe/Paris", 2026, 10, 25), 1792879200);
    CHECK_INT(midnight("Europe/Paris", 2026, 10, 26) - midnight("Europe/Paris", 2026, 10, 25),
              90000);
    CHECK_INT(midnight("America/New_York", 2026, 3, 8), 1772946000);
    CHECK_INT(midnight("America/New_York", 2026, 3, 9) - midnight("America/New_York", 2026, 3, 8),
              82800);
    /* Half-hour DST: days of 24.5 and 23.5 hours. */
    CHECK_INT(midnight("Australia/Lord_Howe", 2026, 4, 5), 1775307600);
    CHECK_INT(midnight("Australia/Lord_Howe", 2026, 4, 6), 1775395800);
    CHECK_INT(midnight("Australia/Lord_Howe", 2026, 10, 4), 1791034200);
    CHECK_INT(midnight("Australia/Lord_Howe", 2026, 10, 5), 1791118800);

    /* 00:00 did not exist: the day starts at 01:00 local, the jump. */
    CHECK_INT(midnight("America/Sao_Paulo", 2018, 11, 4), 1541300400); /* 03:00Z */
    CHECK_INT(midnight("America/Sao_Paulo", 2018, 11, 5) - 1541300400, 82800);
    CHECK_INT(midnight("America/Havana", 2026, 3, 8), 1772946000); /* 05:00Z */
    /* Clocks go back from 01:00 to 00:00, so midnight happens twice; the
     * day starts at the first one (00:00 CDT = 04:00Z). */
    CHECK_INT(midnight("America/Havana", 2026, 11, 1), 1793505600);
    CHECK_INT(midnight("America/Havana", 2026, 11, 2) - 1793505600, 90000);
    /* Samoa skipped 2011-12-30 entirely: that day is empty. */
    CHECK_INT(midnight("Pacific/Apia", 2011, 12, 30), midnight("Pacific/Apia", 2011, 12, 31));
    /* Before 1582 too: proleptic Gregorian plus Paris local mean time. */
    CHECK_INT(midnight("Europe/Paris", 1, 1, 1), -62135596800LL - 561);

    CHECK_INT(tz_local_midnight("Mars/Base", ymd(2026, 1, 1), &t, &err), ENG_EINVAL);
    CHECK(strstr(err.msg, "Mars/Base") != NULL);
    CHECK_INT(tz_local_midnight("", ymd(2026, 1, 1), &t, &err), ENG_EINVAL);
    CHECK_INT(tz_local_midnight(NULL, ymd(2026, 1, 1), &t, &err), ENG_EINVAL);
    CHECK_INT(tz_local_midnight("Europe/Paris", ymd(2026, 2, 30), &t, &err), ENG_EINVAL);
    CHECK_INT(tz_local_midnight("Europe/Paris", ymd(0, 1, 1), &t, &err), ENG_EINVAL);
}

/* For every day of 1990..2035 in zones with awkward rules, the result must
 * be the first instant of the day: its local date is that day, and the
 * second before it belongs to an earlier day. */
static void
test_tz_midnight_sweep(void)
{
    static const char *const zones[] = {
        "Europe/Paris",     "America/New_York", "America/Sao_Paulo", "America/Havana",
        "America/Santiago", "America/Asuncion", "Asia/Tehran",       "Asia/Gaza",
        "Africa/Cairo",     "Australia/Lord_Howe", "Pacific/Chatham", "Antarctica/Troll",
        "Asia/Kolkata",     "UTC",
    };
    struct eng_error err;

    for (size_t z = 0; z < sizeof zones / sizeof zones[0]; z++) {
        int bad = 0;
        int64_t prev = INT64_MIN;
        for (int64_t n = date_to_days(ymd(1990, 1, 1)); n <= date_to_days(ymd(2035, 12, 31));
             n++) {
            struct civil_date d = date_from_days(n);
            struct civil_time at, before;
            int64_t t;
            if (tz_local_midnight(zones[z], d, &t, &err) != 0 ||
                tz_local_time(zones[z], t, &at, &err) != 0 ||
                tz_local_time(zones[z], t - 1, &before, &err) != 0 ||
                !same_date(ymd(at.year, at.month, at.day), d) ||
                date_cmp(ymd(before.year, before.month, before.day), d) >= 0 || t <= prev) {
                if (bad++ < 3) {
                    printf("# %s: bad midnight for %s\n", zones[z], fmt_date(d));
                }
            }
            prev = t;
        }
        CHECK_INT(bad, 0);
    }
}

static void
test_tz_local_time(void)
{
    struct civil_time ct;
    struct eng_error err;

    CHECK_INT(tz_local_time("Europe/Paris", 1784109600, &ct, &err), 0); /* 2026-07-15T10Z */
    CHECK_INT(ct.year, 2026);
    CHECK_INT(ct.month, 7);
    CHECK_INT(ct.day, 15);
    CHECK_INT(ct.hour, 12);
    CHECK_INT(ct.minute, 0);
    CHECK_INT(ct.second, 0);
    CHECK_INT(ct.offset_min, 120);
    CHECK_INT(ct.wday, 3);

    CHECK_INT(tz_local_time("America/New_York", 1768471200 + 59, &ct, &err), 0);
    CHECK_INT(ct.day, 15);
    CHECK_INT(ct.hour, 5);
    CHECK_INT(ct.second, 59);
    CHECK_INT(ct.offset_min, -300);
    CHECK_INT(ct.wday, 4);

    /* 2026-01-15T23:30Z is already Friday the 16th in Kolkata (+05:30). */
    CHECK_INT(tz_local_time("Asia/Kolkata", 1768435200 + 84600, &ct, &err), 0);
    CHECK_INT(ct.day, 16);
    CHECK_INT(ct.hour, 5);
    CHECK_INT(ct.minute, 0);
    CHECK_INT(ct.offset_min, 330);
    CHECK_INT(ct.wday, 5);

    /* Lord Howe: +11:00 in (southern) summer, +10:30 in winter. */
    CHECK_INT(tz_local_time("Australia/Lord_Howe", 1768471200, &ct, &err), 0);
    CHECK_INT(ct.offset_min, 660);
    CHECK_INT(ct.hour, 21);
    CHECK_INT(tz_local_time("Australia/Lord_Howe", 1784109600, &ct, &err), 0);
    CHECK_INT(ct.offset_min, 630);
    CHECK_INT(ct.hour, 20);
    CHECK_INT(ct.minute, 30);

    /* The earliest instant, in UTC and in Paris local mean time. */
    CHECK_INT(tz_local_time("UTC", -62135596800LL, &ct, &err), 0);
    CHECK_INT(ct.year, 1);
    CHECK_INT(ct.wday, 1);
    CHECK_INT(tz_local_time("Europe/Paris", -62135596800LL, &ct, &err), 0);
    CHECK_INT(ct.minute, 9);
    CHECK_INT(ct.second, 21);
    CHECK_INT(ct.offset_min, 9);

    CHECK_INT(tz_local_time("Europe/Paris", TIME_NEVER, &ct, &err), ENG_EINVAL);
    CHECK_INT(tz_local_time("Europe/Paris", 253402300799LL, &ct, &err), ENG_EINVAL);
    CHECK_INT(tz_local_time("UTC", 253402300799LL, &ct, &err), 0);
    CHECK_INT(tz_local_time("Etc/Unknown", 0, &ct, &err), ENG_EINVAL);
    CHECK_INT(tz_local_time("Mars/Base", 0, &ct, &err), ENG_EINVAL);
}

/* More zones than cache slots, interleaved: evictions must never hand back
 * another zone's calendar. */
static void
test_tz_cache_churn(void)
{
    static const struct {
        const char *zone;
        int offset_min; /* at 2026-01-15T10:00Z */
    } zs[] = {
        {"Europe/Paris", 60},     {"America/New_York", -300}, {"Asia/Kolkata", 330},
        {"Asia/Tokyo", 540},      {"Pacific/Chatham", 825},   {"America/St_Johns", -210},
        {"UTC", 0},
    };
    int bad = 0;

    for (int round = 0; round < 50; round++) {
        for (size_t i = 0; i < sizeof zs / sizeof zs[0]; i++) {
            size_t j = (i * 3 + (size_t)round) % (sizeof zs / sizeof zs[0]);
            struct civil_time ct;
            struct eng_error err;
            if (tz_local_time(zs[j].zone, 1768471200, &ct, &err) != 0 ||
                ct.offset_min != zs[j].offset_min) {
                bad++;
            }
        }
    }
    CHECK_INT(bad, 0);
}

/* Each thread has its own calendars; the results must not interfere, and
 * threads that exit release theirs (visible under ASan). */
static void *
tz_thread(void *arg)
{
    const char *zone = arg;
    int64_t expect = strcmp(zone, "Europe/Paris") == 0 ? 1774738800 : 1772946000;
    intptr_t bad = 0;

    for (int i = 0; i < 2000; i++) {
        struct civil_time ct;
        struct eng_error err;
        int64_t t = 0;
        if (tz_local_midnight(zone, ymd(2026, 3, strcmp(zone, "Europe/Paris") == 0 ? 29 : 8),
                              &t, &err) != 0 ||
            t != expect || tz_local_time(zone, t, &ct, &err) != 0 || ct.hour != 0) {
            bad++;
        }
    }
    return (void *)bad;
}

static void
test_tz_threads(void)
{
    pthread_t th[4];
    const char *zones[4] = {"Europe/Paris", "America/New_York", "Europe/Paris",
                            "America/New_York"};
    int started = 0;
    intptr_t bad = 0;

    for (int i = 0; i < 4; i++) {
        if (pthread_create(&th[i], NULL, tz_thread, (void *)zones[i]) == 0) {
            started++;
        }
    }
    CHECK_INT(started, 4);
    for (int i = 0; i < started; i++) {
        void *r = NULL;
        pthread_join(th[i], &r);
        bad += (intptr_t)r;
    }
    CHECK_INT(bad, 0);
}


/* Rules changed after ICU 72's own copy of the database (2022e), which the
 * engine read before: Mexico has kept standard time all year since
 * 2022-10-30, Kazakhstan has been on +05 everywhere since 2024-03-01. */
static void
test_tz_recent_rules(void)
{
    struct civil_time ct;
    struct eng_error err;

    /* 2027-07-01 in Mexico City: -06:00 (with DST it was -05:00). */
    CHECK_INT(midnight("America/Mexico_City", 2027, 7, 1), 1814421600);
    CHECK_INT(tz_local_time("America/Mexico_City", 1814421600, &ct, &err), 0);
    CHECK_INT(ct.offset_min, -360);
    CHECK_INT(ct.hour, 0);
    /* 2027-03-01 in Almaty: +05:00, so midnight is 19:00Z the day before. */
    CHECK_INT(midnight("Asia/Almaty", 2027, 3, 1), 1803841200);
    CHECK_INT(tz_local_time("Asia/Almaty", 1803841200 + 3600, &ct, &err), 0);
    CHECK_INT(ct.offset_min, 300);
    CHECK_INT(ct.hour, 1);
    /* Before the change the old offsets hold: Almaty +06 in 2023, Mexico
     * City's DST in July 2021 (-05). */
    CHECK_INT(tz_local_time("Asia/Almaty", 1688212800, &ct, &err), 0); /* 2023-07-01T12Z */
    CHECK_INT(ct.offset_min, 360);
    CHECK_INT(tz_local_time("America/Mexico_City", 1625140800, &ct, &err), 0);
    CHECK_INT(ct.offset_min, -300);
}

/* The zone names: the database's zones and links, nothing else. */
static void
test_tz_names(void)
{
    CHECK(tz_valid("US/Eastern"));      /* a link */
    CHECK(tz_valid("Etc/UTC"));
    CHECK(tz_valid("America/Argentina/Buenos_Aires"));
    CHECK(tz_valid("America/Mexico_City"));
    CHECK(!tz_valid("posix/Europe/Paris"));
    CHECK(!tz_valid("right/Europe/Paris"));
    CHECK(!tz_valid("localtime"));
    CHECK(!tz_valid("posixrules"));
    CHECK(!tz_valid("tzdata.zi"));
    CHECK(!tz_valid("zone.tab"));
    CHECK(!tz_valid("Europe"));         /* a directory */
    CHECK(!tz_valid("/etc/localtime"));
    CHECK(!tz_valid("Europe/../../../etc/passwd"));
    CHECK(!tz_valid("Europe//Paris"));
    CHECK(tzif_find("Europe/..") == NULL);
}

/* glibc's TZ around the comparisons below, put back afterwards. */
static char *
tz_env_save(void)
{
    const char *old_tz = getenv("TZ");
    return old_tz != NULL ? strdup(old_tz) : NULL;
}

static void
tz_env_restore(char *saved)
{
    if (saved != NULL) {
        setenv("TZ", saved, 1);
        free(saved);
    } else {
        unsetenv("TZ");
    }
    tzset();
}

/* glibc's offset at t in `zone` (TZ=":zone" or a POSIX rule). */
static long
libc_offset(int64_t t)
{
    time_t tt = (time_t)t;
    struct tm tm;
    return localtime_r(&tt, &tm) != NULL ? tm.tm_gmtoff : -999999;
}

/* Every zone the database lists, against glibc's localtime over 1850..2150
 * (a few hundred instants a zone, through the table and into the footer's
 * rule).  Two readers of the same files must agree to the second. */
static void
test_tz_against_libc(void)
{
    FILE *f = fopen("/usr/share/zoneinfo/tzdata.zi", "r");
    char line[512];
    int zones = 0, bad = 0;
    char *saved = tz_env_save();

    CHECK(f != NULL);
    while (f != NULL && fgets(line, sizeof line, f) != NULL) {
        char kind = 0, a[128] = "", b[128] = "";
        if (sscanf(line, "%c %127s %127s", &kind, a, b) < 2 || (kind != 'Z' && kind != 'L')) {
            continue;
        }
        const char *name = kind == 'Z' ? a : b;
        char tz[160];
        snprintf(tz, sizeof tz, ":%s", name);
        setenv("TZ", tz, 1);
        tzset();
        zones++;
        if (!tz_valid(name)) {
            if (bad++ < 5) {
                printf("# %s: listed but refused\n", name);
            }
            continue;
        }
        /* 1850-01-01 .. 2150-01-01 in steps of 37 days and 5 hours, 7 min. */
        for (int64_t t = -3786825600LL; t < 5680281600LL; t += 37 * 86400 + 5 * 3600 + 420) {
            struct civil_time ct;
            struct eng_error err;
            long want = libc_offset(t);
            if (tz_local_time(name, t, &ct, &err) != 0 ||
                (long)ct.offset_min != want / 60) {
                if (bad++ < 5) {
                    printf("# %s at %lld: %d min, glibc %ld s\n", name, (long long)t,
                           ct.offset_min, want);
                }
                break;
            }
        }
    }
    if (f != NULL) {
        fclose(f);
    }
    tz_env_restore(saved);
    CHECK(zones > 400);
    CHECK_INT(bad, 0);
}

/* POSIX rules alone (a footer's grammar: J, zero-based and M dates,
 * negative and >24 h times, quoted names, southern summers, DST all year),
 * against glibc given the same string as TZ, hour by hour through
 * 2024..2026, and the spans must hold their offsets. */
static void
test_tz_rules(void)
{
    static const char *const rules[] = {
        "CET-1CEST,M3.5.0,M10.5.0/3",
        "EST5EDT,M3.2.0,M11.1.0",
        "<-03>3<-02>,M3.5.0/-2,M10.5.0/-1",
        "<+1030>-10:30<+11>-11,M10.1.0,M4.1.0",
        "IST-2IDT,M3.4.4/26,M10.5.0",
        "<-04>4<-03>,M9.1.6/24,M4.1.6/24",
        "NZST-12NZDT,M9.5.0,M4.1.0/3",
        "AAA3BBB,J60/1,J300",
        "AAA3BBB,59/1,299",
        "<+0530>-5:30",
        "UTC0",
        "XXX-13:45YYY-14:45,M9.5.0/2:45,M4.1.0/3:45",
    };
    static const char *const bad_rules[] = {
        "", "C-1", "CET", "CET-1CEST,M3.5.0", "CET-1CEST,M13.5.0,M10.5.0",
        "CET-1CEST,M3.6.0,M10.5.0", "CET-1CEST,M3.5.7,M10.5.0", "CET-1CEST,J0,J300",
        "CET-1CEST,366,1", "<+1>-1", "CET-25", "CET-1CEST,M3.5.0/168,M10.5.0", "CET-1x",
    };
    char *saved = tz_env_save();
    int bad = 0;

    for (size_t r = 0; r < sizeof rules / sizeof rules[0]; r++) {
        struct tzif_zone *z = tzif_zone_from_rule(rules[r]);
        CHECK(z != NULL);
        if (z == NULL) {
            continue;
        }
        setenv("TZ", rules[r], 1);
        tzset();
        for (int64_t t = 1704067200; t < 1798761600 && bad < 5; t += 3600 - 1) {
            int64_t from, until;
            int64_t off = tzif_offset(z, t, &from, &until);
            if (off != libc_offset(t) || from > t || until <= t ||
                (from > INT64_MIN && tzif_offset(z, from, &(int64_t){0}, &(int64_t){0}) != off) ||
                (until < INT64_MAX &&
                 tzif_offset(z, until - 1, &(int64_t){0}, &(int64_t){0}) != off)) {
                printf("# %s at %lld: %lld [%lld, %lld), glibc %ld\n", rules[r], (long long)t,
                       (long long)off, (long long)from, (long long)until, libc_offset(t));
                bad++;
            }
        }
        tzif_zone_free(z);
    }
    /* DST all year (RFC 8536 3.3.1): it ends at 25:00 on 31 December and
     * starts again at once.  glibc reads the 25 h otherwise; the RFC is
     * the reference here. */
    struct tzif_zone *always = tzif_zone_from_rule("EST5EDT,0/0,J365/25");
    CHECK(always != NULL);
    for (int64_t t = 1704067200; always != NULL && t < 1798761600; t += 3600 * 7 - 1) {
        int64_t from, until;
        if (tzif_offset(always, t, &from, &until) != -4 * 3600) {
            bad++;
        }
    }
    tzif_zone_free(always);
    for (size_t r = 0; r < sizeof bad_rules / sizeof bad_rules[0]; r++) {
        struct tzif_zone *z = tzif_zone_from_rule(bad_rules[r]);
        if (z != NULL) {
            printf("# accepted a bad rule: \"%s\"\n", bad_rules[r]);
            bad++;
            tzif_zone_free(z);
        }
    }
    tz_env_restore(saved);
    CHECK_INT(bad, 0);
}

/* Every prefix and a byte flipped at every position of real zone files:
 * the reader refuses or accepts, never reads past the bytes (the sanitizer
 * build runs this too), and whatever it accepts answers offsets. */
static void
test_tzif_damaged(void)
{
    static const char *const files[] = {"Europe/Paris", "America/Mexico_City", "Etc/GMT+5",
                                        "Australia/Lord_Howe"};
    int accepted_whole = 0;

    for (size_t k = 0; k < sizeof files / sizeof files[0]; k++) {
        char path[256];
        snprintf(path, sizeof path, "/usr/share/zoneinfo/%s", files[k]);
        FILE *f = fopen(path, "rb");
        unsigned char buf[8192];
        size_t len = f != NULL ? fread(buf, 1, sizeof buf, f) : 0;
        if (f != NULL) {
            fclose(f);
        }
        CHECK(len > 44 && len < sizeof buf);
        struct tzif_zone *whole = tzif_zone_from_bytes(buf, len);
        accepted_whole += whole != NULL;
        tzif_zone_free(whole);
        for (size_t n = 0; n < len; n++) {
            unsigned char *copy = malloc(n ? n : 1); /* exact size: ASan sees overreads */
            memcpy(copy, buf, n);
            struct tzif_zone *z = tzif_zone_from_bytes(copy, n);
            tzif_zone_free(z);
            free(copy);
        }
        for (size_t i = 0; i < len; i++) {
            unsigned char *copy = malloc(len);
            memcpy(copy, buf, len);
            copy[i] ^= (unsigned char)(0x5a + i);
            struct tzif_zone *z = tzif_zone_from_bytes(copy, len);
            if (z != NULL) {
                int64_t from, until;
                (void)tzif_offset(z, 1768471200, &from, &until);
                (void)tzif_offset(z, 9000000000LL, &from, &until);
            }
            tzif_zone_free(z);
            free(copy);
        }
    }
    CHECK_INT(accepted_whole, 4);
}

int
main(void)
{
    test_rfc3339_parse();
    test_rfc3339_format();
    test_date_month_parse();
    test_civil_days();
    test_add_months();
    test_period_kinds();
    test_periods();
    test_tz_valid();
    test_tz_midnight();
    test_tz_midnight_sweep();
    test_tz_local_time();
    test_tz_cache_churn();
    test_tz_threads();
    test_tz_recent_rules();
    test_tz_names();
    test_tz_against_libc();
    test_tz_rules();
    test_tzif_damaged();
    return check_exit();
}

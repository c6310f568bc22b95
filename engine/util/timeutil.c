/* timeutil.c - instants, civil dates, time zones and credit periods.
 *
 * Two halves.  Civil date arithmetic (days, months, periods, parsing and
 * formatting) is plain integer arithmetic on the proleptic Gregorian
 * calendar, so it is exact and needs no library.  Zone conversions ask the
 * system's tz database (tzif.c) only for UTC offsets and the spans between
 * transitions; the civil fields are then computed by the integer half.
 *
 * Zone lookups sit on request paths, so each thread keeps a few zones with
 * the span of their last offset (see tz_cache below). */
#include "timeutil.h"

#include <stdio.h>
#include <string.h>

#include <unicode/ucurr.h>

#include "tzif.h"

#define SECS_PER_DAY 86400
#define DAYS_PER_400Y 146097 /* 400 * 365 + 97 leap days */
#define DAYS_PER_100Y 36524  /* 100 * 365 + 24 leap days */
#define DAYS_PER_4Y 1461     /* 4 * 365 + 1 leap day */
/* Days from 0001-01-01 to 1970-01-01. */
#define DAYS_0001_TO_1970 719162
/* Instants whose UTC date lies in years 0001..9999: from 0001-01-01T00:00:00Z
 * to 9999-12-31T23:59:59Z. */
#define TIME_MIN_S (-62135596800LL)
#define TIME_MAX_S 253402300799LL
/* Day counts far beyond any real date are saturated so that the year still
 * fits an int (about +-100 million years).  Such dates fail date_valid. */
#define DAYS_ABS_MAX 36500000000LL
/* Likewise for period counts in period_add. */
#define PERIODS_ABS_MAX 100000000LL

#define TZ_EXPECTED "expected an IANA zone id such as \"Europe/Paris\""
#define RFC3339_EXPECTED                                                                   \
    "expected an RFC 3339 time \"YYYY-MM-DDTHH:MM:SSZ\" or \"YYYY-MM-DDTHH:MM:SS+HH:MM\""

/* ---- integer helpers ---------------------------------------------------- */

/* Division rounding toward minus infinity (C's `/` truncates toward zero,
 * which is wrong for instants and days before the epoch). */
static int64_t
floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    if (a % b != 0 && ((a < 0) != (b < 0))) {
        q--;
    }
    return q;
}

static int64_t
clamp64(int64_t v, int64_t lo, int64_t hi)
{
    if (v < lo) {
        return lo;
    }
    return v > hi ? hi : v;
}

static bool
is_leap(int64_t year)
{
    return (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
}

static int
days_in_month(int64_t year, int month)
{
    static const int len[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (month == 2 && is_leap(year)) {
        return 29;
    }
    return len[month - 1];
}

/* ---- periods ------------------------------------------------------------ */

static const char *const period_names[] = {"none", "weekly", "monthly", "quarterly",
                                           "yearly"};

int
period_kind_parse(const char *s, enum period_kind *out, struct eng_error *err)
{
    for (int k = PERIOD_NONE; s != NULL && k <= PERIOD_YEAR; k++) {
        if (strcmp(s, period_names[k]) == 0) {
            *out = (enum period_kind)k;
            return 0;
        }
    }
    return eng_error_set(err, ENG_EINVAL,
                         "unknown recurrence: expected \"none\", \"weekly\", \"monthly\", "
                         "\"quarterly\" or \"yearly\"");
}

const char *
period_kind_name(enum period_kind kind)
{
    /* An out-of-range value is a corrupted enum; say so rather than guess. */
    if ((int)kind < PERIOD_NONE || (int)kind > PERIOD_YEAR) {
        return "unknown";
    }
    return period_names[kind];
}

/* ---- civil dates -------------------------------------------------------- */

bool
date_valid(struct civil_date d)
{
    return d.year >= 1 && d.year <= 9999 && d.month >= 1 && d.month <= 12 && d.day >= 1 &&
           d.day <= days_in_month(d.year, d.month);
}

int64_t
date_to_days(struct civil_date d)
{
    /* Normalise the month first so that an out-of-range month (a caller
     * bug) still gives a defined answer instead of indexing past a table. */
    int64_t months = (int64_t)d.year * 12 + (d.month - 1);
    int64_t year = floor_div(months, 12);
    int month = (int)(months - year * 12) + 1;
    int64_t y = year - 1;
    int64_t days = 365 * y + floor_div(y, 4) - floor_div(y, 100) + floor_div(y, 400);

    for (int m = 1; m < month; m++) {
        days += days_in_month(year, m);
    }
    return days + (d.day - 1) - DAYS_0001_TO_1970;
}

struct civil_date
date_from_days(int64_t days)
{
    /* Peel off whole 400-, 100-, 4- and 1-year blocks counted from
     * 0001-01-01; the last year of the 100- and 1-year blocks is the long
     * one, hence the caps at 3. */
    int64_t n = clamp64(days, -DAYS_ABS_MAX, DAYS_ABS_MAX) + DAYS_0001_TO_1970;
    int64_t q400 = floor_div(n, DAYS_PER_400Y);
    int64_t r = n - q400 * DAYS_PER_400Y;
    int64_t q100 = r / DAYS_PER_100Y;
    if (q100 > 3) {
        q100 = 3;
    }
    r -= q100 * DAYS_PER_100Y;
    int64_t q4 = r / DAYS_PER_4Y;
    r -= q4 * DAYS_PER_4Y;
    int64_t q1 = r / 365;
    if (q1 > 3) {
        q1 = 3;
    }
    r -= q1 * 365;

    struct civil_date d = {(int)(1 + 400 * q400 + 100 * q100 + 4 * q4 + q1), 1, 1};
    while (r >= days_in_month(d.year, d.month)) {
        r -= days_in_month(d.year, d.month);
        d.month++;
    }
    d.day = (int)r + 1;
    return d;
}

struct civil_date
date_add_days(struct civil_date d, int days)
{
    return date_from_days(date_to_days(d) + days);
}

/* date_add_months with a 64-bit count, for period_add. */
static struct civil_date
add_months64(struct civil_date d, int64_t months)
{
    int64_t total = (int64_t)d.year * 12 + (d.month - 1) +
                    clamp64(months, -12 * PERIODS_ABS_MAX, 12 * PERIODS_ABS_MAX);
    int64_t year = floor_div(total, 12);
    struct civil_date r = {(int)year, (int)(total - year * 12) + 1, d.day};
    int len = days_in_month(r.year, r.month);

    if (r.day > len) {
        r.day = len;
    }
    return r;
}

struct civil_date
date_add_months(struct civil_date d, int months)
{
    return add_months64(d, months);
}

int
date_wday(struct civil_date d)
{
    /* 1970-01-01 was a Thursday (ISO 4). */
    int64_t days = date_to_days(d);
    return (int)(days + 3 - floor_div(days + 3, 7) * 7) + 1;
}

int
date_cmp(struct civil_date a, struct civil_date b)
{
    if (a.year != b.year) {
        return a.year < b.year ? -1 : 1;
    }
    if (a.month != b.month) {
        return a.month < b.month ? -1 : 1;
    }
    if (a.day != b.day) {
        return a.day < b.day ? -1 : 1;
    }
    return 0;
}

struct civil_date
period_start_date(enum period_kind kind, struct civil_date d)
{
    switch (kind) {
    case PERIOD_WEEK:
        return date_add_days(d, 1 - date_wday(d));
    case PERIOD_MONTH:
        return (struct civil_date){d.year, d.month, 1};
    case PERIOD_QUARTER:
        return (struct civil_date){d.year, (d.month - 1) / 3 * 3 + 1, 1};
    case PERIOD_YEAR:
        return (struct civil_date){d.year, 1, 1};
    case PERIOD_NONE:
    default:
        return d;
    }
}

struct civil_date
period_add(enum period_kind kind, struct civil_date start, int64_t n)
{
    /* Absurd counts saturate rather than overflow; the result is then far
     * outside 0001..9999 and fails date_valid. */
    n = clamp64(n, -PERIODS_ABS_MAX, PERIODS_ABS_MAX);
    switch (kind) {
    case PERIOD_WEEK:
        return date_from_days(date_to_days(start) + 7 * n);
    case PERIOD_MONTH:
        return add_months64(start, n);
    case PERIOD_QUARTER:
        return add_months64(start, 3 * n);
    case PERIOD_YEAR:
        return add_months64(start, 12 * n);
    case PERIOD_NONE:
    default:
        /* A "once" allocation has a single period: there is no next one. */
        return start;
    }
}

int64_t
period_index(enum period_kind kind, struct civil_date a, struct civil_date b)
{
    int64_t month_a = (int64_t)a.year * 12 + (a.month - 1);
    int64_t month_b = (int64_t)b.year * 12 + (b.month - 1);

    switch (kind) {
    case PERIOD_WEEK:
        /* Both starts are Mondays, so the difference divides exactly. */
        return (date_to_days(period_start_date(kind, b)) -
                date_to_days(period_start_date(kind, a))) /
               7;
    case PERIOD_MONTH:
        return month_b - month_a;
    case PERIOD_QUARTER:
        return floor_div(month_b, 3) - floor_div(month_a, 3);
    case PERIOD_YEAR:
        return (int64_t)b.year - a.year;
    case PERIOD_NONE:
    default:
        return 0;
    }
}

/* ---- parsing and formatting -------------------------------------------- */

/* Reads exactly `n` ASCII digits; false on anything else (signs, spaces). */
static bool
parse_digits(const char *s, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') {
            return false;
        }
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return true;
}

/* "YYYY-MM" at s; fields are not range-checked here. */
static bool
parse_year_month(const char *s, struct civil_date *d)
{
    return parse_digits(s, 4, &d->year) && s[4] == '-' && parse_digits(s + 5, 2, &d->month);
}

/* "YYYY-MM-DD" at s; fields are not range-checked here. */
static bool
parse_ymd(const char *s, struct civil_date *d)
{
    return parse_year_month(s, d) && s[7] == '-' && parse_digits(s + 8, 2, &d->day);
}

int
date_parse(const char *s, struct civil_date *out, struct eng_error *err)
{
    struct civil_date d;

    if (s == NULL || strlen(s) != 10 || !parse_ymd(s, &d)) {
        return eng_error_set(err, ENG_EINVAL, "expected a date \"YYYY-MM-DD\"");
    }
    if (!date_valid(d)) {
        return eng_error_set(err, ENG_EINVAL,
                             "%04d-%02d-%02d is not a calendar date: expected a real date "
                             "\"YYYY-MM-DD\" in years 0001..9999",
                             d.year, d.month, d.day);
    }
    *out = d;
    return 0;
}

int
month_parse(const char *s, struct civil_date *out, struct eng_error *err)
{
    struct civil_date d = {0, 0, 1};

    if (s == NULL || strlen(s) != 7 || !parse_year_month(s, &d)) {
        return eng_error_set(err, ENG_EINVAL, "expected a month \"YYYY-MM\"");
    }
    if (!date_valid(d)) {
        return eng_error_set(err, ENG_EINVAL,
                             "%04d-%02d is not a calendar month: expected \"YYYY-MM\" with "
                             "month 01..12 in years 0001..9999",
                             d.year, d.month);
    }
    *out = d;
    return 0;
}

/* Parses "[.fff]" then "Z" or "+HH:MM"/"-HH:MM" at s.  Sets *sub_second when
 * a fraction has a non-zero digit; the caller decides how to report it so
 * that syntax errors take precedence. */
static bool
parse_rfc3339_tail(const char *s, int *offset_s, bool *sub_second)
{
    int oh, om;

    *sub_second = false;
    if (*s == '.') {
        s++;
        if (*s < '0' || *s > '9') {
            return false;
        }
        for (; *s >= '0' && *s <= '9'; s++) {
            *sub_second = *sub_second || *s != '0';
        }
    }
    if (*s == 'Z' || *s == 'z') {
        *offset_s = 0;
        return s[1] == '\0';
    }
    if ((*s != '+' && *s != '-') || !parse_digits(s + 1, 2, &oh) || s[3] != ':' ||
        !parse_digits(s + 4, 2, &om) || s[6] != '\0' || oh > 23 || om > 59) {
        return false;
    }
    *offset_s = (*s == '-' ? -1 : 1) * (oh * 3600 + om * 60);
    return true;
}

int
time_parse_rfc3339(const char *s, int64_t *out, struct eng_error *err)
{
    struct civil_date d;
    int hh, mi, ss, offset_s;
    bool sub_second;

    /* No read goes past the NUL: a short string fails the digit or
     * separator test at its NUL, and && stops before the next position. */
    if (s == NULL || !parse_ymd(s, &d) || (s[10] != 'T' && s[10] != 't') ||
        !parse_digits(s + 11, 2, &hh) || s[13] != ':' || !parse_digits(s + 14, 2, &mi) ||
        s[16] != ':' || !parse_digits(s + 17, 2, &ss) ||
        !parse_rfc3339_tail(s + 19, &offset_s, &sub_second)) {
        return eng_error_set(err, ENG_EINVAL, RFC3339_EXPECTED);
    }
    /* Leap seconds (":60") are refused too: instants here are POSIX seconds. */
    if (!date_valid(d) || hh > 23 || mi > 59 || ss > 59) {
        return eng_error_set(err, ENG_EINVAL, "date or time field out of range: %s",
                             RFC3339_EXPECTED);
    }
    if (sub_second) {
        return eng_error_set(err, ENG_EINVAL, "sub-second times are not supported");
    }
    int64_t t = date_to_days(d) * SECS_PER_DAY + hh * 3600 + mi * 60 + ss - offset_s;
    if (t < TIME_MIN_S || t > TIME_MAX_S) {
        return eng_error_set(err, ENG_EINVAL, "time is outside years 0001..9999 UTC");
    }
    *out = t;
    return 0;
}

void
time_format_rfc3339(int64_t t, char *buf, size_t buf_len)
{
    /* Instants outside 0001..9999 (TIME_NEVER above all) are written as the
     * nearest representable one, so the output is always valid RFC 3339. */
    int64_t c = clamp64(t, TIME_MIN_S, TIME_MAX_S);
    int64_t days = floor_div(c, SECS_PER_DAY);
    int secs = (int)(c - days * SECS_PER_DAY);
    struct civil_date d = date_from_days(days);

    if (buf == NULL || buf_len == 0) {
        return;
    }
    /* "YYYY-MM-DDTHH:MM:SSZ" by hand (it is written for every instant of
     * every answer): the year is 1..9999 after the clamp, so every field
     * has a fixed width, as snprintf's "%04d-%02d-..." gives. */
    char out[21];
    const int fields[6] = {d.year, d.month, d.day, secs / 3600, secs / 60 % 60, secs % 60};
    static const char seps[6] = {'-', '-', 'T', ':', ':', 'Z'};
    size_t at = 0;
    for (int i = 0; i < 6; i++) {
        int v = fields[i];
        if (i == 0) {
            out[at++] = (char)('0' + v / 1000);
            out[at++] = (char)('0' + v / 100 % 10);
        }
        out[at++] = (char)('0' + v / 10 % 10);
        out[at++] = (char)('0' + v % 10);
        out[at++] = seps[i];
    }
    out[at] = '\0';
    size_t n = at < buf_len - 1 ? at : buf_len - 1;
    memcpy(buf, out, n);
    buf[n] = '\0';
}

void
date_format(struct civil_date d, char *buf, size_t buf_len)
{
    if (buf != NULL && buf_len > 0) {
        snprintf(buf, buf_len, "%04d-%02d-%02d", d.year, d.month, d.day);
    }
}

void
month_format(struct civil_date d, char *buf, size_t buf_len)
{
    if (buf != NULL && buf_len > 0) {
        snprintf(buf, buf_len, "%04d-%02d", d.year, d.month);
    }
}

/* ---- zones --------------------------------------------------------------- */

/* Per-thread slots of zones in use, least recently used replaced, each with
 * the span of its last offset: requests ask about nearby instants of a few
 * zones, so a name comparison and two integer ones answer most calls.  The
 * zones themselves are shared and never freed (tzif.c). */
#define TZ_CACHE_SLOTS 4

struct tz_slot {
    char zone[TIME_ZONE_NAME_MAX]; /* "" when the slot is empty */
    const struct tzif_zone *tz;
    uint64_t used; /* cache tick of the last use */
    /* The offset in force over [span_from, span_until) (from > until: none
     * kept yet). */
    int64_t span_from, span_until, span_offset_s;
};

struct tz_cache {
    struct tz_slot slots[TZ_CACHE_SLOTS];
    uint64_t tick;
};

static _Thread_local struct tz_cache tz_cache;

/* Zone ids are short ASCII names ("America/Port-au-Prince", "Etc/GMT+5");
 * anything else is refused before a file name is made of it ('.' is not
 * allowed, so no name climbs out of the zone directory). */
static bool
tz_name_ok(const char *zone)
{
    size_t n = 0;

    for (; zone[n] != '\0'; n++) {
        char c = zone[n];
        bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                  c == '/' || c == '_' || c == '-' || c == '+';
        if (!ok || n + 1 >= TIME_ZONE_NAME_MAX) {
            return false;
        }
    }
    return n > 0 && zone[0] != '/';
}

/* The cache slot of `zone`, found or loaded. */
static int
tz_slot_get(const char *zone, struct tz_slot **out, struct eng_error *err)
{
    struct tz_cache *cache = &tz_cache;
    struct tz_slot *slot = NULL;

    if (zone == NULL) {
        return eng_error_set(err, ENG_EINVAL, "missing time zone: %s", TZ_EXPECTED);
    }
    for (int i = 0; i < TZ_CACHE_SLOTS && slot == NULL; i++) {
        if (cache->slots[i].tz != NULL && strcmp(cache->slots[i].zone, zone) == 0) {
            slot = &cache->slots[i];
        }
    }
    if (slot == NULL) {
        if (!tz_name_ok(zone)) {
            return eng_error_set(err, ENG_EINVAL, "invalid time zone name: %s", TZ_EXPECTED);
        }
        const struct tzif_zone *tz = tzif_find(zone);
        if (tz == NULL) {
            return eng_error_set(err, ENG_EINVAL, "unknown time zone \"%s\": %s", zone,
                                 TZ_EXPECTED);
        }
        slot = &cache->slots[0];
        for (int i = 1; i < TZ_CACHE_SLOTS && slot->tz != NULL; i++) {
            if (cache->slots[i].tz == NULL || cache->slots[i].used < slot->used) {
                slot = &cache->slots[i];
            }
        }
        snprintf(slot->zone, sizeof slot->zone, "%s", zone);
        slot->tz = tz;
        slot->span_from = 1;
        slot->span_until = 0;
    }
    slot->used = ++cache->tick;
    *out = slot;
    return 0;
}

/* The offset in force at t, from the slot's span when t is inside it. */
static int64_t
tz_slot_offset(struct tz_slot *slot, int64_t t)
{
    if (slot->span_from <= t && t < slot->span_until) {
        return slot->span_offset_s;
    }
    slot->span_offset_s = tzif_offset(slot->tz, t, &slot->span_from, &slot->span_until);
    return slot->span_offset_s;
}

bool
tz_valid(const char *zone)
{
    return zone != NULL && tz_name_ok(zone) && tzif_find(zone) != NULL;
}

bool
currency_valid(const char *code)
{
    /* Three capital letters that ICU's currency data knows as an ISO 4217
     * code, current or historic. */
    if (code == NULL || strlen(code) != 3) {
        return false;
    }
    UChar iso[4];
    for (int i = 0; i < 3; i++) {
        if (code[i] < 'A' || code[i] > 'Z') {
            return false;
        }
        iso[i] = (UChar)code[i];
    }
    iso[3] = 0;
    UErrorCode st = U_ZERO_ERROR;
    UBool known = ucurr_isAvailable(iso, U_DATE_MIN, U_DATE_MAX, &st);
    return U_SUCCESS(st) && known;
}

int
tz_local_midnight(const char *zone, struct civil_date date, int64_t *out, struct eng_error *err)
{
    struct tz_slot *slot;

    int rc = tz_slot_get(zone, &slot, err);
    if (rc != 0) {
        return rc;
    }
    if (!date_valid(date)) {
        return eng_error_set(err, ENG_EINVAL, "expected a real date in years 0001..9999");
    }
    /* The first instant whose local time is at or after local midnight L.
     * Walk the zone's spans from two days before L (every offset is within
     * +-26 h): inside a span local time runs on with UTC, so the span
     * reaches L at L - offset, or has passed it at its start when clocks
     * jumped over L (a gap: America/Sao_Paulo until 2019 sprang forward at
     * 00:00; the day then begins at the jump).  When clocks go back over
     * midnight (America/Havana in November) the first midnight is the one
     * found, as the walk goes forward. */
    int64_t local = date_to_days(date) * SECS_PER_DAY;
    int64_t t = local - 2 * SECS_PER_DAY;
    for (int i = 0; i < 64; i++) {
        int64_t from, until;
        int64_t off = tzif_offset(slot->tz, t, &from, &until);
        int64_t at = local - off;
        if (at < until) {
            *out = at > t ? at : t;
            return 0;
        }
        t = until;
    }
    return eng_error_set(err, ENG_EINVAL, "time zone \"%s\" has no offset there", zone);
}

int
tz_offset_until(const char *zone, int64_t t, int64_t *offset_s, int64_t *until,
                struct eng_error *err)
{
    struct tz_slot *slot;
    int rc = tz_slot_get(zone, &slot, err);
    if (rc != 0) {
        return rc;
    }
    if (t < TIME_MIN_S || t > TIME_MAX_S) {
        return eng_error_set(err, ENG_EINVAL, "time is outside years 0001..9999");
    }
    *offset_s = tz_slot_offset(slot, t);
    *until = slot->span_until == INT64_MAX ? TIME_NEVER : slot->span_until;
    return 0;
}

int
tz_local_time(const char *zone, int64_t t, struct civil_time *out, struct eng_error *err)
{
    int64_t offset_s = 0, until = 0;
    int rc = tz_offset_until(zone, t, &offset_s, &until, err);
    if (rc != 0) {
        return rc;
    }
    int64_t local = t + offset_s;
    int64_t days = floor_div(local, SECS_PER_DAY);
    int secs = (int)(local - days * SECS_PER_DAY);
    struct civil_date d = date_from_days(days);
    if (!date_valid(d)) {
        return eng_error_set(err, ENG_EINVAL, "local time is outside years 0001..9999");
    }
    out->year = d.year;
    out->month = d.month;
    out->day = d.day;
    out->hour = secs / 3600;
    out->minute = secs / 60 % 60;
    out->second = secs % 60;
    out->wday = date_wday(d);
    /* Historic local mean times have offsets with seconds (Paris LMT was
     * +00:09:21); minutes are rounded toward zero. */
    out->offset_min = (int)(offset_s / 60);
    return 0;
}


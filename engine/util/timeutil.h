/* timeutil.h - instants, civil dates, time zones and credit periods.
 *
 * An instant is int64 seconds since the Unix epoch (UTC).  Civil dates are
 * proleptic Gregorian.  Zone conversions read the system's tz database
 * (tzif.h: Debian's tzdata, kept current by the distribution; ICU 72's own
 * copy stopped at 2022e, before Mexico dropped DST and Kazakhstan moved to
 * one zone).  Every function is pure given the tz database, thread-safe,
 * and never allocates on the caller's behalf.
 *
 * Periods ("weekly", "monthly", "quarterly", "yearly") are calendar periods
 * in a building's zone: weeks start Monday 00:00 local, months on the 1st,
 * quarters on 1 Jan/Apr/Jul/Oct, years on 1 Jan.  Period boundaries are local
 * midnights converted to UTC instants, so a period around a DST change is 23
 * or 25 hours long (for a day) and months are never "30 days". */
#ifndef ENG_TIMEUTIL_H
#define ENG_TIMEUTIL_H

#include <stdbool.h>
#include <stdint.h>

#include "error.h"

#define TIME_NEVER INT64_MAX /* "valid forever": sorts after every real instant */
#define TIME_ZONE_NAME_MAX 64

struct civil_date {
    int year;  /* 1..9999 */
    int month; /* 1..12 */
    int day;   /* 1..31 */
};

struct civil_time {
    int year, month, day;
    int hour, minute, second;
    int wday;       /* ISO weekday: 1 = Monday .. 7 = Sunday */
    int offset_min; /* zone offset from UTC in minutes at that instant */
};

enum period_kind {
    PERIOD_NONE = 0, /* a "once" allocation: no recurrence */
    PERIOD_WEEK,
    PERIOD_MONTH,
    PERIOD_QUARTER,
    PERIOD_YEAR
};

/* Parses "none", "weekly", "monthly", "quarterly", "yearly".  Returns 0 or
 * ENG_EINVAL. */
int period_kind_parse(const char *s, enum period_kind *out, struct eng_error *err);
/* The recurrence name of a kind ("none", "weekly", ...); static string. */
const char *period_kind_name(enum period_kind kind);

/* True when `zone` is a zone or link the system's tz database lists (e.g.
 * "Europe/Paris", "UTC", "US/Eastern").  Unknown or empty names, the
 * database's other trees ("posix/...", "right/...") and "Etc/Unknown" are
 * false. */
bool tz_valid(const char *zone);
/* True for an ISO 4217 currency code (three capitals ICU knows). */
bool currency_valid(const char *code);

/* The UTC instant of local midnight starting `date` in `zone`.  When midnight
 * does not exist (a DST gap at 00:00), the first instant of that day.
 * Returns 0 or ENG_EINVAL (bad zone or date). */
int tz_local_midnight(const char *zone, struct civil_date date, int64_t *out,
                      struct eng_error *err);

/* Breaks instant `t` into local civil time in `zone`.  Returns 0 or
 * ENG_EINVAL. */
int tz_local_time(const char *zone, int64_t t, struct civil_time *out, struct eng_error *err);

/* The UTC offset (seconds) in force at instant t in `zone`, and the first
 * instant after t at which it may change (*until; TIME_NEVER when it never
 * does).  Returns 0 or ENG_EINVAL. */
int tz_offset_until(const char *zone, int64_t t, int64_t *offset_s, int64_t *until,
                    struct eng_error *err);

/* Civil date arithmetic (no zone involved). */
bool date_valid(struct civil_date d);
struct civil_date date_add_days(struct civil_date d, int days);
/* Adds months, clamping the day to the target month's length
 * (31 Jan + 1 month = 28/29 Feb). */
struct civil_date date_add_months(struct civil_date d, int months);
/* Days since 1970-01-01 (negative before). */
int64_t date_to_days(struct civil_date d);
struct civil_date date_from_days(int64_t days);
/* ISO weekday of a date, 1 = Monday .. 7 = Sunday. */
int date_wday(struct civil_date d);
/* Compares two dates: <0, 0, >0. */
int date_cmp(struct civil_date a, struct civil_date b);

/* The civil date on which the period of `kind` containing date `d` begins
 * (Monday of its week, 1st of its month/quarter/year).  PERIOD_NONE returns d. */
struct civil_date period_start_date(enum period_kind kind, struct civil_date d);
/* The start date of the period `n` periods after the one beginning at
 * `start` (which must itself be a period start). n may be negative. */
struct civil_date period_add(enum period_kind kind, struct civil_date start, int64_t n);
/* Number of whole periods from the period containing `a` to the period
 * containing `b` (0 when the same period; negative when b is earlier). */
int64_t period_index(enum period_kind kind, struct civil_date a, struct civil_date b);

/* Parsing and formatting.  All return 0 or ENG_EINVAL with a message that
 * names what was expected. */
/* RFC 3339 date-time: "2026-01-15T10:00:00Z", "2026-01-15T11:00:00+01:00",
 * 't'/'z' accepted in lower case.  Fractional seconds are accepted only when
 * all their digits are zero ("10:00:00.000Z"); any other fraction fails with
 * ENG_EINVAL "sub-second times are not supported".  Years 0001..9999 only. */
int time_parse_rfc3339(const char *s, int64_t *out, struct eng_error *err);
/* Writes "YYYY-MM-DDTHH:MM:SSZ" (UTC) into buf (>= 21 bytes). */
void time_format_rfc3339(int64_t t, char *buf, size_t buf_len);
/* "YYYY-MM-DD", strictly, and a real calendar date. */
int date_parse(const char *s, struct civil_date *out, struct eng_error *err);
/* Writes "YYYY-MM-DD" into buf (>= 11 bytes). */
void date_format(struct civil_date d, char *buf, size_t buf_len);
/* "YYYY-MM" into a date with day 1. */
int month_parse(const char *s, struct civil_date *out, struct eng_error *err);
/* Writes "YYYY-MM" into buf (>= 8 bytes). */
void month_format(struct civil_date d, char *buf, size_t buf_len);

#endif

/* tzif.c - the system's time zone database (tzif.h).
 *
 * A zone is its table of transitions (instant, offset after it) and, for
 * every instant from its last transition on, the POSIX TZ rule of the
 * file's footer.  Files are read whole, every count and index checked
 * against the file's length before use: a truncated or foreign file is
 * refused, never half read.  Zones with leap-second records (the "right/"
 * tree) are refused too: our instants count no leap seconds.
 *
 * Loaded zones live in one list behind a mutex until the process ends; the
 * callers (timeutil.c) keep a few per thread, so the mutex is taken only
 * on a thread's first use of a zone. */
#include "tzif.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SECS_PER_DAY 86400
#define TZIF_FILE_MAX (1 << 20)    /* real zone files are under 4 KiB */
#define TZIF_NAMES_MAX (4 << 20)   /* tzdata.zi is ~110 KiB */
#define OFFSET_ABS_MAX (26 * 3600) /* RFC 8536: -89,999 .. 93,599 */
#define RULE_HOURS_MAX 167         /* a rule's time of day (RFC 8536 section 3.3.1) */
#define TZ_DIR_DEFAULT "/usr/share/zoneinfo"
#define TZIF_NAME_MAX 64

enum rule_kind {
    RULE_JULIAN1, /* "Jn": day 1..365 of the year, 29 February never counted */
    RULE_DAY0,    /* "n": day 0..365, 29 February counted */
    RULE_MWD      /* "Mm.w.d": weekday d (0 = Sunday) of week w (5 = last) of month m */
};

struct rule_date {
    enum rule_kind kind;
    int n, m, w, d;
    int32_t time; /* seconds after local midnight; may be negative or past 24 h */
};

struct tzif_zone {
    char *name;
    int64_t *at;        /* transition instants, strictly ascending */
    int32_t *off;       /* the offset from each transition on */
    size_t n;
    int32_t off_before; /* before the first transition: the file's type 0 */
    bool has_rule;      /* the footer governs from at[n - 1] on (from always, n = 0) */
    bool has_dst;
    int32_t std_off, dst_off;
    struct rule_date start, end; /* DST starts (standard local time), ends (DST local) */
    struct tzif_zone *next;
};

/* ---- POSIX TZ rules ----------------------------------------------------- */

static int64_t
floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

/* Civil dates as days since 1970-01-01 (proleptic Gregorian), counted in
 * 400-year eras of 146,097 days that begin on 1 March, so that a leap day
 * is the last day of its year.  Only what the rules need; timeutil.c has
 * the full set, which builds on this module. */
static int64_t
days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = floor_div(y, 400);
    int64_t yoe = y - era * 400;                                  /* 0..399 */
    int64_t doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1; /* 0..365 */
    return era * 146097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719468;
}

static int64_t
year_from_days(int64_t days)
{
    int64_t z = days + 719468;
    int64_t era = floor_div(z, 146097);
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153; /* 0 = March .. 11 = February */
    return yoe + era * 400 + (mp >= 10);
}

static bool
is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static bool
is_alpha(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

/* An abbreviation: three or more letters, or "<...>" of letters, digits,
 * '+' and '-' ("<+0330>"). */
static bool
rule_name(const char **p)
{
    const char *s = *p;
    const char *b;

    if (*s == '<') {
        b = ++s;
        while (is_alpha(*s) || is_digit(*s) || *s == '+' || *s == '-') {
            s++;
        }
        if (*s != '>' || s - b < 3) {
            return false;
        }
        *p = s + 1;
        return true;
    }
    b = s;
    while (is_alpha(*s)) {
        s++;
    }
    *p = s;
    return s - b >= 3;
}

/* Up to `max_digits` digits as an int in [lo, hi]. */
static bool
rule_int(const char **p, int max_digits, int lo, int hi, int *out)
{
    const char *s = *p;
    int v = 0, k = 0;

    while (is_digit(*s) && k < max_digits) {
        v = v * 10 + (*s++ - '0');
        k++;
    }
    if (k == 0 || is_digit(*s) || v < lo || v > hi) {
        return false;
    }
    *p = s;
    *out = v;
    return true;
}

/* [+-]h[h[h]][:mm[:ss]] in seconds, hours at most max_h. */
static bool
rule_hms(const char **p, int max_h, int32_t *out)
{
    const char *s = *p;
    int sign = 1, h = 0, m = 0, sec = 0;

    if (*s == '+' || *s == '-') {
        sign = *s++ == '-' ? -1 : 1;
    }
    if (!rule_int(&s, 3, 0, max_h, &h)) {
        return false;
    }
    if (*s == ':') {
        s++;
        if (!rule_int(&s, 2, 0, 59, &m)) {
            return false;
        }
        if (*s == ':') {
            s++;
            if (!rule_int(&s, 2, 0, 59, &sec)) {
                return false;
            }
        }
    }
    *p = s;
    *out = sign * (h * 3600 + m * 60 + sec);
    return true;
}

static bool
rule_date(const char **p, struct rule_date *r)
{
    const char *s = *p;
    bool ok;

    if (*s == 'J') {
        s++;
        r->kind = RULE_JULIAN1;
        ok = rule_int(&s, 3, 1, 365, &r->n);
    } else if (*s == 'M') {
        s++;
        r->kind = RULE_MWD;
        ok = rule_int(&s, 2, 1, 12, &r->m) && *s++ == '.' && rule_int(&s, 1, 1, 5, &r->w) &&
             *s++ == '.' && rule_int(&s, 1, 0, 6, &r->d);
    } else {
        r->kind = RULE_DAY0;
        ok = rule_int(&s, 3, 0, 365, &r->n);
    }
    r->time = 2 * 3600;
    if (ok && *s == '/') {
        s++;
        ok = rule_hms(&s, RULE_HOURS_MAX, &r->time);
    }
    *p = s;
    return ok;
}

/* "std offset [dst [offset] [,start[/time],end[/time]]]". */
static bool
rule_parse(const char *s, struct tzif_zone *z)
{
    int32_t v;

    if (!rule_name(&s) || !rule_hms(&s, 24, &v)) {
        return false;
    }
    z->std_off = -v;
    z->has_rule = true;
    z->has_dst = false;
    if (*s == '\0') {
        return true;
    }
    if (!rule_name(&s)) {
        return false;
    }
    z->has_dst = true;
    z->dst_off = z->std_off + 3600;
    if (*s != ',' && *s != '\0') {
        if (!rule_hms(&s, 24, &v)) {
            return false;
        }
        z->dst_off = -v;
    }
    if (*s == '\0') {
        /* No dates: the United States' rules, as glibc assumes. */
        z->start = (struct rule_date){RULE_MWD, 0, 3, 2, 0, 2 * 3600};
        z->end = (struct rule_date){RULE_MWD, 0, 11, 1, 0, 2 * 3600};
        return true;
    }
    return *s++ == ',' && rule_date(&s, &z->start) && *s++ == ',' && rule_date(&s, &z->end) &&
           *s == '\0';
}

/* The day (days since 1970-01-01) a rule date falls on in `year`. */
static int64_t
rule_day(const struct rule_date *r, int64_t year)
{
    int64_t jan1 = days_from_civil(year, 1, 1);
    bool leap = days_from_civil(year, 3, 1) - jan1 == 60;

    switch (r->kind) {
    case RULE_JULIAN1:
        return jan1 + r->n - 1 + (leap && r->n >= 60 ? 1 : 0);
    case RULE_DAY0:
        return jan1 + r->n;
    case RULE_MWD:
    default: {
        int64_t day1 = days_from_civil(year, r->m, 1);
        int64_t next = r->m == 12 ? days_from_civil(year + 1, 1, 1)
                                  : days_from_civil(year, r->m + 1, 1);
        int64_t wd1 = day1 + 4 - 7 * floor_div(day1 + 4, 7); /* 0 = Sunday (1970-01-01: 4) */
        int64_t day = day1 + (r->d - wd1 + 7) % 7 + 7 * (r->w - 1);
        while (day >= next) {
            day -= 7;
        }
        return day;
    }
    }
}

struct rule_event {
    int64_t at;
    int32_t off;
    int starts; /* 1: DST starts; sorts after an end at the same instant */
};

/* The offset the footer rule gives at t, and its span. */
static int64_t
rule_offset(const struct tzif_zone *z, int64_t t, int64_t *from, int64_t *until)
{
    struct rule_event ev[6];
    int64_t year;
    int i, last = -1;

    if (!z->has_dst) {
        *from = INT64_MIN;
        *until = INT64_MAX;
        return z->std_off;
    }
    /* Far instants are clamped first (the sum must not overflow); their
     * year is then saturated, and the span below not kept. */
    int64_t near = t < -(INT64_C(1) << 50) ? -(INT64_C(1) << 50)
                   : t > (INT64_C(1) << 50) ? (INT64_C(1) << 50)
                                             : t;
    year = year_from_days(floor_div(near + z->std_off, SECS_PER_DAY));
    for (i = 0; i < 3; i++) {
        int64_t y = year - 1 + i;
        ev[2 * i] = (struct rule_event){
            rule_day(&z->end, y) * SECS_PER_DAY + z->end.time - z->dst_off, z->std_off, 0};
        ev[2 * i + 1] = (struct rule_event){
            rule_day(&z->start, y) * SECS_PER_DAY + z->start.time - z->std_off, z->dst_off, 1};
    }
    /* Insertion sort by instant, an end before a start at the same one (a
     * zone on DST all year ends and restarts it at one instant). */
    for (i = 1; i < 6; i++) {
        struct rule_event e = ev[i];
        int j = i - 1;
        while (j >= 0 && (ev[j].at > e.at || (ev[j].at == e.at && ev[j].starts > e.starts))) {
            ev[j + 1] = ev[j];
            j--;
        }
        ev[j + 1] = e;
    }
    for (i = 0; i < 6; i++) {
        if (ev[i].at <= t) {
            last = i;
        }
    }
    if (last <= 0 || last >= 5) {
        /* Not between two of the three years' events (cannot happen for a
         * sane rule): the offset of the nearest one, and no span kept. */
        *from = t;
        *until = t + 1;
        if (last < 0) {
            return ev[0].starts ? z->std_off : z->dst_off;
        }
        return ev[last].off;
    }
    *from = ev[last].at;
    *until = ev[last + 1].at;
    return ev[last].off;
}

/* ---- TZif files ----------------------------------------------------------- */

static uint32_t
be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static int64_t
be64s(const unsigned char *p)
{
    return (int64_t)((uint64_t)be32(p) << 32 | be32(p + 4));
}

static int64_t
be32s(const unsigned char *p)
{
    return (int32_t)be32(p);
}

struct tzif_counts {
    size_t isut, isstd, leap, time, type, chars;
};

static void
tzif_read_counts(const unsigned char *h, struct tzif_counts *c)
{
    c->isut = be32(h + 20);
    c->isstd = be32(h + 24);
    c->leap = be32(h + 28);
    c->time = be32(h + 32);
    c->type = be32(h + 36);
    c->chars = be32(h + 40);
}

/* Bytes of a data block after its 44-byte header, with `w`-byte times. */
static size_t
tzif_block_len(const struct tzif_counts *c, size_t w)
{
    return c->time * (w + 1) + c->type * 6 + c->chars + c->leap * (w + 4) + c->isstd + c->isut;
}

void
tzif_zone_free(struct tzif_zone *z)
{
    if (z != NULL) {
        free(z->name);
        free(z->at);
        free(z->off);
        free(z);
    }
}

/* A zone from a whole TZif file; NULL when it is not a sound one. */
struct tzif_zone *
tzif_zone_from_bytes(const unsigned char *b, size_t len)
{
    struct tzif_counts c;
    size_t w = 4, data, block;

    if (len < 44 || memcmp(b, "TZif", 4) != 0) {
        return NULL;
    }
    tzif_read_counts(b, &c);
    block = tzif_block_len(&c, 4);
    data = 44;
    if (b[4] >= '2') {
        /* Skip the 32-bit block to the 64-bit one, which follows its own
         * header. */
        if (c.time > len || c.type > len || c.chars > len || c.leap > len || block > len ||
            44 + block + 44 > len) {
            return NULL;
        }
        const unsigned char *h2 = b + 44 + block;
        if (memcmp(h2, "TZif", 4) != 0) {
            return NULL;
        }
        tzif_read_counts(h2, &c);
        w = 8;
        data = 44 + block + 44;
    }
    if (c.time > len || c.type > len || c.chars > len || c.leap > len || c.isstd > len ||
        c.isut > len) {
        return NULL;
    }
    block = tzif_block_len(&c, w);
    if (block > len - data || c.type == 0 || c.type > 256 || c.leap != 0) {
        return NULL;
    }
    const unsigned char *times = b + data;
    const unsigned char *idx = times + c.time * w;
    const unsigned char *types = idx + c.time;
    int32_t offs[256];
    for (size_t i = 0; i < c.type; i++) {
        int64_t o = be32s(types + 6 * i);
        if (o < -OFFSET_ABS_MAX || o > OFFSET_ABS_MAX || types[6 * i + 4] > 1 ||
            types[6 * i + 5] >= c.chars) {
            return NULL;
        }
        offs[i] = (int32_t)o;
    }

    struct tzif_zone *z = calloc(1, sizeof *z);
    if (z == NULL) {
        return NULL;
    }
    z->n = c.time;
    z->off_before = offs[0];
    z->at = malloc((c.time ? c.time : 1) * sizeof *z->at);
    z->off = malloc((c.time ? c.time : 1) * sizeof *z->off);
    if (z->at == NULL || z->off == NULL) {
        tzif_zone_free(z);
        return NULL;
    }
    for (size_t i = 0; i < c.time; i++) {
        z->at[i] = w == 8 ? be64s(times + 8 * i) : be32s(times + 4 * i);
        if (idx[i] >= c.type || (i > 0 && z->at[i] <= z->at[i - 1])) {
            tzif_zone_free(z);
            return NULL;
        }
        z->off[i] = offs[idx[i]];
    }

    /* The footer of a version 2+ file: "\n" rule "\n"; an empty rule
     * leaves the last transition's offset in force. */
    if (w == 8) {
        const unsigned char *f = b + data + block;
        size_t flen = len - data - block;
        char rule[128];
        if (flen < 2 || f[0] != '\n' || f[flen - 1] != '\n' || flen - 2 >= sizeof rule ||
            memchr(f + 1, '\n', flen - 2) != NULL || memchr(f + 1, '\0', flen - 2) != NULL) {
            tzif_zone_free(z);
            return NULL;
        }
        memcpy(rule, f + 1, flen - 2);
        rule[flen - 2] = '\0';
        if (rule[0] != '\0' && !rule_parse(rule, z)) {
            tzif_zone_free(z);
            return NULL;
        }
    }
    if (z->has_rule &&
        (z->std_off < -OFFSET_ABS_MAX || z->std_off > OFFSET_ABS_MAX ||
         (z->has_dst && (z->dst_off < -OFFSET_ABS_MAX || z->dst_off > OFFSET_ABS_MAX)))) {
        tzif_zone_free(z);
        return NULL;
    }
    return z;
}

struct tzif_zone *
tzif_zone_from_rule(const char *rule)
{
    struct tzif_zone *z = calloc(1, sizeof *z);

    if (z == NULL) {
        return NULL;
    }
    if (rule == NULL || !rule_parse(rule, z)) {
        free(z);
        return NULL;
    }
    z->off_before = z->std_off;
    return z;
}

int64_t
tzif_offset(const struct tzif_zone *z, int64_t t, int64_t *from, int64_t *until)
{
    if (z->n == 0 || t < z->at[0]) {
        if (z->n == 0 && z->has_rule) {
            return rule_offset(z, t, from, until);
        }
        *from = INT64_MIN;
        *until = z->n == 0 ? INT64_MAX : z->at[0];
        return z->off_before;
    }
    size_t lo = 0, hi = z->n - 1; /* the last transition at or before t */
    while (lo < hi) {
        size_t mid = lo + (hi - lo + 1) / 2;
        if (z->at[mid] <= t) {
            lo = mid;
        } else {
            hi = mid - 1;
        }
    }
    if (lo == z->n - 1 && z->has_rule) {
        int64_t off = rule_offset(z, t, from, until);
        if (*from < z->at[lo]) {
            *from = z->at[lo];
        }
        return off;
    }
    *from = z->at[lo];
    *until = lo + 1 < z->n ? z->at[lo + 1] : INT64_MAX;
    return z->off[lo];
}

/* ---- the database ------------------------------------------------------- */

static pthread_once_t names_once = PTHREAD_ONCE_INIT;
static const char *tz_dir = TZ_DIR_DEFAULT;
static char **names;    /* the zones and links tzdata.zi lists, sorted */
static size_t names_n;
static bool names_listed; /* false: no tzdata.zi, any zone file but a few goes */

static pthread_mutex_t zones_mu = PTHREAD_MUTEX_INITIALIZER;
static struct tzif_zone *zones;

/* A whole file into a fresh buffer, at most `max` bytes; NULL on failure. */
static unsigned char *
read_file(const char *path, size_t max, size_t *len)
{
    FILE *f = fopen(path, "rb");
    unsigned char *buf;

    if (f == NULL) {
        return NULL;
    }
    buf = malloc(max + 1);
    if (buf != NULL) {
        *len = fread(buf, 1, max + 1, f);
        if (ferror(f) || *len > max) {
            free(buf);
            buf = NULL;
        }
    }
    fclose(f);
    return buf;
}

static int
name_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The n-th space-separated field of a line (1-based), copied to out. */
static bool
line_field(const char *line, const char *end, int n, char *out, size_t out_len)
{
    const char *p = line;

    for (int k = 1; k < n; k++) {
        while (p < end && *p != ' ') {
            p++;
        }
        while (p < end && *p == ' ') {
            p++;
        }
    }
    size_t m = 0;
    while (p + m < end && p[m] != ' ') {
        m++;
    }
    if (m == 0 || m >= out_len) {
        return false;
    }
    memcpy(out, p, m);
    out[m] = '\0';
    return true;
}

/* The names tzdata.zi declares: "Z name ..." for zones, "L target name" for
 * links.  Lines are short and few (~600 names). */
static void
names_load(void)
{
    const char *dir = getenv("TZDIR");
    char path[512];
    size_t len = 0, cap = 0;
    unsigned char *text;

    if (dir != NULL && dir[0] != '\0' && strlen(dir) < 256) {
        tz_dir = dir;
    }
    snprintf(path, sizeof path, "%s/tzdata.zi", tz_dir);
    text = read_file(path, TZIF_NAMES_MAX, &len);
    if (text == NULL) {
        return;
    }
    for (const char *line = (const char *)text, *end; line < (const char *)text + len;
         line = end + 1) {
        end = memchr(line, '\n', (size_t)((const char *)text + len - line));
        if (end == NULL) {
            end = (const char *)text + len;
        }
        char name[TZIF_NAME_MAX];
        bool zone = end - line > 2 && line[0] == 'Z' && line[1] == ' ';
        bool link = end - line > 2 && line[0] == 'L' && line[1] == ' ';
        if (!(zone || link) || !line_field(line, end, zone ? 2 : 3, name, sizeof name)) {
            continue;
        }
        if (names_n == cap) {
            size_t ncap = cap ? cap * 2 : 1024;
            char **grown = realloc(names, ncap * sizeof *names);
            if (grown == NULL) {
                break;
            }
            names = grown;
            cap = ncap;
        }
        names[names_n] = strdup(name);
        if (names[names_n] != NULL) {
            names_n++;
        }
    }
    free(text);
    qsort(names, names_n, sizeof *names, name_cmp);
    names_listed = names_n > 0;
}

static bool
name_listed(const char *name)
{
    if (names_listed) {
        return bsearch(&name, names, names_n, sizeof *names, name_cmp) != NULL;
    }
    /* No list: any zone file, but not the trees of other formats nor the
     * files that are not zones of their own. */
    return strncmp(name, "posix/", 6) != 0 && strncmp(name, "right/", 6) != 0 &&
           strcmp(name, "localtime") != 0 && strcmp(name, "posixrules") != 0;
}

static struct tzif_zone *
zone_load(const char *name)
{
    char path[512];
    size_t len = 0;
    unsigned char *buf;
    struct tzif_zone *z;

    if ((size_t)snprintf(path, sizeof path, "%s/%s", tz_dir, name) >= sizeof path) {
        return NULL;
    }
    buf = read_file(path, TZIF_FILE_MAX, &len);
    if (buf == NULL) {
        return NULL;
    }
    z = tzif_zone_from_bytes(buf, len);
    free(buf);
    if (z != NULL && (z->name = strdup(name)) == NULL) {
        tzif_zone_free(z);
        z = NULL;
    }
    return z;
}

const struct tzif_zone *
tzif_find(const char *name)
{
    struct tzif_zone *z;

    if (name == NULL || name[0] == '\0' || name[0] == '/' || strstr(name, "..") != NULL) {
        return NULL;
    }
    pthread_once(&names_once, names_load);
    if (!name_listed(name)) {
        return NULL;
    }
    pthread_mutex_lock(&zones_mu);
    for (z = zones; z != NULL && strcmp(z->name, name) != 0; z = z->next) {
    }
    if (z == NULL) {
        z = zone_load(name);
        if (z != NULL) {
            z->next = zones;
            zones = z;
        }
    }
    pthread_mutex_unlock(&zones_mu);
    return z;
}

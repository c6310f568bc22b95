/* values.c - roles, ids, and JSON helpers for times and stored text. */
#include "values.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "error.h"
#include "timeutil.h"

static const char *const role_names[ROLE_COUNT] = {"super_admin", "manager", "viewer",
                                                   "tenant_admin", "tenant_user"};

const char *
role_name(enum role role)
{
    return role >= 0 && role < ROLE_COUNT ? role_names[role] : "unknown";
}

int
role_parse(const char *s, enum role *out)
{
    for (int i = 0; s != NULL && i < ROLE_COUNT; i++) {
        if (strcmp(s, role_names[i]) == 0) {
            *out = (enum role)i;
            return 0;
        }
    }
    return ENG_EINVAL;
}

bool
role_is_admin(enum role role)
{
    return role == ROLE_SUPER_ADMIN || role == ROLE_MANAGER || role == ROLE_VIEWER;
}

void
id_format(const char *prefix, int64_t id, char *buf, size_t len)
{
    /* Digit by digit when it surely fits (ids are positive): ids are
     * formatted many times per request, and snprintf costs ~1,500
     * instructions each. */
    size_t n = strlen(prefix);
    if (id <= 0 || len < n + 21) {
        snprintf(buf, len, "%s_%" PRId64, prefix, id);
        return;
    }
    char digits[20];
    int k = 0;
    for (uint64_t v = (uint64_t)id; v > 0; v /= 10) {
        digits[k++] = (char)('0' + v % 10);
    }
    memcpy(buf, prefix, n);
    buf[n++] = '_';
    while (k > 0) {
        buf[n++] = digits[--k];
    }
    buf[n] = '\0';
}

json_t *
id_json(const char *prefix, int64_t id)
{
    char buf[48];
    id_format(prefix, id, buf, sizeof buf);
    return json_string_nocheck(buf); /* ASCII: no UTF-8 check needed */
}

int
id_parse(const char *prefix, const char *s, int64_t *out)
{
    size_t n = strlen(prefix);
    if (s == NULL || strncmp(s, prefix, n) != 0 || s[n] != '_' || s[n + 1] < '1' ||
        s[n + 1] > '9' || strlen(s + n + 1) > 18) {
        return ENG_ENOTFOUND;
    }
    int64_t v = 0;
    for (const char *p = s + n + 1; *p; p++) {
        if (*p < '0' || *p > '9') {
            return ENG_ENOTFOUND;
        }
        v = v * 10 + (*p - '0');
    }
    *out = v;
    return 0;
}

json_t *
json_time(int64_t t)
{
    if (t == TIME_NEVER) {
        return json_null();
    }
    char buf[32];
    time_format_rfc3339(t, buf, sizeof buf);
    return json_string_nocheck(buf); /* ASCII: no UTF-8 check needed */
}

json_t *
json_from_text(const char *text)
{
    json_t *v = text ? json_loads(text, JSON_DECODE_ANY, NULL) : NULL;
    return v != NULL ? v : json_null();
}

char *
json_to_text(const json_t *v)
{
    return json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY | JSON_REAL_PRECISION(15));
}

bool
utf8_valid(const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s, *end = p + n;
    while (p < end) {
        unsigned c = *p;
        size_t len;
        uint32_t cp;
        if (c == 0) {
            return false;
        } else if (c < 0x80) {
            p++;
            continue;
        } else if (c >= 0xC2 && c <= 0xDF) {
            len = 2;
            cp = c & 0x1F;
        } else if (c >= 0xE0 && c <= 0xEF) {
            len = 3;
            cp = c & 0x0F;
        } else if (c >= 0xF0 && c <= 0xF4) {
            len = 4;
            cp = c & 0x07;
        } else {
            return false;
        }
        if ((size_t)(end - p) < len) {
            return false;
        }
        for (size_t i = 1; i < len; i++) {
            if ((p[i] & 0xC0) != 0x80) {
                return false;
            }
            cp = (cp << 6) | (p[i] & 0x3Fu);
        }
        /* Overlong forms, surrogates and values past U+10FFFF. */
        if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10FFFF)) ||
            (cp >= 0xD800 && cp <= 0xDFFF)) {
            return false;
        }
        p += len;
    }
    return true;
}

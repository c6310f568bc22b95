/* fuzz_csv.c - the CSV writer (csv.h).  The input is split into fields at
 * 0x1f and rows at 0x1e; each field is written as text, as a number when
 * its first byte is '#', or as a JSON array of two strings when it is '['.
 * The output is read back with an RFC 4180 reader written here: every
 * field must come back as written (text that looks like a formula with
 * its leading apostrophe), so quoting can never be broken from inside a
 * field, and no text field may start like a formula. */
#include <stdbool.h>

#include "csv.h"
#include "fuzz_util.h"

/* Reads one field at *p; returns a new string, advances *p past it, and
 * sets *end_row when the row ends after it.  NULL on malformed text. */
static char *
read_field(const char **p, const char *end, bool *end_row)
{
    const char *q = *p;
    size_t cap = (size_t)(end - q) + 1, n = 0;
    char *out = malloc(cap);
    FUZZ_ASSERT(out != NULL);
    if (q < end && *q == '"') {
        for (q++;; q++) {
            if (q >= end) {
                free(out);
                return NULL; /* unterminated quote */
            }
            if (*q == '"') {
                if (q + 1 < end && q[1] == '"') {
                    out[n++] = '"';
                    q++;
                    continue;
                }
                q++;
                break;
            }
            out[n++] = *q;
        }
    } else {
        while (q < end && *q != ',' && *q != '\r' && *q != '"') {
            out[n++] = *q++;
        }
    }
    out[n] = '\0';
    if (q < end && *q == ',') {
        *end_row = false;
        q++;
    } else if (q + 1 < end && q[0] == '\r' && q[1] == '\n') {
        *end_row = true;
        q += 2;
    } else {
        free(out);
        return NULL;
    }
    *p = q;
    return out;
}

static bool
formula_like(const char *s)
{
    return s[0] != '\0' && strchr("=+-@\t\r", s[0]) != NULL;
}

/* Writes the field start[0..flen) into c the way its first byte says, and
 * returns (new) the text a reader must get back. */
static char *
write_field(struct csv *c, const char *start, size_t flen)
{
    char *want;
    char *field = malloc(flen + 2);
    FUZZ_ASSERT(field != NULL);
    memcpy(field, start, flen);
    field[flen] = '\0';
    if (field[0] == '#') {
        csv_number(c, field + 1);
        want = strdup(field + 1);
    } else if (field[0] == '[') {
        json_t *arr = json_pack("[s#,s]", field + 1, (int)(flen - 1), "x");
        size_t n = flen + 4;
        want = malloc(n);
        FUZZ_ASSERT(want != NULL);
        if (arr == NULL) {
            /* Not UTF-8: jansson refuses it, and so is it never a cell. */
            csv_field(c, "");
            want[0] = '\0';
        } else {
            csv_json(c, arr);
            json_decref(arr);
            snprintf(want, n, "%s%s x", formula_like(field + 1) ? "'" : "", field + 1);
        }
    } else {
        csv_field(c, field);
        size_t n = flen + 2;
        want = malloc(n);
        FUZZ_ASSERT(want != NULL);
        snprintf(want, n, "%s%s", formula_like(field) ? "'" : "", field);
    }
    free(field);
    return want;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 4096) {
        return 0;
    }
    char *s = fuzz_cstr(data, size);
    if (s == NULL) {
        return 0;
    }
    /* NUL bytes end C strings: the writer never sees them, nor do we. */
    size_t len = strlen(s);
    struct csv c = {0};
    char *want[512];
    int nwant = 0;
    bool row_ends[512];
    const char *start = s;
    for (size_t i = 0; i <= len && nwant < 512; i++) {
        if (i < len && s[i] != 0x1f && s[i] != 0x1e) {
            continue;
        }
        want[nwant] = write_field(&c, start, (size_t)(s + i - start));
        bool ends = i == len || s[i] == 0x1e;
        row_ends[nwant++] = ends;
        if (ends) {
            csv_end_row(&c);
        }
        start = s + i + 1;
    }
    if (nwant > 0 && !row_ends[nwant - 1]) {
        csv_end_row(&c);
        row_ends[nwant - 1] = true;
    }
    char *text = csv_take(&c);
    FUZZ_ASSERT(text != NULL);
    const char *p = text, *end = text + strlen(text);
    for (int k = 0; k < nwant; k++) {
        bool end_row = false;
        char *got = read_field(&p, end, &end_row);
        FUZZ_ASSERT(got != NULL);
        FUZZ_ASSERT(strcmp(got, want[k]) == 0);
        FUZZ_ASSERT(end_row == row_ends[k]);
        free(got);
        free(want[k]);
    }
    FUZZ_ASSERT(p == end);
    free(text);
    free(s);
    return 0;
}

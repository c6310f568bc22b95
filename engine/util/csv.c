/* csv.c - building RFC 4180 text from report rows. */
#include "csv.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "amount.h"

static void
csv_put(struct csv *c, const char *s, size_t n)
{
    if (c->failed) {
        return;
    }
    if (c->len + n + 1 > c->cap) {
        size_t cap = c->cap ? c->cap : 1024;
        while (cap < c->len + n + 1) {
            cap *= 2;
        }
        char *bigger = realloc(c->buf, cap);
        if (bigger == NULL) {
            c->failed = true;
            return;
        }
        c->buf = bigger;
        c->cap = cap;
    }
    memcpy(c->buf + c->len, s, n);
    c->len += n;
    c->buf[c->len] = '\0';
}

/* True when a spreadsheet would read `text` as a formula.  Only text
 * fields are checked: numbers come through csv_number. */
static bool
formula_like(const char *text)
{
    return text[0] != '\0' && strchr("=+-@\t\r", text[0]) != NULL;
}

static void
csv_cell(struct csv *c, const char *text, bool is_text)
{
    if (c->row_open) {
        csv_put(c, ",", 1);
    }
    c->row_open = true;
    if (text == NULL) {
        return;
    }
    bool neutralise = is_text && formula_like(text);
    if (strpbrk(text, ",\"\r\n") == NULL) {
        if (neutralise) {
            csv_put(c, "'", 1);
        }
        csv_put(c, text, strlen(text));
        return;
    }
    csv_put(c, neutralise ? "\"'" : "\"", neutralise ? 2 : 1);
    for (const char *p = text; *p; p++) {
        csv_put(c, p, 1);
        if (*p == '"') {
            csv_put(c, "\"", 1);
        }
    }
    csv_put(c, "\"", 1);
}

void
csv_field(struct csv *c, const char *text)
{
    csv_cell(c, text, true);
}

void
csv_number(struct csv *c, const char *digits)
{
    csv_cell(c, digits, false);
}

void
csv_json(struct csv *c, const json_t *v)
{
    char buf[64];
    if (json_is_string(v)) {
        csv_field(c, json_string_value(v));
    } else if (json_is_integer(v)) {
        snprintf(buf, sizeof buf, "%lld", (long long)json_integer_value(v));
        csv_number(c, buf);
    } else if (json_is_real(v)) {
        int64_t milli = 0;
        if (amount_from_json(v, &milli, NULL) == 0) {
            amount_format(milli, buf, sizeof buf);
        } else {
            snprintf(buf, sizeof buf, "%.3f", json_real_value(v));
        }
        csv_number(c, buf);
    } else if (json_is_boolean(v)) {
        csv_field(c, json_is_true(v) ? "true" : "false");
    } else if (json_is_array(v)) {
        /* Lists (building ids, tags) become one field joined by spaces. */
        struct csv inner = {0};
        size_t i;
        json_t *x;
        json_array_foreach(v, i, x) {
            if (i > 0) {
                csv_put(&inner, " ", 1);
            }
            if (json_is_string(x)) {
                csv_put(&inner, json_string_value(x), json_string_length(x));
            }
        }
        char *joined = csv_take(&inner);
        csv_field(c, joined ? joined : "");
        free(joined);
    } else {
        csv_field(c, "");
    }
}

void
csv_end_row(struct csv *c)
{
    csv_put(c, "\r\n", 2);
    c->row_open = false;
}

char *
csv_take(struct csv *c)
{
    char *out = c->failed ? NULL : c->buf;
    if (c->failed) {
        free(c->buf);
    } else if (out == NULL) {
        out = calloc(1, 1);
    }
    memset(c, 0, sizeof *c);
    return out;
}

char *
csv_table(const json_t *rows, const char *const columns[])
{
    struct csv c = {0};
    for (int k = 0; columns[k] != NULL; k++) {
        csv_field(&c, columns[k]);
    }
    csv_end_row(&c);
    size_t i;
    json_t *row;
    json_array_foreach(rows, i, row) {
        for (int k = 0; columns[k] != NULL; k++) {
            csv_json(&c, json_object_get(row, columns[k]));
        }
        csv_end_row(&c);
    }
    return csv_take(&c);
}

char *
csv_report(const json_t *table)
{
    const json_t *columns = json_object_get(table, "columns");
    const json_t *rows = json_object_get(table, "rows");
    if (!json_is_array(columns) || !json_is_array(rows)) {
        return NULL;
    }
    struct csv c = {0};
    size_t i, k;
    json_t *row, *col;
    json_array_foreach(columns, k, col) {
        csv_field(&c, json_string_value(col));
    }
    csv_end_row(&c);
    json_array_foreach(rows, i, row) {
        json_array_foreach(columns, k, col) {
            const char *name = json_string_value(col);
            csv_json(&c, name != NULL ? json_object_get(row, name) : NULL);
        }
        csv_end_row(&c);
    }
    return csv_take(&c);
}

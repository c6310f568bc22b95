/* csv.h - RFC 4180 text: CRLF line ends, fields quoted when they hold a
 * comma, a quote, CR or LF, quotes doubled. */
#ifndef ENG_CSV_H
#define ENG_CSV_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

struct csv {
    char *buf;
    size_t len, cap;
    bool row_open;
    bool failed; /* out of memory: csv_take returns NULL */
};

/* Appends one text field to the current row.  Text that a spreadsheet
 * would run as a formula (it starts with '=', '+', '-', '@', a tab or a
 * CR: OWASP's "CSV injection") gets a leading apostrophe, so that a tenant
 * named "=HYPERLINK(...)" is shown, not run. */
void csv_field(struct csv *c, const char *text);
/* Appends a number the engine formatted itself ("-1.5", "42"): written as
 * is, so that a negative amount stays a number. */
void csv_number(struct csv *c, const char *digits);
/* Appends a JSON scalar: strings as text fields (csv_field), integers and
 * reals as numbers (csv_number; reals with at most 3 decimals, as amounts
 * are), null empty, booleans true/false; an array of strings as one text
 * field, joined by spaces. */
void csv_json(struct csv *c, const json_t *v);
/* Ends the current row. */
void csv_end_row(struct csv *c);
/* Returns the text (caller frees) and resets c; NULL after a failure. */
char *csv_take(struct csv *c);

/* A CSV of the rows (objects) of `rows`, one column per name in the
 * NULL-terminated `columns`, with a header row. */
char *csv_table(const json_t *rows, const char *const columns[]);

/* A CSV of a report table {"columns": [names], "rows": [objects]} (what a
 * report operation answers for format=csv): a header row of the names, then
 * one line per row with its fields in column order.  The caller frees the
 * text; NULL when out of memory or when `table` is not such a table. */
char *csv_report(const json_t *table);

#endif

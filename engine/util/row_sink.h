/* row_sink.h - where a streaming report hands its rows, one at a time.
 *
 * A face (the HTTP server) passes a sink to engine_exec_stream(); a report
 * operation that streams calls begin() once with its column names, then
 * row() for each row in order, and never holds more than one row, so the
 * memory a report needs does not depend on its number of rows.  The rows
 * are the objects the JSON report would list (keyed by column name). */
#ifndef ENG_ROW_SINK_H
#define ENG_ROW_SINK_H

#include <jansson.h>

struct row_sink {
    /* Once, before the first row; `columns` is NULL-terminated. */
    int (*begin)(void *ud, const char *const columns[]);
    /* Each row (borrowed).  Non-zero stops the report, which then fails:
     * the client has gone, or the face ran out of memory. */
    int (*row)(void *ud, const json_t *row);
    void *ud;
};

#endif

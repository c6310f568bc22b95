/* json_out.h - compact JSON text of a jansson value, fast.
 *
 * The same bytes as json_dumpb(v, buf, size, JSON_COMPACT | JSON_ENCODE_ANY
 * | JSON_REAL_PRECISION(15)) (what every HTTP answer is rendered with),
 * at a fraction of the cost: jansson decodes and re-checks each character
 * of every string through a callback (~110 instructions a character, most
 * of a booking answer's rendering), where this copies runs of plain bytes
 * at once.  Strings held by jansson are valid UTF-8 already.
 * tests/c/test_json_out.c compares the two on many values. */
#ifndef ENG_JSON_OUT_H
#define ENG_JSON_OUT_H

#include <stddef.h>

#include <jansson.h>

/* Nesting deeper than this is not rendered (returns 0). */
#define JSON_OUT_DEPTH_MAX 2048

/* Renders v into buf[0..size): returns the length of the whole text, which
 * may exceed size (then buf holds only its beginning: render again into a
 * buffer that large), or 0 when v cannot be rendered (a NaN or infinite
 * real, too deep a nesting).  No NUL is written.  Thread-safe (v is only
 * read). */
size_t json_out(const json_t *v, char *buf, size_t size);

#endif

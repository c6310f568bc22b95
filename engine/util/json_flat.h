/* json_flat.h - the plainest JSON objects, parsed directly.
 *
 * json_flat_parse returns the object for text that is one object of
 * members whose keys and strings are printable ASCII without escapes
 * (keys under 64 bytes), integers of at most 18 digits, true, false or
 * null, no key twice; the value json_loadb would return for it.  For any
 * other text, valid JSON or not, NULL: the caller parses it with jansson,
 * which gives its values and its errors.  NULL also without memory. */
#ifndef ENG_UTIL_JSON_FLAT_H
#define ENG_UTIL_JSON_FLAT_H

#include <stddef.h>

#include <jansson.h>

json_t *json_flat_parse(const char *text, size_t len);

#endif

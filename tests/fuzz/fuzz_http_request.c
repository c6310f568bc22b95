/* fuzz_http_request.c - what the HTTP layer parses itself (request.c):
 * the request path and the query string.  The first input byte picks
 * which; the rest is the text as a client would send it.
 *   path:  a decoded path holds no control character, no "." or ".."
 *          segment, fits its buffer, and is never longer than the raw text;
 *   query: parameters become a JSON object of strings (limit an integer),
 *          within the documented counts and sizes, or an error. */
#include <jansson.h>

#include "fuzz_util.h"
#include "http_internal.h"

static void
check_path(const char *raw)
{
    char out[HTTP_PATH_BYTES_MAX];
    int n = http_path_decode(raw, out, sizeof out);
    if (n < 0) {
        return;
    }
    FUZZ_ASSERT((size_t)n < sizeof out && (size_t)n == strlen(out));
    FUZZ_ASSERT((size_t)n <= strlen(raw));
    for (int i = 0; i < n; i++) {
        unsigned char c = (unsigned char)out[i];
        FUZZ_ASSERT(c >= 0x20 && c != 0x7f);
    }
    /* No dot segment survives decoding. */
    const char *seg = out;
    for (int i = 0; i <= n; i++) {
        if (i == n || out[i] == '/') {
            size_t len = (size_t)(out + i - seg);
            FUZZ_ASSERT(!(len == 1 && seg[0] == '.'));
            FUZZ_ASSERT(!(len == 2 && seg[0] == '.' && seg[1] == '.'));
            seg = out + i + 1;
        }
    }
}

static void
check_query(const char *q)
{
    json_t *args = json_object();
    struct eng_error err = {0};
    if (http_query_parse(q, args, &err) == 0) {
        FUZZ_ASSERT(json_object_size(args) <= 32);
        const char *name;
        json_t *v;
        json_object_foreach(args, name, v) {
            FUZZ_ASSERT(strlen(name) > 0 && strlen(name) <= 64);
            FUZZ_ASSERT(json_is_string(v) || (json_is_integer(v) && strcmp(name, "limit") == 0));
            FUZZ_ASSERT(!json_is_string(v) || json_string_length(v) <= 512);
        }
    } else {
        FUZZ_ASSERT(err.status != 0 && err.msg[0] != '\0');
    }
    json_decref(args);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) {
        return 0;
    }
    char *s = fuzz_cstr(data + 1, size - 1);
    if (s == NULL) {
        return 0;
    }
    if (data[0] & 1) {
        check_query(s);
    } else {
        check_path(s);
    }
    free(s);
    return 0;
}

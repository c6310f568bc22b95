/* fuzz_util.h - what the libFuzzer harnesses share: a NUL-terminated copy
 * of the input, and an abort that libFuzzer reports as a crash with the
 * input that caused it. */
#ifndef ALLOT_FUZZ_UTIL_H
#define ALLOT_FUZZ_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A property of the code under test does not hold: report and abort. */
#define FUZZ_ASSERT(cond)                                                                  \
    do {                                                                                   \
        if (!(cond)) {                                                                     \
            fprintf(stderr, "fuzz property failed: %s (%s:%d)\n", #cond, __FILE__,         \
                    __LINE__);                                                             \
            abort();                                                                       \
        }                                                                                  \
    } while (0)

/* A new NUL-terminated copy of data (caller frees); NULL when out of memory. */
static inline char *
fuzz_cstr(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    if (s != NULL) {
        memcpy(s, data, size);
        s[size] = '\0';
    }
    return s;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#endif

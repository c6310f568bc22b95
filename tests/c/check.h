/* check.h - the tiny assertion kit of the C tests: each CHECK prints
 * "ok N - expr" or "not ok N - expr (file:line)" and the test's main returns
 * check_exit(), non-zero when anything failed. */
#ifndef ALLOT_CHECK_H
#define ALLOT_CHECK_H

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

static int check_count_;
static int check_failed_;

#define CHECK(cond)                                                                        \
    do {                                                                                   \
        check_count_++;                                                                    \
        if (cond) {                                                                        \
            printf("ok %d - %s\n", check_count_, #cond);                                   \
        } else {                                                                           \
            check_failed_++;                                                               \
            printf("not ok %d - %s (%s:%d)\n", check_count_, #cond, __FILE__, __LINE__);   \
        }                                                                                  \
    } while (0)

#define CHECK_INT(a, b)                                                                    \
    do {                                                                                   \
        long long a_ = (long long)(a), b_ = (long long)(b);                                \
        check_count_++;                                                                    \
        if (a_ == b_) {                                                                    \
            printf("ok %d - %s == %s\n", check_count_, #a, #b);                            \
        } else {                                                                           \
            check_failed_++;                                                               \
            printf("not ok %d - %s == %s: %lld != %lld (%s:%d)\n", check_count_, #a, #b,   \
                   a_, b_, __FILE__, __LINE__);                                            \
        }                                                                                  \
    } while (0)

#define CHECK_STR(a, b)                                                                    \
    do {                                                                                   \
        const char *a_ = (a), *b_ = (b);                                                   \
        check_count_++;                                                                    \
        if (a_ != NULL && b_ != NULL && strcmp(a_, b_) == 0) {                             \
            printf("ok %d - %s == \"%s\"\n", check_count_, #a, b_);                        \
        } else {                                                                           \
            check_failed_++;                                                               \
            printf("not ok %d - %s: \"%s\" != \"%s\" (%s:%d)\n", check_count_, #a,         \
                   a_ ? a_ : "(null)", b_ ? b_ : "(null)", __FILE__, __LINE__);            \
        }                                                                                  \
    } while (0)

static inline int
check_exit(void)
{
    printf("%d passed, %d failed\n", check_count_ - check_failed_, check_failed_);
    return check_failed_ == 0 ? 0 : 1;
}

#endif

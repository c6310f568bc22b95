/* error.h - status codes and the error record every engine call fills in.
 *
 * Every fallible engine function returns 0 or a negative enum eng_status and,
 * on failure, describes the problem in a caller-owned struct eng_error.  The
 * `code` is the stable snake_case identifier clients see (API.md); `msg` is a
 * human sentence.  Neither ever contains SQL, a stack trace or a Lua
 * traceback from the engine's internals. */
#ifndef ENG_ERROR_H
#define ENG_ERROR_H

#include <stdio.h>
#include <stdlib.h>

enum eng_status {
    ENG_OK = 0,
    ENG_EINVAL = -1,    /* bad input: 400 invalid_request */
    ENG_ENOTFOUND = -2, /* unknown id or out of scope: 404 not_found */
    ENG_ECONFLICT = -3, /* 409: insufficient_credits, slot_taken, ... */
    ENG_EPOLICY = -4,   /* a policy failed at run time: 503 policy_error */
    ENG_ESTORE = -5,    /* SQLite failed: 500 internal */
    ENG_ENOMEM = -6,    /* out of memory: 503 */
    ENG_ELIMIT = -7,    /* a limit was exceeded: 413 / 422 / 429 */
    ENG_EFORBIDDEN = -8, /* authenticated but not allowed: 403 forbidden */
    ENG_EUNAUTH = -9,   /* no or bad credentials: 401 unauthorized */
    ENG_EREJECTED = -10 /* a policy upload was refused: 422 policy_error */
};

#define ENG_MSG_MAX 512
#define ENG_CODE_MAX 40

struct eng_error {
    enum eng_status status;
    char code[ENG_CODE_MAX]; /* snake_case client-facing code; "" = derive from status */
    char msg[ENG_MSG_MAX];   /* always NUL-terminated */
    char field[64];          /* the request field concerned, "" when none */
    /* More members of the API's `details` object, as JSON text without its
     * braces ("\"needed\":9.5,\"unit\":\"hour\""), "" when none; set with
     * eng_error_details after the error itself. */
    char details[160];
};

#if defined(__GNUC__)
#define ENG_MUST_CHECK __attribute__((warn_unused_result))
#define ENG_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define ENG_MUST_CHECK
#define ENG_PRINTF(a, b)
#endif

/* Fills *err (which may be NULL) and returns `status`, so a failure is one
 * line: `return eng_error_set(err, ENG_EINVAL, "amount %s is negative", s);`
 * The code becomes the default for the status. */
int eng_error_set(struct eng_error *err, enum eng_status status, const char *fmt, ...)
    ENG_PRINTF(3, 4);

/* Like eng_error_set but with an explicit client-facing code such as
 * "insufficient_credits". */
int eng_error_code(struct eng_error *err, enum eng_status status, const char *code,
                   const char *fmt, ...) ENG_PRINTF(4, 5);

/* Keeps the message of an error already set but gives it another status
 * and client-facing code; returns the new status. */
int eng_error_recode(struct eng_error *err, enum eng_status status, const char *code);

/* Records which request field an (already set) error concerns. */
void eng_error_field(struct eng_error *err, const char *field);
/* Sets err->details (printf-style; truncated text is dropped whole). */
void eng_error_details(struct eng_error *err, const char *fmt, ...) ENG_PRINTF(2, 3);

/* The client-facing code of an error: err->code if set, else the default for
 * its status ("invalid_request", "not_found", ...). */
const char *eng_error_code_of(const struct eng_error *err);

/* The HTTP status for an engine error (400, 404, 409, ...). */
int eng_error_http_status(const struct eng_error *err);

/* Programmer errors only; stays on in every build. */
#define ENG_ASSERT(cond)                                                                   \
    do {                                                                                   \
        if (!(cond)) {                                                                     \
            fprintf(stderr, "%s:%d: assertion failed: %s\n", __FILE__, __LINE__, #cond);   \
            abort();                                                                       \
        }                                                                                  \
    } while (0)

#endif

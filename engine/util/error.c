/* error.c - error records and the status -> HTTP mapping (one table). */
#include "error.h"

#include <stdarg.h>
#include <string.h>

static const struct {
    enum eng_status status;
    const char *code;
    int http;
} status_map[] = {
    {ENG_OK, "ok", 200},
    {ENG_EINVAL, "invalid_request", 400},
    {ENG_ENOTFOUND, "not_found", 404},
    {ENG_ECONFLICT, "conflict", 409},
    {ENG_EPOLICY, "policy_error", 503},
    {ENG_ESTORE, "storage_error", 503},
    {ENG_ENOMEM, "overloaded", 503},
    {ENG_ELIMIT, "payload_too_large", 413},
    {ENG_EFORBIDDEN, "forbidden", 403},
    {ENG_EUNAUTH, "unauthorized", 401},
    {ENG_EREJECTED, "policy_error", 422},
};

static void
error_vset(struct eng_error *err, enum eng_status status, const char *code, const char *fmt,
           va_list ap)
{
    err->status = status;
    err->field[0] = '\0';
    err->details[0] = '\0';
    if (code != NULL) {
        snprintf(err->code, sizeof err->code, "%s", code);
    } else {
        err->code[0] = '\0';
    }
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
}

int
eng_error_set(struct eng_error *err, enum eng_status status, const char *fmt, ...)
{
    if (err != NULL) {
        va_list ap;
        va_start(ap, fmt);
        error_vset(err, status, NULL, fmt, ap);
        va_end(ap);
    }
    return (int)status;
}

int
eng_error_code(struct eng_error *err, enum eng_status status, const char *code, const char *fmt,
               ...)
{
    if (err != NULL) {
        va_list ap;
        va_start(ap, fmt);
        error_vset(err, status, code, fmt, ap);
        va_end(ap);
    }
    return (int)status;
}

int
eng_error_recode(struct eng_error *err, enum eng_status status, const char *code)
{
    if (err != NULL) {
        err->status = status;
        snprintf(err->code, sizeof err->code, "%s", code);
    }
    return (int)status;
}

void
eng_error_field(struct eng_error *err, const char *field)
{
    if (err != NULL && field != NULL) {
        snprintf(err->field, sizeof err->field, "%s", field);
    }
}

void
eng_error_details(struct eng_error *err, const char *fmt, ...)
{
    if (err != NULL) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(err->details, sizeof err->details, fmt, ap);
        va_end(ap);
        if (n < 0 || (size_t)n >= sizeof err->details) {
            err->details[0] = '\0';
        }
    }
}

const char *
eng_error_code_of(const struct eng_error *err)
{
    if (err->code[0] != '\0') {
        return err->code;
    }
    for (size_t i = 0; i < sizeof status_map / sizeof status_map[0]; i++) {
        if (status_map[i].status == err->status) {
            return status_map[i].code;
        }
    }
    return "internal";
}

int
eng_error_http_status(const struct eng_error *err)
{
    for (size_t i = 0; i < sizeof status_map / sizeof status_map[0]; i++) {
        if (status_map[i].status == err->status) {
            return status_map[i].http;
        }
    }
    return 500;
}

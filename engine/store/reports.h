/* reports.h - the queries behind the reports (PRODUCT.md §7): Data Hub,
 * dashboard, credit management and usage.
 *
 * Every iteration streams: `cb(ud, row)` once per row, non-zero stops the
 * iteration and is returned as is; a storage failure is ENG_ESTORE (never
 * "no rows").  Text fields of a row are borrowed: valid during the callback
 * only (copy what must outlive it).  A text field documented "or NULL" is
 * NULL for SQL NULL; the others are "" for SQL NULL.
 *
 * The filters' id fields use 0 for "no filter", `unit` NULL for any unit.
 * Not thread-safe beyond the store connection's own rules. */
#ifndef ENG_STORE_REPORTS_H
#define ENG_STORE_REPORTS_H

#include <stdbool.h>
#include <stdint.h>

#include "error.h"
#include "portfolio.h"
#include "store.h"

/* ---- Data Hub ---- */

struct hub_filter {
    const char *unit;              /* required */
    int64_t window_lo, window_hi;  /* the UTC window rows are picked in */
    int64_t tenant_id, building_id;
    bool booking_users; /* fill hub_entry_row.booking_user_id (group_by=user) */
    /* A building-limited key's scope: ",1,4," (building ids), or NULL.  Only
     * lots whose allocation's buildings are all inside it count. */
    const char *scope;
};

/* An entry of a lot the Data Hub reads: every entry of a once lot
 * effective before the window's end (the opening balance needs them all),
 * and every entry of a recurring lot effective in the window or on a lot
 * that becomes valid in it (an adjustment made before its period). */
struct hub_entry_row {
    int64_t tenant_id;
    int64_t lot_user_id;     /* the lot's user (per-user pool), 0 for a shared lot */
    int64_t booking_user_id; /* with f->booking_users: the booking's user of a
                              * shared lot's debit or refund; else 0 */
    const char *zone;        /* the allocation's zone (borrowed) */
    bool recurring;          /* of a recurring allocation (else a once allocation) */
    bool unlimited;          /* the lot is unlimited */
    const char *kind;        /* grant, debit, refund, expire, rollover_out, ... (borrowed) */
    int64_t effective_at;
    int64_t amount;     /* milli, signed as stored */
    int64_t valid_from; /* the lot's */
};
ENG_MUST_CHECK int store_hub_entries_each(struct store *s, const struct hub_filter *f,
                                          int (*cb)(void *ud, const struct hub_entry_row *row),
                                          void *ud, struct eng_error *err);

/* An unlimited lot whose validity overlaps the window. */
struct hub_unlimited_row {
    int64_t tenant_id;
    int64_t user_id;  /* the lot's user (per-user pool), 0 for a shared lot */
    const char *zone; /* borrowed */
    bool recurring;   /* of a recurring allocation (else a once allocation) */
    int64_t valid_from, valid_until;
};
ENG_MUST_CHECK int store_hub_unlimited_each(struct store *s, const struct hub_filter *f,
                                            int (*cb)(void *ud,
                                                      const struct hub_unlimited_row *row),
                                            void *ud, struct eng_error *err);

/* ---- dashboard ---- */

struct dash_filter {
    const char *unit; /* required */
    int64_t tenant_id, building_id;
    int64_t now;   /* lots valid now; bookings created at or before now */
    int64_t since; /* bookings created after `since` count as recent */
    /* A building-limited key's scope (see hub_filter), or NULL: lots whose
     * allocation's buildings are all inside, bookings in a building inside. */
    const char *scope;
};

struct dash_figures {
    int64_t allocated;     /* grants and adjustments of lots whose validity began */
    bool unlimited_begun;  /* among them an unlimited lot (allocated is "unlimited") */
    int64_t remaining;     /* balance of limited lots valid now */
    bool unlimited_now;    /* an unlimited lot is valid now (remaining is "unlimited") */
    int64_t used;          /* credits paid for bookings, net of refunds */
    int64_t transactions;  /* confirmed credit bookings created since `since` */
    int64_t active_users;  /* their distinct users */
    bool has_top;          /* a tenant used credits since `since` */
    int64_t top_tenant_id; /* the one that used most (lowest id on a tie) */
    char top_name[STORE_NAME_MAX + 1];
    int64_t top_used;
};
/* Fills *out (zeroed first); 0 or ENG_ESTORE. */
ENG_MUST_CHECK int store_dashboard(struct store *s, const struct dash_filter *f,
                                   struct dash_figures *out, struct eng_error *err);

/* ---- credit management ---- */

struct credit_filter {
    int64_t tenant_id, building_id;
    const char *unit; /* NULL: both */
    int64_t now;      /* for granted (validity begun) and remaining (valid now) */
    int64_t after;    /* allocations with id > after, in id order */
    int64_t limit;    /* at most this many rows */
};

struct credit_report_row {
    int64_t allocation_id, tenant_id;
    const char *tenant_name, *description, *unit, *recurrence, *pool; /* borrowed */
    const char *start_date; /* YYYY-MM-DD, borrowed */
    const char *end_date;   /* or NULL (open-ended) */
    int64_t start_at;
    bool has_end;
    int64_t end_at; /* when has_end */
    bool rollover;
    bool has_rollover_cap;
    int64_t rollover_cap;
    bool has_amount; /* false: some line is unlimited */
    int64_t amount;  /* the sum of the lines' amounts */
    const char *building_ids_json; /* JSON array of "bld_N" (borrowed) */
    int64_t granted, used, remaining; /* granted, remaining: limited lots'; used: all */
    bool granted_unlimited;   /* an unlimited lot's validity has begun */
    bool remaining_unlimited; /* an unlimited lot is valid now */
};
ENG_MUST_CHECK int store_credit_report_each(struct store *s, const struct credit_filter *f,
                                            int (*cb)(void *ud,
                                                      const struct credit_report_row *row),
                                            void *ud, struct eng_error *err);

/* ---- usage ---- */

struct usage_filter {
    int64_t tenant_id, building_id, user_id, resource_id;
    int64_t from_t, to_t; /* meetings starting in [from_t, to_t) */
    const char *unit;     /* NULL: any (and bookings without credits) */
    int64_t after;        /* bookings with id > after, in id order */
    int64_t limit;        /* at most this many rows */
    const char *scope;    /* a building-limited key's scope (see hub_filter), or NULL */
};

struct usage_row {
    int64_t booking_id, created_at, start_at, end_at;
    int64_t user_id, resource_id, tenant_id, building_id;
    const char *user_name, *resource_name, *tenant_name, *building_name; /* borrowed */
    const char *payment_method, *currency, *status;                      /* borrowed */
    bool has_credits; /* credits is not NULL */
    int64_t credits, credits_refunded;
    const char *unit; /* or NULL */
    bool has_money;
    int64_t money;
};
ENG_MUST_CHECK int store_usage_each(struct store *s, const struct usage_filter *f,
                                    int (*cb)(void *ud, const struct usage_row *row), void *ud,
                                    struct eng_error *err);

#endif

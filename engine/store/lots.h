/* lots.h - the rows of lots (table lot): one allocation line's credits for
 * one period (and one user for a per-user pool).  A lot's balance, used and
 * adjusted columns are caches of its entries, moved only by store_lot_move
 * in the transaction that inserts the entry. */
#ifndef ENG_STORE_LOTS_H
#define ENG_STORE_LOTS_H

#include <stdbool.h>
#include <stdint.h>

#include "error.h"
#include "store.h"

struct lot_row {
    int64_t id, allocation_id;
    int line_idx;
    int64_t period_n;
    int64_t user_id;  /* 0: the shared pool */
    char kind[12];    /* period | rollover */
    int64_t tenant_id;
    char unit[8];
    int64_t valid_from, valid_until;
    int64_t granted;
    bool unlimited;
    int64_t balance, used, adjusted;
    bool closed;
    int64_t created_at;
    char scope[12];   /* its allocation line's scope (read only) */
};

/* Inserts a lot unless one with its key (allocation, line, period, user,
 * kind) exists: *created tells which, *id is the lot's either way. */
ENG_MUST_CHECK int store_lot_insert(struct store *s, const struct lot_row *lot, int64_t *id,
                                    bool *created, struct eng_error *err);
/* The lot `id`; *found false when there is none. */
ENG_MUST_CHECK int store_lot_get(struct store *s, int64_t id, struct lot_row *out, bool *found,
                                 struct eng_error *err);
/* The lot of a key; *found false when there is none. */
ENG_MUST_CHECK int store_lot_find(struct store *s, int64_t allocation_id, int line_idx,
                                  int64_t period_n, int64_t user_id, const char *kind,
                                  struct lot_row *out, bool *found, struct eng_error *err);
/* Only the balance of lot `id` (a read of what moves between portfolio
 * generations: ledger.c keeps the rest of a lot per generation). */
ENG_MUST_CHECK int store_lot_balance(struct store *s, int64_t id, int64_t *balance, bool *found,
                                     struct eng_error *err);
/* What allocation edits have added to lot `id` so far (their adjust
 * entries, keyed "alloc_edit:<lot>:<version>"; before that key, by their
 * memo "allocation edited (version N)"), so that the next edit moves the
 * lot to the line's new amount from where the last one left it. */
ENG_MUST_CHECK int store_lot_edit_adjusted(struct store *s, int64_t id, int64_t *sum,
                                           struct eng_error *err);
/* Moves the cached balance by `amount` for an entry of `kind` (debits and
 * refunds also move used, adjustments adjusted).  A balance the schema
 * refuses (below zero on a limited lot) is ENG_ESTORE. */
ENG_MUST_CHECK int store_lot_move(struct store *s, int64_t id, const char *kind, int64_t amount,
                                  struct eng_error *err);
/* A debit's move made on a condition, in one statement: takes `amount`
 * (> 0) from the lot's balance (and adds it to used) only when the lot is
 * open and still holds it, or is unlimited.  *taken false: nothing
 * written.  *balance is the lot's balance after the debit.  `expect`: the
 * balance the caller saw (-1: none), which spares reading the balance
 * after when the lot still holds exactly that.  The entry that explains
 * the move must follow in the same transaction (ledger.c). */
ENG_MUST_CHECK int store_lot_take(struct store *s, int64_t id, int64_t amount, int64_t expect,
                                  bool *taken, int64_t *balance, struct eng_error *err);
/* Marks the lot closed (its end processed, or voided). */
ENG_MUST_CHECK int store_lot_close(struct store *s, int64_t id, struct eng_error *err);
/* Open lots of the allocation valid past `until` are valid until then (a
 * once allocation given an end: PRODUCT.md §3). */
ENG_MUST_CHECK int store_lots_end_before(struct store *s, int64_t allocation_id, int64_t until,
                                         struct eng_error *err);

/* The earliest end of an open lot after `after` (TIME_NEVER: none). */
ENG_MUST_CHECK int store_lot_next_end(struct store *s, int64_t after, int64_t *t,
                                      struct eng_error *err);

/* Lots matching a filter, in (valid_from, id) order; cb per lot (the row is
 * borrowed for the call; non-zero stops and is returned).
 * store_lots_closing_each instead selects the open lots ending at `until`,
 * ordered by allocation, line, user, period, kind (rollover first), id. */
struct lot_filter {
    int64_t allocation_id;  /* 0: any */
    int64_t tenant_id;      /* 0: any */
    int64_t user_id;        /* -1: any; else the shared pool and this user */
    const char *unit;       /* NULL: any */
    int64_t from_min;       /* valid_from >= from_min (INT64_MIN: any) */
    bool open_only;         /* closed = 0 */
    bool limited_only;      /* unlimited = 0 */
};
ENG_MUST_CHECK int store_lots_each(struct store *s, const struct lot_filter *f,
                                   int (*cb)(void *ud, const struct lot_row *lot), void *ud,
                                   struct eng_error *err);
ENG_MUST_CHECK int store_lots_closing_each(struct store *s, int64_t until,
                                           int (*cb)(void *ud, const struct lot_row *lot),
                                           void *ud, struct eng_error *err);

#endif

/* entries.h - the ledger's entries (table entry): immutable, one per move
 * of credit on a lot. */
#ifndef ENG_STORE_ENTRIES_H
#define ENG_STORE_ENTRIES_H

#include <stdbool.h>
#include <stdint.h>

#include "error.h"
#include "store.h"

/* What the usage counters need of a booking's debit or refund, when the
 * caller already knows it (store/usage.h): the booking's user and start,
 * the lot's unit, whether the lot is shared (user_id 0; a per-user lot is
 * not counted), and how many zones have counters as read in this
 * transaction (0: not known).  The caller vouches for it: `allot verify`
 * recomputes the counters from the entries. */
struct entry_usage {
    int64_t user_id, start_at;
    const char *unit;
    bool shared;
    int zones;
    /* The lot's tenant (0: not known).  With it, `unit` is also the lot's
     * unit, and the entry is written with both as given instead of
     * reading the lot (the lot's existence is still checked: its foreign
     * key); `allot verify` checks that every entry has its lot's. */
    int64_t tenant_id;
};

/* One entry.  Text fields are borrowed (NULL: SQL NULL); on reading they
 * stay valid only during the callback. */
struct entry_row {
    int64_t id, lot_id, allocation_id, tenant_id;
    const char *kind;
    int64_t amount;
    const char *unit;
    int64_t effective_at, created_at;
    int64_t booking_id; /* 0: none */
    const char *event_key, *policy_version, *memo, *actor;
    /* Writing only: a debit's or refund's usage facts (NULL: read from
     * the lot and the booking, one more statement). */
    const struct entry_usage *usage;
};

/* Appends an entry on lot `e->lot_id` (tenant and unit taken from the lot,
 * or from e->usage when it names them; e->id, allocation_id, tenant_id and
 * unit are ignored) and sets *id.  A missing lot is ENG_ESTORE (a
 * programmer error upstream, never written). */
ENG_MUST_CHECK int store_entry_insert(struct store *s, const struct entry_row *e, int64_t *id,
                                      struct eng_error *err);

/* The lot of entry `id` (*found false when there is none). */
ENG_MUST_CHECK int store_entry_lot(struct store *s, int64_t id, int64_t *lot_id, bool *found,
                                   struct eng_error *err);
/* A page of entries: id > after, each optional filter (0 / NULL: any),
 * effective_at in [from, to), in id order, at most `limit` rows; cb per
 * entry (non-zero stops and is returned). */
struct entry_filter {
    int64_t after, tenant_id, lot_id, booking_id;
    const char *kind;
    int64_t from, to;
    int limit;
};
ENG_MUST_CHECK int store_entries_list(struct store *s, const struct entry_filter *f,
                                      int (*cb)(void *ud, const struct entry_row *e), void *ud,
                                      struct eng_error *err);

#endif

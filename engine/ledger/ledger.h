/* ledger.h - allocations, lots and entries: the credit rules of PRODUCT.md §3.
 *
 * Lots are a deterministic function of an allocation and time: the lot of
 * (allocation, line, period n, user) is created at most once (a UNIQUE key),
 * either when its period opens or earlier on demand for a booking ahead.
 * ledger_advance() processes every due boundary in time order (at one
 * instant: closings — rollover and expiry — before openings), each exactly
 * once.  All functions run inside the caller's write transaction. */
#ifndef ENG_LEDGER_H
#define ENG_LEDGER_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "allocations.h"
#include "entries.h"
#include "sets.h"
#include "store.h"
#include "timeutil.h"
#include "values.h"

/* What every ledger function runs with: the connection (inside the caller's
 * write transaction for changes), the instant, who is acting (for audit
 * columns), where policy sets come from, and where errors go. */
struct entity_cache;

struct ledger_ctx {
    struct store *store;
    int64_t now;
    const char *actor;
    struct policy_cache *policies;
    struct eng_error *err;
    /* The kept entities of the portfolio generation (entities.h), for a
     * read snapshot only: NULL on the writer.  cache_gen is the snapshot's
     * generation once read (0: not yet).  With a cache, ctx_user,
     * ctx_tenant, ledger_resource_get, ledger_alloc_get and the eligibility
     * verdicts of ledger_candidates may come from it: contexts handed out
     * are shared and must not be modified. */
    struct entity_cache *cache;
    int64_t cache_gen;
};

/* Lines per allocation: the API refuses more (limit_exceeded), and a stored
 * allocation with more is an error, never cut short. */
#define ALLOC_LINES_MAX 32

struct alloc_line {
    int idx;
    char scope[12];      /* all | resources | tags */
    json_t *resource_ids; /* owned */
    json_t *tags;        /* owned */
    bool unlimited;
    int64_t amount;      /* milli; 0 when unlimited */
};

struct alloc {
    int64_t id, tenant_id;
    char unit[8];
    char pool[12];
    char zone[TIME_ZONE_NAME_MAX + 1];
    bool cross_building, rollover;
    int64_t rollover_cap; /* -1 = no cap */
    enum period_kind recurrence;
    struct civil_date start_date;
    bool has_end;
    struct civil_date end_date;
    int64_t start_at, end_at; /* end_at TIME_NEVER without an end */
    int64_t first_building;
    json_t *targeting;    /* owned */
    json_t *building_ids; /* owned, "bld_" strings */
    char description[STORE_ALLOC_DESCRIPTION_MAX + 1]; /* as long as the API accepts */
    int line_count;
    struct alloc_line lines[ALLOC_LINES_MAX];
};

/* A lot that may pay for a booking (real, or virtual: lot_id 0 = would be
 * created on demand). */
struct cand {
    int64_t lot_id;
    int64_t alloc_id, alloc_seq;
    int line_idx;
    int64_t period_n, owner;
    bool rollover, unlimited, per_user, recurring;
    char scope[12];
    int64_t balance, granted;
    int64_t valid_from, valid_until;
    int64_t take; /* what this booking takes from it */
};

/* A growable list of candidate lots. */
struct cand_list {
    struct cand *items;
    int count, cap;
};
int cand_list_push(struct cand_list *list, const struct cand *c); /* 0 or ENG_ENOMEM */
void cand_list_free(struct cand_list *list);

int alloc_load(struct ledger_ctx *lx, int64_t id, struct alloc *a);
void alloc_free(struct alloc *a);
/* The window [from, until) of period n; *exists false past the end. */
int alloc_window(struct ledger_ctx *lx, const struct alloc *a, int64_t n, int64_t *from, int64_t *until,
                 bool *exists);
/* The period index containing instant t; *exists false outside the schedule. */
int alloc_period_at(struct ledger_ctx *lx, const struct alloc *a, int64_t t, int64_t *n, bool *exists);

/* How many periods of `a` have begun by instant `now` (0 before its start;
 * every period when it has ended).  Arithmetic only: nothing is read. */
int alloc_periods_begun(struct ledger_ctx *lx, const struct alloc *a, int64_t now,
                        int64_t *count);

/* The most lots one request may create for one allocation: periods already
 * begun x lines x owners (1 for a shared pool, each targeted user for a
 * per-user pool), a lot whose period is already over counting twice (it is
 * opened, then expired or rolled over).  Measured at ~70 us of server CPU
 * per unit on the loaded 2-core test machine (bounded_lots_spec prints
 * it; engine/README.md "Bounded lot creation"); 640 keeps an
 * allocation's creation, and each of its period openings, near the
 * writer's 50 ms budget (PRODUCT.md §9), and admits the current period of
 * 32 lines x 20 users.  Past it: limit_exceeded naming alloc_open_lots_max. */
#define ALLOC_OPEN_LOTS_MAX 640

/* Creates the lot (and its grant entry) unless it exists; *lot_id either way.
 * *created tells which. */
int lot_ensure(struct ledger_ctx *lx, const struct alloc *a, int line_idx, int64_t n, int64_t owner,
               int64_t *lot_id, bool *created);

/* Appends an entry and moves the lot's cached balance by `amount`. */
int entry_post(struct ledger_ctx *lx, int64_t lot_id, const char *kind, int64_t amount,
               int64_t effective_at, int64_t booking_id, const char *event_key,
               const char *policy_version, const char *memo);
/* A booking's debit in two steps, for a booking computed ahead (a plan):
 * lot_take moves the lot first, on the condition that it is open and still
 * holds `amount` (or is unlimited), in one statement (*taken false: nothing
 * written; *balance: the lot's after; `expect`, the balance the caller saw
 * or -1, spares reading it: store/lots.h); debit_post_taken then appends the
 * debit entry (amount > 0 taken) without moving the lot again.  lot_untake
 * gives back a take whose entry was not posted (another take of the same
 * booking failed), so that the transaction holds no move without its
 * entry.  `usage` (may be NULL) is what the usage counters need of the
 * booking and the lot, known to the caller (store/entries.h). */
int lot_take(struct ledger_ctx *lx, int64_t lot_id, int64_t amount, int64_t expect, bool *taken,
             int64_t *balance);
int lot_untake(struct ledger_ctx *lx, int64_t lot_id, int64_t amount);
int debit_post_taken(struct ledger_ctx *lx, int64_t lot_id, int64_t amount, int64_t effective_at,
                     int64_t booking_id, const char *policy_version,
                     const struct entry_usage *usage);
/* entry_post that also tells the new entry's id (*entry_id). */
int entry_post_id(struct ledger_ctx *lx, int64_t lot_id, const char *kind, int64_t amount,
                  int64_t effective_at, int64_t booking_id, const char *event_key,
                  const char *policy_version, const char *memo, int64_t *entry_id);

/* Processes every due boundary up to op->now. */
int ledger_advance(struct ledger_ctx *lx);
/* The earliest instant at which ledger_advance has work (TIME_NEVER: none). */
int ledger_next_due(struct ledger_ctx *lx, int64_t *due);

/* JSON contexts for policies. */
json_t *ctx_user(struct ledger_ctx *lx, int64_t user_id, int64_t *tenant_id, int *rc);
json_t *ctx_tenant(struct ledger_ctx *lx, int64_t tenant_id, int *rc);
json_t *ctx_alloc(const struct alloc *a);
json_t *ctx_line(const struct alloc_line *l);

/* Does the eligibility policy admit this user (and resource, when not
 * NULL) for line `line_idx` of `a`? */
int ledger_eligible(struct ledger_ctx *lx, struct policy_set *pol, const struct alloc *a, int line_idx,
                    json_t *user_ctx, json_t *tenant_ctx, json_t *resource_ctx, bool *ok);

/* Which building's eligibility policy decides whether an allocation line
 * may pay - one rule, everywhere:
 *   - with a resource (a booking or a quote), the eligibility policy of the
 *     resource's building decides (resource_building_id != 0);
 *   - without a resource (a wallet listing, the per-user lots opened at a
 *     period start), the line is the user's when the policy of any of the
 *     allocation's buildings admits it (ledger.c, eligible_in_any): the
 *     user holds what it may spend somewhere.
 * So one allocation is judged by the building where it is spent.  This
 * function names the building for the first case; for the second it
 * gives the allocation's first building (alloc_policy_building), the one
 * the rollover policy of a period end runs in. */
int64_t ledger_eligibility_building(const struct alloc *a, int64_t resource_building_id);

/* Collects the lots that may pay a booking of `resource_ctx` by the user at
 * instant t in `unit`.  Eligibility follows ledger_eligibility_building:
 * with a resource_ctx, `pol` (the resource building's set, held by the
 * caller) decides; with resource_ctx NULL, `pol` is ignored (may be NULL)
 * and each of the allocation's buildings' sets is asked (any admitting).  With create
 * true, missing period lots are created, else reported as virtual.  Lots with nothing left are skipped unless
 * with_empty (the wallet lists them).  The list grows as needed (no cap);
 * it is emptied first, and freed by the caller with cand_list_free.
 * user_ctx and tenant_ctx must be ctx_user(user_id) and ctx_tenant(tenant_id),
 * resource_ctx that of ledger_resource_get: on a read snapshot the
 * eligibility verdicts are kept by those ids (entities.h). */
int ledger_candidates(struct ledger_ctx *lx, struct policy_set *pol, int64_t user_id, int64_t tenant_id,
                      json_t *user_ctx, json_t *tenant_ctx, json_t *resource_ctx,
                      const char *unit, int64_t t, bool create, bool with_empty,
                      struct cand_list *list);

/* The order policies/default/order.lua gives the lots items[0..count):
 * order[k] is the index of the k-th lot to debit, the same permutation the
 * policy returns, without a policy call.  false (order untouched) when two
 * lots share an id (lots still to be created) or past 16 lots: then only
 * the policy itself orders them.  It is that file's order only: the label
 * of a set's order policy must be LEDGER_DEFAULT_ORDER_LABEL (the first 12
 * hex digits of the shipped file's SHA-256; an operator's edited default
 * has another, and is called), and tests/c/test_lot_order.c fails when
 * the shipped file changes without this. */
#define LEDGER_DEFAULT_ORDER_LABEL "default:eee7a7b8d43f"
bool ledger_default_order(const struct cand *items, int count, int *order);

/* A resource and its building, as quotes and bookings see them. */
struct ledger_resource {
    int64_t building_id;
    bool archived;
    bool pay_credits, pay_invoice, pay_card;
    char currency[8];
    json_t *ctx;      /* the resource's policy context */
    json_t *building; /* the building's policy context */
};

/* Resource `id` with its building: *found false for an unknown one.  On a
 * read snapshot (lx->cache) taken from the generation's kept entities when
 * an earlier request loaded it (entities.h).  The caller decrefs out->ctx
 * and out->building, and must not modify them (they may be shared). */
int ledger_resource_get(struct ledger_ctx *lx, int64_t id, struct ledger_resource *out,
                        bool *found);

/* Allocation `id` as alloc_load gives it (ENG_ENOTFOUND when unknown),
 * kept for the generation on a read snapshot: *out holds a reference
 * (ledger_alloc_release), *a points into it and must not be modified. */
struct ledger_alloc;
int ledger_alloc_get(struct ledger_ctx *lx, int64_t id, struct ledger_alloc **out,
                     const struct alloc **a);
void ledger_alloc_release(struct ledger_alloc *e); /* NULL is fine */

/* The building whose policies decide an allocation's rollover, and its
 * eligibility when no resource is involved: its first building. */
int64_t alloc_policy_building(const struct alloc *a);

#endif

/* test_lot_order.c - ledger_default_order (the order of
 * policies/default/order.lua computed in C, which bookings use instead of
 * calling the shipped default) gives exactly the permutation the policy
 * itself returns: 5,000 random sets of 1 to 8 lots drawn from small
 * domains (so that every key ties often and the later keys decide, down
 * to the ids compared as strings: lot_12 before lot_3), each ordered by
 * the real default policy in a real Lua state and by the C function.  And
 * the label the engine compares (LEDGER_DEFAULT_ORDER_LABEL) is the
 * shipped file's: editing order.lua without the C code fails here.
 * (Not named test_default_*: the usual ctest line's -E 'fault' would skip
 * it.) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "ledger.h"
#include "sets.h"
#include "sha256.h"

#include "xorshift.h"

/* The order policy's context as ops_booking.c's order_lots builds it. */
static json_t *
order_ctx(const struct cand *cands, int count)
{
    json_t *lots = json_array();
    for (int i = 0; i < count; i++) {
        const struct cand *c = &cands[i];
        json_t *lot = json_pack("{s:o, s:s, s:b, s:I, s:b, s:b, s:o, s:I, s:b, s:I}", "id",
                                id_json("lot", c->lot_id), "scope", c->scope, "per_user",
                                c->per_user, "valid_from", (json_int_t)c->valid_from, "recurring",
                                c->recurring, "rollover", c->rollover, "allocation_id",
                                id_json("alc", c->alloc_id), "allocation_seq",
                                (json_int_t)c->alloc_seq, "unlimited", c->unlimited, "balance",
                                (json_int_t)(c->unlimited ? 0 : c->balance));
        if (c->valid_until != TIME_NEVER) {
            json_object_set_new(lot, "valid_until", json_integer(c->valid_until));
        }
        json_array_append_new(lots, lot);
    }
    return json_pack("{s:o, s:{s:I, s:I}}", "lots", lots, "booking", "start",
                     (json_int_t)1800000000, "end", (json_int_t)1800003600);
}

int
main(void)
{
    /* The label is the shipped file's hash. */
    const char *path = ALLOT_SOURCE_DIR "/policies/default/order.lua";
    FILE *f = fopen(path, "rb");
    CHECK(f != NULL);
    static char text[1 << 16];
    size_t len = f != NULL ? fread(text, 1, sizeof text, f) : 0;
    if (f != NULL) {
        fclose(f);
    }
    char hex[65], label[32];
    sha256_hex(text, len, hex);
    snprintf(label, sizeof label, "default:%.12s", hex);
    CHECK(strcmp(label, LEDGER_DEFAULT_ORDER_LABEL) == 0);

    struct policy_limits lim;
    policy_limits_default(&lim);
    lim.wall_ms_max = 10000; /* valgrind or a loaded machine */
    struct policy_cache pc;
    struct eng_error err = {0};
    CHECK_INT(policy_cache_open(&pc, ALLOT_SOURCE_DIR "/policies", &lim, &err), 0);
    struct policy_set *set = NULL;
    char versions[POLICY_KIND_COUNT][POLICY_LABEL_MAX];
    CHECK_INT(policy_cache_get(&pc, NULL, 0, &set, versions, &err), 0);
    CHECK(strcmp(versions[POLICY_ORDER], LEDGER_DEFAULT_ORDER_LABEL) == 0);

    static const char *const scopes[] = {"all", "resources", "tags"};
    static const int64_t untils[] = {TIME_NEVER, 1800100000, 1800200000};
    static const int64_t ids[] = {1, 2, 3, 9, 10, 12, 21, 100, 123, 1000, 99999};
    int same = 0, sets = 5000, fast = 0;
    for (int n = 0; n < sets; n++) {
        struct cand cands[8];
        int count = 1 + (int)(next() % 8);
        uint64_t used = 0;
        for (int i = 0; i < count; i++) {
            struct cand *c = &cands[i];
            memset(c, 0, sizeof *c);
            int pick;
            do {
                pick = (int)(next() % (sizeof ids / sizeof ids[0]));
            } while (used & (1u << pick));
            used |= 1u << pick;
            c->lot_id = ids[pick];
            c->alloc_id = c->alloc_seq = 1 + (int64_t)(next() % 3);
            c->unlimited = next() % 4 == 0;
            c->per_user = next() % 2;
            c->recurring = next() % 2;
            c->rollover = next() % 3 == 0;
            c->valid_from = 1799000000;
            c->valid_until = untils[next() % 3];
            c->balance = 1000 * (int64_t)(next() % 5);
            snprintf(c->scope, sizeof c->scope, "%s", scopes[next() % 3]);
        }
        int order[8];
        bool ok = ledger_default_order(cands, count, order);
        fast += ok;
        json_t *ctx = order_ctx(cands, count), *res = NULL;
        int rc = policy_set_call(set, POLICY_ORDER, ctx, &res, &err);
        json_decref(ctx);
        bool agree = ok && rc == 0 && json_is_array(res) && json_array_size(res) == (size_t)count;
        for (int k = 0; agree && k < count; k++) {
            char want[32];
            id_format("lot", cands[order[k]].lot_id, want, sizeof want);
            const char *got = json_string_value(json_array_get(res, (size_t)k));
            agree = got != NULL && strcmp(got, want) == 0;
        }
        if (!agree) {
            char *dump = json_dumps(res, JSON_COMPACT);
            printf("# set %d (%d lots): the policy says %s\n", n, count, dump ? dump : "?");
            free(dump);
        }
        same += agree;
        json_decref(res);
    }
    CHECK_INT(fast, sets);
    CHECK_INT(same, sets);
    /* Large sets take the same path (a tenant with thousands of lots that
     * pay: the policy itself ran out of its instruction budget past ~3,000
     * and the booking failed): 1,200 lots against the policy, and 20,000,
     * which the policy cannot order within its budget, a permutation. */
    enum { BIG = 20000, CHECKED = 1200 };
    struct cand *big = calloc(BIG, sizeof *big);
    int *big_order = calloc(BIG, sizeof *big_order);
    bool *seen = calloc(BIG, sizeof *seen);
    CHECK(big != NULL && big_order != NULL && seen != NULL);
    for (int i = 0; big != NULL && i < BIG; i++) {
        struct cand *c = &big[i];
        c->lot_id = 1 + i;
        c->alloc_id = c->alloc_seq = 1 + (int64_t)(next() % 300);
        c->unlimited = next() % 50 == 0;
        c->per_user = next() % 2;
        c->recurring = next() % 2;
        c->rollover = next() % 3 == 0;
        c->valid_from = 1799000000;
        c->valid_until = untils[next() % 3];
        c->balance = 1000;
        snprintf(c->scope, sizeof c->scope, "%s", scopes[next() % 3]);
    }
    if (big != NULL && big_order != NULL && seen != NULL) {
        CHECK(ledger_default_order(big, CHECKED, big_order));
        json_t *ctx = order_ctx(big, CHECKED), *res = NULL;
        CHECK_INT(policy_set_call(set, POLICY_ORDER, ctx, &res, &err), 0);
        json_decref(ctx);
        int agree = 0;
        for (int k = 0; k < CHECKED && json_array_size(res) == CHECKED; k++) {
            char want[32];
            id_format("lot", big[big_order[k]].lot_id, want, sizeof want);
            const char *got = json_string_value(json_array_get(res, (size_t)k));
            agree += got != NULL && strcmp(got, want) == 0;
        }
        CHECK_INT(agree, CHECKED);
        json_decref(res);
        CHECK(ledger_default_order(big, BIG, big_order));
        int distinct = 0;
        for (int k = 0; k < BIG; k++) {
            if (big_order[k] >= 0 && big_order[k] < BIG && !seen[big_order[k]]) {
                seen[big_order[k]] = true;
                distinct++;
            }
        }
        CHECK_INT(distinct, BIG);
    }
    free(big);
    free(big_order);
    free(seen);
    /* Lots still to be made share an id: left to the policy. */
    struct cand twins[2] = {{.lot_id = 0}, {.lot_id = 0}};
    int order[2];
    CHECK(!ledger_default_order(twins, 2, order));
    policy_set_release(set);
    policy_cache_close(&pc);
    return check_exit();
}

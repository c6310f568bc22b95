/* test_entities.c - the entities kept per portfolio generation
 * (ledger/entities.c and its use by ledger.c): the container's rules, then
 * quotes through the engine on a real SQLite file, with the writer thread
 * running.
 *
 * A second quote is served from the cache (hits, no new misses); every
 * change a quote depends on - a resource's pricing, a user's roles (the
 * eligibility verdict), an eligibility policy activated - is seen by the
 * very next quote; quotes on four threads while the pricing changes each
 * answer one of the two prices, and the last one the new price. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "amount.h"
#include "check.h"
#include "engine_calls.h"
#include "engine.h"
#include "entities.h"
#include "ops.h"

static struct engine eng;
static struct principal admin = {.role = ROLE_SUPER_ADMIN, .name = "test"};
static char *room, *user;

static json_t *
must(const char *op, json_t *args)
{
    return engine_must(&eng, &admin, "test_entities", op, args);
}

/* The credit price of a one-hour quote in milli, or -1 when credits
 * cannot pay (no eligible lot). */
static int64_t
quote_credits(void)
{
    json_t *q = must("quotes.create",
                     json_pack("{s:s, s:s, s:s, s:s}", "resource_id", room, "user_id", user,
                               "start", "2026-01-20T09:00:00Z", "end", "2026-01-20T10:00:00Z"));
    json_t *amount = json_object_get(json_object_get(q, "credits"), "amount");
    int64_t milli = -1;
    struct eng_error err = {0};
    if (amount != NULL && amount_from_json(amount, &milli, &err) != 0) {
        milli = -2;
    }
    json_decref(q);
    return milli;
}

/* The credits a one-hour quote says are available (milli), or -1 when
 * credits cannot pay. */
static int64_t
quote_available(void)
{
    json_t *q = must("quotes.create",
                     json_pack("{s:s, s:s, s:s, s:s}", "resource_id", room, "user_id", user,
                               "start", "2026-01-20T09:00:00Z", "end", "2026-01-20T10:00:00Z"));
    json_t *available = json_object_get(json_object_get(q, "credits"), "available");
    int64_t milli = -1;
    struct eng_error err = {0};
    if (available != NULL && amount_from_json(available, &milli, &err) != 0) {
        milli = -2;
    }
    json_decref(q);
    return milli;
}

/* Books hour h (UTC) of 2026-01-21 with credits. */
static void
book_hour(int h)
{
    char start[32], end[32];
    snprintf(start, sizeof start, "2026-01-21T%02d:00:00Z", h);
    snprintf(end, sizeof end, "2026-01-21T%02d:00:00Z", h + 1);
    json_decref(must("bookings.create",
                     json_pack("{s:s, s:s, s:s, s:s, s:s}", "resource_id", room, "user_id", user,
                               "start", start, "end", end, "payment_method", "credits")));
}

static void
set_price(int per_hour)
{
    json_decref(must("resources.patch",
                     json_pack("{s:s, s:{s:{s:s, s:i, s:i}}}", "id", room, "pricing", "credits",
                               "unit", "hour", "per_hour", per_hour, "increment_minutes", 30)));
}

static void
set_roles(const char *role)
{
    json_decref(must("users.patch", json_pack("{s:s, s:[s]}", "id", user, "roles", role)));
}

/* ---- the container alone ---- */

static int destroyed;

static void
obj_destroy(struct entity_obj *obj)
{
    destroyed++;
    free(obj);
}

static void
test_container(void)
{
    struct entity_cache *c = entity_cache_open();
    CHECK(c != NULL);
    struct entity_key k = {ENTITY_USER, {7}};
    struct entity_value v = {.n = 42, .json = {json_string("seven")}};
    entity_cache_put(c, 5, &k, &v);
    CHECK(v.json[0] == NULL); /* taken */
    struct entity_value got;
    CHECK(entity_cache_get(c, 5, &k, &got));
    CHECK_INT(got.n, 42);
    CHECK_STR(json_string_value(got.json[0]), "seven");
    entity_value_clear(&got);
    /* Another generation is never served, older or newer. */
    CHECK(!entity_cache_get(c, 4, &k, &got));
    CHECK(!entity_cache_get(c, 6, &k, &got));
    /* An older generation is not kept. */
    struct entity_key k2 = {ENTITY_USER, {8}};
    v = (struct entity_value){.n = 1};
    entity_cache_put(c, 4, &k2, &v);
    CHECK(!entity_cache_get(c, 4, &k2, &got));
    /* A newer one empties the cache: the shared object of generation 5 is
     * destroyed once the holder lets go of it too. */
    struct entity_obj *obj = malloc(sizeof *obj);
    entity_obj_init(obj, obj_destroy);
    struct entity_key k3 = {ENTITY_ALLOC, {9}};
    v = (struct entity_value){.obj = obj};
    entity_cache_put(c, 5, &k3, &v);
    CHECK(entity_cache_get(c, 5, &k3, &got));
    CHECK(got.obj == obj);
    v = (struct entity_value){.n = 2};
    entity_cache_put(c, 6, &k2, &v);
    CHECK(!entity_cache_get(c, 5, &k, &got));
    CHECK(!entity_cache_get(c, 6, &k, &got));
    CHECK(entity_cache_get(c, 6, &k2, &got));
    CHECK_INT(got.n, 2);
    CHECK_INT(destroyed, 0); /* still held */
    entity_value_clear(&got);
    got = (struct entity_value){.obj = obj};
    entity_value_clear(&got);
    CHECK_INT(destroyed, 1);
    /* The mix: 1,000 users x 20 resources of verdicts, and a lot
     * fact per user, all kept at once (no fresh start) and all found. */
    struct entity_cache_stats st0, st1;
    entity_cache_stats(c, &st0);
    for (int pass = 0; pass < 2; pass++) {
        for (int u = 0; u < 1000; u++) {
            for (int r = 0; r < 21; r++) {
                struct entity_key ki = {r < 20 ? ENTITY_ELIG : ENTITY_LOT, {100 + u, r, 7}};
                if (pass == 0) {
                    v = (struct entity_value){.n = u * 100 + r};
                    entity_cache_put(c, 6, &ki, &v);
                } else {
                    CHECK(entity_cache_get(c, 6, &ki, &got));
                    CHECK_INT(got.n, u * 100 + r);
                    entity_value_clear(&got);
                }
            }
        }
    }
    entity_cache_stats(c, &st1);
    CHECK_INT(st1.resets, st0.resets);
    CHECK_INT(st1.hits - st0.hits, 21000);
    CHECK(entity_cache_get(c, 6, &k2, &got));
    entity_value_clear(&got);
    /* Derived facts (verdicts) past their bound start afresh on their own:
     * the entities stay. */
    for (int i = 0; i < ENTITY_CACHE_FACTS_MAX + 10; i++) {
        struct entity_key ki = {ENTITY_ELIG, {1, i}};
        v = (struct entity_value){.n = 1};
        entity_cache_put(c, 6, &ki, &v);
    }
    CHECK(entity_cache_get(c, 6, &k2, &got));
    struct entity_key elig0 = {ENTITY_ELIG, {1, 0}};
    struct entity_value none;
    CHECK(!entity_cache_get(c, 6, &elig0, &none));
    /* Past the bound the cache starts afresh instead of growing. */
    for (int i = 0; i < ENTITY_CACHE_ENTRIES_MAX + 10; i++) {
        struct entity_key ki = {ENTITY_TENANT, {i}};
        v = (struct entity_value){.n = i};
        entity_cache_put(c, 6, &ki, &v);
    }
    struct entity_key last = {ENTITY_TENANT, {ENTITY_CACHE_ENTRIES_MAX + 9}};
    CHECK(entity_cache_get(c, 6, &last, &got));
    struct entity_key first = {ENTITY_TENANT, {0}};
    CHECK(!entity_cache_get(c, 6, &first, &got));
    entity_cache_close(c);
}

/* ---- quotes on several threads while the price changes ---- */

struct quoter {
    int n, bad;
    int64_t a, b;
};

static void *
quoter_run(void *arg)
{
    struct quoter *q = arg;
    for (int i = 0; i < q->n; i++) {
        int64_t got = quote_credits();
        q->bad += got != q->a && got != q->b;
    }
    return NULL;
}

int
main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    test_container();

    char dir[] = "/tmp/allot-entities-XXXXXX";
    if (mkdtemp(dir) == NULL) {
        perror("mkdtemp");
        return 2;
    }
    struct engine_config cfg;
    engine_test_config(&cfg, dir, "entities.db");
    struct eng_error err = {0};
    CHECK_INT(engine_open(&eng, &cfg, &err), 0);
    CHECK_INT(engine_start_writer(&eng, &err), 0);
    CHECK(eng.env->entities != NULL);

    char *bld = id_of(must("buildings.create", json_pack("{s:s, s:s, s:s}", "name", "HQ",
                                                         "timezone", "Europe/Paris",
                                                         "currency", "EUR")));
    room = id_of(must("resources.create",
                      json_pack("{s:s, s:s}", "building_id", bld, "name", "A")));
    set_price(1);
    char *ten = id_of(must("tenants.create", json_pack("{s:s, s:[s]}", "name", "One",
                                                       "building_ids", bld)));
    user = id_of(must("users.create", json_pack("{s:s, s:s, s:s, s:[s]}", "tenant_id", ten,
                                                 "name", "Ada", "email", "ada@x.io", "roles",
                                                 "member")));
    json_decref(must("allocations.create",
                     json_pack("{s:s, s:[s], s:s, s:[{s:s, s:i}], s:{s:s}, s:{s:s, s:[s]}}",
                               "tenant_id", ten, "building_ids", bld, "unit", "hour", "lines",
                               "scope", "all", "amount", 10, "schedule", "start", "2026-01-01",
                               "targeting", "type", "roles", "roles", "member")));

    /* The first quote loads; the second finds everything kept. */
    CHECK_INT(quote_credits(), 1000);
    struct entity_cache_stats s0, s1;
    entity_cache_stats(eng.env->entities, &s0);
    CHECK_INT(quote_credits(), 1000);
    entity_cache_stats(eng.env->entities, &s1);
    CHECK(s1.hits - s0.hits >= 5); /* user, tenant, resource, allocation, verdict */
    CHECK_INT(s1.misses - s0.misses, 0);

    /* Each change is seen by the next quote. */
    set_price(2);
    CHECK_INT(quote_credits(), 2000);
    set_roles("guest"); /* the allocation no longer targets the user */
    CHECK_INT(quote_credits(), -1);
    set_roles("member");
    CHECK_INT(quote_credits(), 2000);
    json_decref(must("policies.put",
                     json_pack("{s:s, s:s, s:s}", "building_id", bld, "kind", "eligibility",
                               "source",
                               "local M = {}\n"
                               "function M.eligible(ctx) return false end\n"
                               "return M\n")));
    CHECK_INT(quote_credits(), -1);
    json_decref(must("policies.delete",
                     json_pack("{s:s, s:s}", "building_id", bld, "kind", "eligibility")));
    CHECK_INT(quote_credits(), 2000);

    /* Quotes on four threads while the price moves from 2 to 3. */
    struct quoter q[4];
    pthread_t t[4];
    for (int i = 0; i < 4; i++) {
        q[i] = (struct quoter){.n = 60, .a = 2000, .b = 3000};
        pthread_create(&t[i], NULL, quoter_run, &q[i]);
    }
    usleep(20000);
    set_price(3);
    for (int i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
        CHECK_INT(q[i].bad, 0);
    }
    CHECK_INT(quote_credits(), 3000);

    /* A lot is kept for the generation but its balance is not: bookings
     * that leave it above zero move no generation, and the next quote
     * still sees each one's debit, with nothing loaded again. */
    CHECK_INT(quote_available(), 10000);
    book_hour(8);
    CHECK_INT(quote_available(), 7000);
    entity_cache_stats(eng.env->entities, &s0);
    book_hour(9);
    CHECK_INT(quote_available(), 4000);
    entity_cache_stats(eng.env->entities, &s1);
    CHECK_INT(s1.misses - s0.misses, 0);
    /* A tenant's allocations are kept too: a new one pays from the next
     * quote on (its lot still to be made), and once ended before the
     * quoted hour (it has not begun) no longer does. */
    char *second = id_of(must(
        "allocations.create",
        json_pack("{s:s, s:[s], s:s, s:[{s:s, s:i}], s:{s:s}}", "tenant_id", ten,
                  "building_ids", bld, "unit", "hour", "lines", "scope", "all", "amount", 5,
                  "schedule", "start", "2026-01-10")));
    CHECK_INT(quote_available(), 9000);
    json_decref(must("allocations.end", json_pack("{s:s, s:s}", "id", second, "end",
                                                  "2026-01-15")));
    CHECK_INT(quote_available(), 4000);
    free(second);
    /* The last hour empties the lot (a generation move): no credits left. */
    book_hour(10);
    CHECK_INT(quote_available(), 1000);
    set_price(1);
    CHECK_INT(quote_available(), 1000);
    book_hour(11);
    CHECK_INT(quote_available(), -1);

    engine_close(&eng);
    free(bld);
    free(room);
    free(ten);
    free(user);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0) {
        return 1;
    }
    return check_exit();
}

/* test_plans.c - bookings computed outside the writer (ops_booking.c
 * op_book_plan, core/engine.c plan_compute) against a real SQLite file with
 * the group-commit writer thread running.
 *
 * Two bookings compute their plans against the same snapshot, both paying
 * with the lot's last credits: the test holds write_mu so that neither can
 * commit before both plans exist.  Then the writer applies the first plan;
 * the second no longer holds (the lot is empty), so the writer computes that
 * booking afresh and answers as if it had come alone after the first: 409
 * insufficient_credits with one lot, paid from the other lot with two.
 * Two plans of one user: the usage counter the second read has moved, so
 * validate and pricing run again in the writer; same answer, the plan is
 * applied; a validate policy that now refuses, the booking is refused.
 * Plans whose generation still holds but whose lot no longer does: the
 * writer's conditional debit (UPDATE ... WHERE balance >= take) refuses,
 * and the booking is computed afresh; with two lots, the first debit made
 * is given back before that, and verify finds every lot consistent. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "amount.h"
#include "check.h"
#include "engine_calls.h"
#include "engine.h"
#include "ops.h"

static struct engine eng;
static struct principal admin = {.role = ROLE_SUPER_ADMIN, .name = "test"};

static json_t *
must(const char *op, json_t *args)
{
    return engine_must(&eng, &admin, "test_plans", op, args);
}

struct attempt {
    const char *room, *user, *start, *end;
    int rc;
    struct eng_error err;
    json_t *out;
};

static void *
attempt_book(void *arg)
{
    struct attempt *a = arg;
    bool created, replayed;
    json_t *args = json_pack("{s:s, s:s, s:s, s:s, s:s}", "resource_id", a->room, "user_id",
                             a->user, "start", a->start, "end", a->end, "payment_method",
                             "credits");
    a->rc = engine_exec(&eng, &admin, "bookings.create", args, NULL, &a->out, &created,
                        &replayed, &a->err);
    json_decref(args);
    return NULL;
}

/* Runs two bookings whose plans are both made before either commits. */
static void
race2(struct attempt *a, struct attempt *b)
{
    struct ops_plan_stats before, now;
    ops_plan_stats(&before);
    pthread_mutex_lock(&eng.write_mu);
    pthread_t ta, tb;
    pthread_create(&ta, NULL, attempt_book, a);
    pthread_create(&tb, NULL, attempt_book, b);
    for (int i = 0; i < 20000; i++) {
        ops_plan_stats(&now);
        if (now.made - before.made >= 2) {
            break;
        }
        usleep(500);
    }
    CHECK_INT(now.made - before.made, 2);
    pthread_mutex_unlock(&eng.write_mu);
    pthread_join(ta, NULL);
    pthread_join(tb, NULL);
}

/* Jobs ever queued for the writer. */
static uint64_t
jobs_queued(void)
{
    pthread_mutex_lock(&eng.queue_mu);
    uint64_t n = eng.jobs_queued;
    pthread_mutex_unlock(&eng.queue_mu);
    return n;
}

/* Waits (at most 10 s) until n jobs were queued since `before`. */
static void
queued_since(uint64_t before, uint64_t n)
{
    for (int i = 0; i < 20000 && jobs_queued() - before < n; i++) {
        usleep(500);
    }
    CHECK(jobs_queued() - before >= n);
}

/* Two plans made on one snapshot, `first` queued (and so applied) before
 * `second`. */
static void
race_ordered(struct attempt *first, struct attempt *second)
{
    struct ops_plan_stats before, now;
    ops_plan_stats(&before);
    uint64_t queued = jobs_queued();
    pthread_mutex_lock(&eng.write_mu);
    pthread_t ta, tb;
    pthread_create(&ta, NULL, attempt_book, first);
    for (int i = 0; i < 20000; i++) {
        ops_plan_stats(&now);
        if (now.made - before.made >= 1) {
            break;
        }
        usleep(500);
    }
    queued_since(queued, 1); /* its job queued: microseconds after its plan */
    pthread_create(&tb, NULL, attempt_book, second);
    for (int i = 0; i < 20000; i++) {
        ops_plan_stats(&now);
        if (now.made - before.made >= 2) {
            break;
        }
        usleep(500);
    }
    CHECK_INT(now.made - before.made, 2);
    pthread_mutex_unlock(&eng.write_mu);
    pthread_join(ta, NULL);
    pthread_join(tb, NULL);
}

/* Waits until at least n plans were made since `before`. */
static void
plans_made(const struct ops_plan_stats *before, long n)
{
    struct ops_plan_stats now;
    for (int i = 0; i < 20000; i++) {
        ops_plan_stats(&now);
        if (now.made - before->made >= n) {
            return;
        }
        usleep(500);
    }
}

/* Whether the write queue is empty (taken by the writer), or not. */
static bool
queue_empty(void)
{
    pthread_mutex_lock(&eng.queue_mu);
    bool empty = eng.queue_head == NULL;
    pthread_mutex_unlock(&eng.queue_mu);
    return empty;
}

/* Runs `first` and `second` in one group-commit batch, in that order: a
 * booking `lead`, in a batch of its own, holds the writer at write_mu
 * while both are planned and queued behind it. */
static void
batch_of_two(struct attempt *lead, struct attempt *first, struct attempt *second)
{
    struct ops_plan_stats before;
    ops_plan_stats(&before);
    uint64_t queued = jobs_queued();
    pthread_mutex_lock(&eng.write_mu);
    pthread_t tl, ta, tb;
    pthread_create(&tl, NULL, attempt_book, lead);
    plans_made(&before, 1);
    queued_since(queued, 1);
    /* and taken: the writer waits for write_mu */
    for (int i = 0; i < 20000 && !queue_empty(); i++) {
        usleep(500);
    }
    CHECK(queue_empty());
    pthread_create(&ta, NULL, attempt_book, first);
    plans_made(&before, 2);
    for (int i = 0; i < 20000 && queue_empty(); i++) {
        usleep(500);
    }
    CHECK(!queue_empty());
    pthread_create(&tb, NULL, attempt_book, second);
    plans_made(&before, 3);
    queued_since(queued, 3); /* queued behind `first` */
    pthread_mutex_unlock(&eng.write_mu);
    pthread_join(tl, NULL);
    pthread_join(ta, NULL);
    pthread_join(tb, NULL);
}

/* race2, where the first plan is applied and the second found stale. */
static void
race(struct attempt *a, struct attempt *b)
{
    struct ops_plan_stats before, now;
    ops_plan_stats(&before);
    race2(a, b);
    ops_plan_stats(&now);
    CHECK_INT(now.applied - before.applied, 1);
    CHECK_INT(now.recomputed - before.recomputed, 1);
}

/* The lot ids a booking answer was paid from, "lot_1+lot_2". */
static void
paid_from(json_t *booking, char *buf, size_t len)
{
    json_t *paid = json_object_get(json_object_get(booking, "credits"), "paid_from");
    buf[0] = '\0';
    size_t i;
    json_t *part;
    json_array_foreach(paid, i, part) {
        size_t used = strlen(buf);
        snprintf(buf + used, len - used, "%s%s", i ? "+" : "",
                 json_string_value(json_object_get(part, "lot_id")));
    }
}

static int
verify_clean(void)
{
    json_t *problems = json_array();
    struct eng_error err = {0};
    int rc = engine_verify(&eng, problems, &err);
    size_t n = json_array_size(problems);
    json_decref(problems);
    return rc == 0 && n == 0;
}

int
main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    char dir[] = "/tmp/allot-plans-XXXXXX";
    if (mkdtemp(dir) == NULL) {
        perror("mkdtemp");
        return 2;
    }
    struct engine_config cfg;
    engine_test_config(&cfg, dir, "plans.db");
    struct eng_error err = {0};
    CHECK_INT(engine_open(&eng, &cfg, &err), 0);
    CHECK_INT(engine_start_writer(&eng, &err), 0);

    char *bld = id_of(must("buildings.create", json_pack("{s:s, s:s, s:s}", "name", "HQ",
                                                         "timezone", "UTC", "currency", "USD")));
    char *rooms[2];
    for (int i = 0; i < 2; i++) {
        rooms[i] = id_of(must("resources.create",
                              json_pack("{s:s, s:s, s:{s:{s:s, s:i, s:i}}}", "building_id", bld,
                                        "name", i ? "B" : "A", "pricing", "credits", "unit",
                                        "hour", "per_hour", 1, "increment_minutes", 30)));
    }
    /* Tenant 1: one allocation of exactly one hour. */
    char *t1 = id_of(must("tenants.create", json_pack("{s:s, s:[s]}", "name", "One",
                                                      "building_ids", bld)));
    char *u1 = id_of(must("users.create", json_pack("{s:s, s:s, s:s}", "tenant_id", t1,
                                                     "name", "Ada", "email", "ada@x.io")));
    json_decref(must("allocations.create",
                     json_pack("{s:s, s:[s], s:s, s:[{s:s, s:i}], s:{s:s}}", "tenant_id", t1,
                               "building_ids", bld, "unit", "hour", "lines", "scope", "all",
                               "amount", 1, "schedule", "start", "2026-01-01")));
    /* Tenant 2: one hour in an allocation the order policy takes first
     * (the older), five in another. */
    char *t2 = id_of(must("tenants.create", json_pack("{s:s, s:[s]}", "name", "Two",
                                                      "building_ids", bld)));
    char *u2 = id_of(must("users.create", json_pack("{s:s, s:s, s:s}", "tenant_id", t2,
                                                     "name", "Bob", "email", "bob@x.io")));
    for (int i = 0; i < 2; i++) {
        json_decref(must("allocations.create",
                         json_pack("{s:s, s:[s], s:s, s:[{s:s, s:i}], s:{s:s}}", "tenant_id",
                                   t2, "building_ids", bld, "unit", "hour", "lines", "scope",
                                   "all", "amount", i ? 5 : 1, "schedule", "start",
                                   "2026-01-01")));
    }
    /* Both lots exist before the race (a lot a plan would create is left to
     * the writer): a booking in each, then cancelled with full refund. */
    json_t *warm = must("bookings.create",
                        json_pack("{s:s, s:s, s:s, s:s, s:s}", "resource_id", rooms[0],
                                  "user_id", u1, "start", "2026-01-20T09:00:00Z", "end",
                                  "2026-01-20T10:00:00Z", "payment_method", "credits"));
    json_decref(must("bookings.cancel", json_pack("{s:O}", "id", json_object_get(warm, "id"))));
    json_decref(warm);
    for (int i = 0; i < 2; i++) {
        char start[32], end[32];
        snprintf(start, sizeof start, "2026-01-2%dT09:00:00Z", i + 1);
        snprintf(end, sizeof end, "2026-01-2%dT%s:00:00Z", i + 1, i ? "15" : "10");
        warm = must("bookings.create",
                    json_pack("{s:s, s:s, s:s, s:s, s:s}", "resource_id", rooms[0], "user_id",
                              u2, "start", start, "end", end, "payment_method", "credits"));
        json_decref(must("bookings.cancel", json_pack("{s:O}", "id", json_object_get(warm, "id"))));
        json_decref(warm);
    }

    /* One lot, one hour left, two bookings of an hour each. */
    struct attempt a = {rooms[0], u1, "2026-01-10T09:00:00Z", "2026-01-10T10:00:00Z"};
    struct attempt b = {rooms[1], u1, "2026-01-10T09:00:00Z", "2026-01-10T10:00:00Z"};
    race(&a, &b);
    CHECK_INT((a.rc == 0) + (b.rc == 0), 1);
    struct attempt *lost = a.rc == 0 ? &b : &a;
    CHECK_INT(lost->rc, ENG_ECONFLICT);
    CHECK_STR(eng_error_code_of(&lost->err), "insufficient_credits");
    CHECK(lost->out == NULL);
    json_decref(a.out);
    json_decref(b.out);

    /* Two lots: the second booking, its plan stale, pays from the other. */
    struct attempt c = {rooms[0], u2, "2026-01-11T09:00:00Z", "2026-01-11T10:00:00Z"};
    struct attempt d = {rooms[1], u2, "2026-01-11T09:00:00Z", "2026-01-11T10:00:00Z"};
    race(&c, &d);
    CHECK_INT(c.rc, 0);
    CHECK_INT(d.rc, 0);
    char pc[64] = "", pd[64] = "";
    paid_from(c.out, pc, sizeof pc);
    paid_from(d.out, pd, sizeof pd);
    CHECK(pc[0] != '\0' && pd[0] != '\0' && strchr(pc, '+') == NULL && strchr(pd, '+') == NULL);
    CHECK(strcmp(pc, pd) != 0);
    /* The re-run saw the first booking: 6 hours, then 5 left after the
     * first, 4 after the second. */
    json_t *ac = json_object_get(json_object_get(c.out, "credits"), "balance_after");
    json_t *ad = json_object_get(json_object_get(d.out, "credits"), "balance_after");
    json_t *five = amount_to_json(5000), *four = amount_to_json(4000);
    CHECK((json_equal(ac, five) && json_equal(ad, four)) ||
          (json_equal(ac, four) && json_equal(ad, five)));
    json_decref(five);
    json_decref(four);
    json_decref(c.out);
    json_decref(d.out);

    /* A plan that holds is applied, and its answer is what a read gives. */
    struct ops_plan_stats s0, s1;
    ops_plan_stats(&s0);
    json_t *e = must("bookings.create",
                     json_pack("{s:s, s:s, s:s, s:s, s:s}", "resource_id", rooms[0], "user_id",
                               u2, "start", "2026-01-12T09:00:00Z", "end",
                               "2026-01-12T10:00:00Z", "payment_method", "credits"));
    ops_plan_stats(&s1);
    CHECK_INT(s1.applied - s0.applied, 1);
    json_t *read = must("bookings.get", json_pack("{s:O}", "id", json_object_get(e, "id")));
    CHECK(json_object_del(json_object_get(e, "credits"), "balance_after") == 0);
    CHECK(json_object_get(read, "credits") != NULL);
    CHECK(json_equal(e, read));
    json_decref(e);
    json_decref(read);

    /* The same user twice, with the default policies, which never look at
     * ctx.user_usage_month: the plans carry no usage condition, so the
     * first booking moving the counter changes nothing for the second;
     * both are applied and neither is priced again in the writer. */
    struct attempt f = {rooms[0], u2, "2026-01-13T09:00:00Z", "2026-01-13T10:00:00Z"};
    struct attempt g = {rooms[1], u2, "2026-01-13T09:00:00Z", "2026-01-13T10:00:00Z"};
    ops_plan_stats(&s0);
    race2(&f, &g);
    ops_plan_stats(&s1);
    CHECK_INT(f.rc, 0);
    CHECK_INT(g.rc, 0);
    CHECK_INT(s1.applied - s0.applied, 2);
    CHECK_INT(s1.repriced - s0.repriced, 0);
    CHECK_INT(s1.recomputed - s0.recomputed, 0);
    json_t *af = json_object_get(json_object_get(f.out, "credits"), "balance_after");
    json_t *ag = json_object_get(json_object_get(g.out, "credits"), "balance_after");
    json_t *two = amount_to_json(2000), *one = amount_to_json(1000);
    CHECK((json_equal(af, two) && json_equal(ag, one)) ||
          (json_equal(af, one) && json_equal(ag, two)));
    json_decref(two);
    json_decref(one);
    json_decref(f.out);
    json_decref(g.out);

    /* A validate policy that reads the usage (and accepts anything): the
     * second plan read the counter before the first booking moved it, so
     * validate and pricing run again in the writer with the new usage,
     * give the same answer, and the plan holds. */
    json_decref(must("policies.put",
                     json_pack("{s:s, s:s, s:s}", "building_id", bld, "kind", "validate",
                               "source",
                               "local M = {}\n"
                               "function M.validate(ctx)\n"
                               "  if ctx.user_usage_month > 10 ^ 12 then\n"
                               "    return { error = 'never' }\n"
                               "  end\n"
                               "  return true\n"
                               "end\n"
                               "return M\n")));
    f = (struct attempt){rooms[0], u2, "2026-01-20T09:00:00Z", "2026-01-20T09:30:00Z"};
    g = (struct attempt){rooms[1], u2, "2026-01-20T09:00:00Z", "2026-01-20T09:30:00Z"};
    ops_plan_stats(&s0);
    race2(&f, &g);
    ops_plan_stats(&s1);
    CHECK_INT(f.rc, 0);
    CHECK_INT(g.rc, 0);
    CHECK_INT(s1.applied - s0.applied, 2);
    CHECK_INT(s1.repriced - s0.repriced, 1);
    CHECK_INT(s1.recomputed - s0.recomputed, 0);
    /* Both cancelled (full refund by an admin): the lots keep what the
     * cases below need. */
    for (int i = 0; i < 2; i++) {
        json_t *paid = i == 0 ? f.out : g.out;
        json_decref(must("bookings.cancel", json_pack("{s:O}", "id", json_object_get(paid, "id"))));
        json_decref(paid);
    }

    /* A validate policy that reads the usage: one booking a month by
     * credits.  Both plans saw none; the second is refused once the first
     * is written, as it would be after it. */
    json_decref(must("policies.put",
                     json_pack("{s:s, s:s, s:s}", "building_id", bld, "kind", "validate",
                               "source",
                               "local M = {}\n"
                               "function M.validate(ctx)\n"
                               "  if ctx.user_usage_month > 0 then\n"
                               "    return { error = 'one booking a month' }\n"
                               "  end\n"
                               "  return true\n"
                               "end\n"
                               "M.examples = { { ctx = { user_usage_month = 0 }, expect = true },\n"
                               "  { ctx = { user_usage_month = 1 },\n"
                               "    expect = { error = 'one booking a month' } } }\n"
                               "return M\n")));
    char *u3 = id_of(must("users.create", json_pack("{s:s, s:s, s:s}", "tenant_id", t2,
                                                     "name", "Cy", "email", "cy@x.io")));
    struct attempt h = {rooms[0], u3, "2026-01-14T09:00:00Z", "2026-01-14T09:30:00Z"};
    struct attempt k = {rooms[1], u3, "2026-01-14T09:00:00Z", "2026-01-14T09:30:00Z"};
    ops_plan_stats(&s0);
    race2(&h, &k);
    ops_plan_stats(&s1);
    CHECK_INT((h.rc == 0) + (k.rc == 0), 1);
    struct attempt *refused = h.rc == 0 ? &k : &h;
    CHECK_INT(refused->rc, ENG_EINVAL);
    CHECK(strstr(refused->err.msg, "one booking a month") != NULL);
    CHECK_INT(s1.applied - s0.applied, 1);
    CHECK_INT(s1.recomputed - s0.recomputed, 1);
    json_decref(h.out);
    json_decref(k.out);
    free(u3);

    /* Tenant 3: lot X (1 hour, room A only, taken first) and lot Y (2
     * hours, any room).  Plan P (room A, 2 hours, Dee) takes X's hour and
     * one of Y's; plan Q (room B, 1.5 hours, Eve) takes 1.5 of Y's.  Q is
     * applied first and empties no lot, so the generation P read still
     * holds: P's debit of X passes, its debit of Y (1 hour of 0.5 left)
     * does not, X's is given back, and P computed afresh is refused (1.5
     * hours available).  Then a booking of 1.5 hours in room A pays X's
     * hour and Y's half: X was given back whole. */
    char *t3 = id_of(must("tenants.create", json_pack("{s:s, s:[s]}", "name", "Three",
                                                      "building_ids", bld)));
    char *dee = id_of(must("users.create", json_pack("{s:s, s:s, s:s}", "tenant_id", t3,
                                                      "name", "Dee", "email", "dee@x.io")));
    char *eve = id_of(must("users.create", json_pack("{s:s, s:s, s:s}", "tenant_id", t3,
                                                      "name", "Eve", "email", "eve@x.io")));
    json_decref(must("allocations.create",
                     json_pack("{s:s, s:[s], s:s, s:[{s:s, s:[s], s:i}], s:{s:s}}",
                               "tenant_id", t3, "building_ids", bld, "unit", "hour", "lines",
                               "scope", "resources", "resource_ids", rooms[0], "amount", 1,
                               "schedule", "start", "2026-01-01")));
    json_decref(must("allocations.create",
                     json_pack("{s:s, s:[s], s:s, s:[{s:s, s:i}], s:{s:s}}", "tenant_id", t3,
                               "building_ids", bld, "unit", "hour", "lines", "scope", "all",
                               "amount", 2, "schedule", "start", "2026-01-01")));
    warm = must("bookings.create",
                json_pack("{s:s, s:s, s:s, s:s, s:s}", "resource_id", rooms[0], "user_id", dee,
                          "start", "2026-01-25T09:00:00Z", "end", "2026-01-25T12:00:00Z",
                          "payment_method", "credits"));
    json_decref(must("bookings.cancel", json_pack("{s:O}", "id", json_object_get(warm, "id"))));
    json_decref(warm);
    struct attempt q = {rooms[1], eve, "2026-01-15T09:00:00Z", "2026-01-15T10:30:00Z"};
    struct attempt pp = {rooms[0], dee, "2026-01-15T09:00:00Z", "2026-01-15T11:00:00Z"};
    ops_plan_stats(&s0);
    race_ordered(&q, &pp);
    ops_plan_stats(&s1);
    CHECK_INT(q.rc, 0);
    CHECK_INT(pp.rc, ENG_ECONFLICT);
    CHECK_STR(eng_error_code_of(&pp.err), "insufficient_credits");
    CHECK_INT(s1.applied - s0.applied, 1);
    CHECK_INT(s1.recomputed - s0.recomputed, 1);
    CHECK_INT(s1.short_lots - s0.short_lots, 1);
    json_decref(q.out);
    json_decref(pp.out);
    CHECK(verify_clean());
    json_t *after = must("bookings.create",
                         json_pack("{s:s, s:s, s:s, s:s, s:s}", "resource_id", rooms[0],
                                   "user_id", dee, "start", "2026-01-16T09:00:00Z", "end",
                                   "2026-01-16T10:30:00Z", "payment_method", "credits"));
    char paid[64] = "";
    paid_from(after, paid, sizeof paid);
    CHECK(strchr(paid, '+') != NULL); /* X's whole hour, then Y's half */
    json_t *left = json_object_get(json_object_get(after, "credits"), "balance_after");
    json_t *zero = amount_to_json(0);
    CHECK(json_equal(left, zero));
    json_decref(zero);
    json_decref(after);
    free(t3);
    free(dee);
    free(eve);

    /* In one batch, jobs run without a savepoint each (SQLite).  Tenant 4
     * as tenant 3: lot X (1 hour, room A), lot Y (2 hours).  `first` (Gus,
     * room B, 1.5 hours from Y) and `second` (Fay, room A, 2 hours: X's
     * and one of Y's) share a batch behind a booking of tenant 5: `first`
     * applies; `second` takes X, finds Y short, gives X back and, computed
     * afresh, is refused, having written: the batch runs again, each job
     * in its savepoint, to the same answers (both plans once more). */
    char *t4 = id_of(must("tenants.create", json_pack("{s:s, s:[s]}", "name", "Four",
                                                      "building_ids", bld)));
    char *t5 = id_of(must("tenants.create", json_pack("{s:s, s:[s]}", "name", "Five",
                                                      "building_ids", bld)));
    char *fay = id_of(must("users.create", json_pack("{s:s, s:s, s:s}", "tenant_id", t4,
                                                      "name", "Fay", "email", "fay@x.io")));
    char *gus = id_of(must("users.create", json_pack("{s:s, s:s, s:s}", "tenant_id", t4,
                                                      "name", "Gus", "email", "gus@x.io")));
    char *hal = id_of(must("users.create", json_pack("{s:s, s:s, s:s}", "tenant_id", t5,
                                                      "name", "Hal", "email", "hal@x.io")));
    json_decref(must("allocations.create",
                     json_pack("{s:s, s:[s], s:s, s:[{s:s, s:[s], s:i}], s:{s:s}}",
                               "tenant_id", t4, "building_ids", bld, "unit", "hour", "lines",
                               "scope", "resources", "resource_ids", rooms[0], "amount", 1,
                               "schedule", "start", "2026-01-01")));
    json_decref(must("allocations.create",
                     json_pack("{s:s, s:[s], s:s, s:[{s:s, s:i}], s:{s:s}}", "tenant_id", t4,
                               "building_ids", bld, "unit", "hour", "lines", "scope", "all",
                               "amount", 2, "schedule", "start", "2026-01-01")));
    json_decref(must("allocations.create",
                     json_pack("{s:s, s:[s], s:s, s:[{s:s, s:i}], s:{s:s}}", "tenant_id", t5,
                               "building_ids", bld, "unit", "hour", "lines", "scope", "all",
                               "amount", 100, "schedule", "start", "2026-01-01")));
    const char *const warm_users[] = {fay, hal};
    for (int i = 0; i < 2; i++) {
        warm = must("bookings.create",
                    json_pack("{s:s, s:s, s:s, s:s, s:s}", "resource_id", rooms[0], "user_id",
                              warm_users[i], "start", "2026-01-26T09:00:00Z", "end",
                              i ? "2026-01-26T09:30:00Z" : "2026-01-26T12:00:00Z",
                              "payment_method", "credits"));
        json_decref(must("bookings.cancel",
                         json_pack("{s:O}", "id", json_object_get(warm, "id"))));
        json_decref(warm);
    }
    struct attempt lead = {rooms[0], hal, "2026-01-17T07:00:00Z", "2026-01-17T08:00:00Z"};
    struct attempt gus1 = {rooms[1], gus, "2026-01-17T09:00:00Z", "2026-01-17T10:30:00Z"};
    struct attempt fay2 = {rooms[0], fay, "2026-01-17T09:00:00Z", "2026-01-17T11:00:00Z"};
    ops_plan_stats(&s0);
    batch_of_two(&lead, &gus1, &fay2);
    ops_plan_stats(&s1);
    CHECK_INT(lead.rc, 0);
    CHECK_INT(gus1.rc, 0);
    CHECK_INT(fay2.rc, ENG_ECONFLICT);
    CHECK_STR(eng_error_code_of(&fay2.err), "insufficient_credits");
    CHECK_INT(s1.applied - s0.applied, 3);     /* lead; first, twice */
    CHECK_INT(s1.short_lots - s0.short_lots, 2); /* second, twice */
    CHECK(verify_clean());
    json_decref(lead.out);
    json_decref(gus1.out);
    json_decref(fay2.out);
    /* X was given back whole, Y holds its half: 1.5 hours in room A. */
    after = must("bookings.create",
                 json_pack("{s:s, s:s, s:s, s:s, s:s}", "resource_id", rooms[0], "user_id", fay,
                           "start", "2026-01-18T09:00:00Z", "end", "2026-01-18T10:30:00Z",
                           "payment_method", "credits"));
    paid[0] = '\0';
    paid_from(after, paid, sizeof paid);
    CHECK(strchr(paid, '+') != NULL);
    json_decref(after);
    /* A job refused before writing anything (its slot taken by the job
     * before it in the batch) needs no second run.  Users of tenant 5 who
     * have not booked this month (the validate policy above). */
    char *t5u[3];
    for (int i = 0; i < 3; i++) {
        char name[8], mail[16];
        snprintf(name, sizeof name, "U%d", i);
        snprintf(mail, sizeof mail, "u%d@x.io", i);
        t5u[i] = id_of(must("users.create", json_pack("{s:s, s:s, s:s}", "tenant_id", t5,
                                                       "name", name, "email", mail)));
    }
    struct attempt lead2 = {rooms[0], t5u[0], "2026-01-19T07:00:00Z", "2026-01-19T08:00:00Z"};
    struct attempt hal1 = {rooms[1], t5u[1], "2026-01-19T09:00:00Z", "2026-01-19T09:30:00Z"};
    struct attempt hal2 = {rooms[1], t5u[2], "2026-01-19T09:00:00Z", "2026-01-19T09:30:00Z"};
    ops_plan_stats(&s0);
    batch_of_two(&lead2, &hal1, &hal2);
    ops_plan_stats(&s1);
    CHECK_INT(lead2.rc, 0);
    CHECK_INT(hal1.rc, 0);
    CHECK_INT(hal2.rc, ENG_ECONFLICT);
    CHECK_STR(eng_error_code_of(&hal2.err), "slot_taken");
    CHECK_INT(s1.applied - s0.applied, 2);
    CHECK_INT(s1.recomputed - s0.recomputed, 1);
    json_decref(lead2.out);
    json_decref(hal1.out);
    json_decref(hal2.out);
    for (int i = 0; i < 3; i++) {
        free(t5u[i]);
    }
    free(t4);
    free(t5);
    free(fay);
    free(gus);
    free(hal);

    CHECK(verify_clean());
    engine_close(&eng);
    free(bld);
    free(rooms[0]);
    free(rooms[1]);
    free(t1);
    free(u1);
    free(t2);
    free(u2);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0) {
        return 1;
    }
    return check_exit();
}

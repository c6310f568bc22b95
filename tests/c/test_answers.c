/* test_answers.c - quote and booking answers written straight as text
 * (engine_exec_text; ops/ops_booking.c quote_text, written_text) against
 * the jansson trees engine_exec still builds for the Lua module and the
 * REPL, rendered as HTTP rendered them (json_out).
 *
 * Two engines on two real SQLite files, each with its group-commit writer
 * thread, are set up alike and then handed the same random requests: quotes
 * and bookings of random rooms (credit prices with fractions, money prices
 * or none, credit-only rooms), users of tenants with one lot, two lots,
 * an unlimited lot or none, random payment methods and discounts, slots often taken, some with
 * an Idempotency-Key that is then used again.  Engine `tree` answers with
 * engine_exec and json_out; engine `text` with engine_exec_text.  Both must
 * give the same status, the same error code, the same created/replayed
 * flags and byte for byte the same answer: member order, amounts, escapes
 * (a currency and policy labels are ASCII here; json_out's own test and
 * test_json_out's json_buf cases cover escapes).  The text engine's
 * answers must also take the text path (no tree), so a regression that
 * quietly fell back to trees fails here too. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "engine.h"
#include "engine_calls.h"
#include "json_out.h"
#include "xorshift.h"

#define ROOMS 6
#define USERS 5
#define ROUNDS 600

static struct engine tree_eng, text_eng;
static struct principal admin = {.role = ROLE_SUPER_ADMIN, .name = "test"};

/* One request's outcome, as HTTP would send it. */
struct answer {
    int rc;
    char code[64];
    bool created, replayed, as_text;
    char *body; /* malloc'd; NULL on failure */
    size_t len;
};

static void
answer_free(struct answer *a)
{
    free(a->body);
}

static void
run_tree(const char *op, json_t *args, const char *key, struct answer *a)
{
    json_t *out = NULL;
    struct eng_error err = {0};
    memset(a, 0, sizeof *a);
    a->rc = engine_exec(&tree_eng, &admin, op, args, key, &out, &a->created, &a->replayed, &err);
    snprintf(a->code, sizeof a->code, "%s", err.code);
    if (a->rc == 0) {
        size_t need = json_out(out, NULL, 0);
        a->body = malloc(need + 1);
        CHECK(a->body != NULL && json_out(out, a->body, need) == need);
        a->len = need;
    }
    json_decref(out);
}

static void
run_text(const char *op, json_t *args, const char *key, struct answer *a)
{
    json_t *out = NULL;
    struct eng_error err = {0};
    char small[64]; /* small: answers grow out of it onto the heap */
    struct json_buf text;
    json_buf_init(&text, small, sizeof small);
    memset(a, 0, sizeof *a);
    a->rc = engine_exec_text(&text_eng, &admin, op, args, key, &text, &out, &a->created,
                             &a->replayed, &err);
    snprintf(a->code, sizeof a->code, "%s", err.code);
    if (a->rc == 0 && out == NULL) {
        a->as_text = true;
        a->body = malloc(text.len + 1);
        CHECK(a->body != NULL);
        memcpy(a->body, text.data, text.len);
        a->len = text.len;
    } else if (a->rc == 0) {
        size_t need = json_out(out, NULL, 0);
        a->body = malloc(need + 1);
        CHECK(a->body != NULL && json_out(out, a->body, need) == need);
        a->len = need;
    }
    json_decref(out);
    json_buf_free(&text);
}

static long compared, texts, successes, refusals, replays;
/* What the answers held, so that the test shows it reached each case. */
static long two_lots, fractions, reasons, conflicts, in_past, with_money, unlimited;

static void
count_cases(const char *body)
{
    two_lots += strstr(body, "\"paid_from\":[{") != NULL && strstr(body, "},{\"lot_id\"");
    for (const char *a = strstr(body, "\"amount\":"); a != NULL; a = strstr(a + 1, "\"amount\":")) {
        a += strlen("\"amount\":");
        a += strspn(a, "0123456789");
        if (*a == '.') {
            fractions++; /* an amount with thousandths */
            break;
        }
    }
    reasons += strstr(body, "\"credits_unavailable_reason\":{") != NULL;
    conflicts += strstr(body, "\"conflicts\":[{") != NULL;
    in_past += strstr(body, "\"in_past\":true") != NULL;
    with_money += strstr(body, "\"money\":{") != NULL;
    unlimited += strstr(body, "\"unlimited\"") != NULL;
}

/* Runs op on both engines and compares what each answers. */
static void
both(const char *op, json_t *args, const char *key)
{
    struct answer t, x;
    run_tree(op, args, key, &t);
    run_text(op, args, key, &x);
    compared++;
    CHECK_INT(x.rc, t.rc);
    CHECK_STR(x.code, t.code);
    CHECK(x.created == t.created);
    CHECK(x.replayed == t.replayed);
    if (t.rc == 0) {
        successes++;
        replays += t.replayed;
        /* Every success of these two ops is answered as text. */
        CHECK(x.as_text);
        texts += x.as_text;
        t.body[t.len] = '\0';
        count_cases(t.body);
        if (getenv("TEST_ANSWERS_VERBOSE") != NULL) {
            printf("# %s: %s\n", op, t.body);
        }
        if (x.len != t.len || memcmp(x.body, t.body, t.len) != 0) {
            fprintf(stderr, "%s differs:\n tree %.*s\n text %.*s\n", op, (int)t.len, t.body,
                    (int)x.len, x.body);
            CHECK(false);
        }
    } else {
        refusals++;
        if (getenv("TEST_ANSWERS_VERBOSE") != NULL) {
            printf("# %s refused: %s\n", op, t.code);
        }
    }
    answer_free(&t);
    answer_free(&x);
    json_decref(args);
}

/* An operation that must succeed on both engines, with the same id. */
static char *
setup(json_t *args_tree, const char *op)
{
    json_t *args_text = json_deep_copy(args_tree);
    char *a = id_of(engine_must(&tree_eng, &admin, "test_answers", op, args_tree));
    char *b = id_of(engine_must(&text_eng, &admin, "test_answers", op, args_text));
    CHECK_STR(a, b);
    free(b);
    return a;
}

static void
open_engine(struct engine *e, const char *dir, const char *name)
{
    const char *policies = getenv("ALLOT_POLICIES");
    struct engine_config cfg;
    engine_config_default(&cfg);
    snprintf(cfg.db_path, sizeof cfg.db_path, "%s/%s.db", dir, name);
    snprintf(cfg.policies_dir, sizeof cfg.policies_dir, "%s",
             policies != NULL ? policies : ALLOT_SOURCE_DIR "/policies");
    cfg.fake_clock = true;
    cfg.fake_now = 1767225600; /* 2026-01-01T00:00:00Z */
    struct eng_error err = {0};
    CHECK_INT(engine_open(e, &cfg, &err), 0);
    CHECK_INT(engine_start_writer(e, &err), 0);
}

/* A room of random pricing: credits per hour with thousandths (or none),
 * money per hour (or none), sometimes credit-only. */
static json_t *
room_args(const char *bld, int i)
{
    static const char *const rates[] = {"1", "1.5", "0.333", "2.125", "0.01", "12.75"};
    static const int increments[] = {5, 15, 30, 60};
    json_t *pricing = json_object();
    int64_t money = (int64_t)(next() % 4);
    if (i == 0 || next() % 5 != 0) {
        json_t *rate = json_loads(rates[next() % 6], JSON_DECODE_ANY, NULL);
        /* Drawn one by one: the order of a call's arguments is unspecified
         * (gcc and clang differ), and every compiler must draw the same. */
        int increment = increments[next() % 4];
        const char *unit = next() % 3 ? "hour" : "coin";
        json_object_set_new(pricing, "credits",
                            json_pack("{s:s, s:o, s:i}", "unit", unit, "per_hour", rate,
                                      "increment_minutes", increment));
    }
    if (money != 0) {
        json_object_set_new(pricing, "money",
                            json_pack("{s:I}", "per_hour", (json_int_t)(money * 1333)));
    }
    char name[16];
    snprintf(name, sizeof name, "Room %d", i);
    return json_pack("{s:s, s:s, s:o, s:b}", "building_id", bld, "name", name, "pricing",
                     pricing, "credit_only", money == 0 && next() % 2 == 0);
}

/* "2026-01-DDTHH:MMZ" for a random slot in January. */
static void
slot(char *start, char *end, size_t len)
{
    int day = 2 + (int)(next() % 27), hour = 8 + (int)(next() % 9);
    int minutes = 15 * (1 + (int)(next() % 8));
    int end_min = hour * 60 + minutes;
    snprintf(start, len, "2026-01-%02dT%02d:00:00Z", day, hour);
    snprintf(end, len, "2026-01-%02dT%02d:%02d:00Z", day, end_min / 60, end_min % 60);
}

int
main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    char dir[] = "/tmp/allot-answers-XXXXXX";
    if (mkdtemp(dir) == NULL) {
        perror("mkdtemp");
        return 2;
    }
    open_engine(&tree_eng, dir, "tree");
    open_engine(&text_eng, dir, "text");

    char *bld = setup(json_pack("{s:s, s:s, s:s}", "name", "HQ", "timezone", "Europe/London",
                                "currency", "GBP"),
                      "buildings.create");
    char *rooms[ROOMS];
    for (int i = 0; i < ROOMS; i++) {
        rooms[i] = setup(room_args(bld, i), "resources.create");
    }
    /* Tenant 0: one lot with thousandths; tenant 1: two lots (paid from
     * both); tenant 2: none (credits_unavailable_reason); tenant 3: an
     * unlimited lot ("unlimited" balances). */
    char *users[USERS];
    for (int t = 0; t < 4; t++) {
        char name[16];
        snprintf(name, sizeof name, "T%d", t);
        char *ten = setup(json_pack("{s:s, s:[s]}", "name", name, "building_ids", bld),
                          "tenants.create");
        for (int k = 0; k < (t == 1 ? 2 : 1) && t != 2; k++) {
            json_t *amount = t == 3   ? json_string("unlimited")
                             : t == 0 ? json_real(40.375)
                                      : json_real(k == 0 ? 0.125 : 30.5);
            free(setup(json_pack("{s:s, s:[s], s:s, s:[{s:s, s:o}], s:{s:s}}", "tenant_id", ten,
                                 "building_ids", bld, "unit", "hour", "lines", "scope", "all",
                                 "amount", amount, "schedule", "start", "2026-01-01"),
                       "allocations.create"));
        }
        for (int u = 0; u < (t == 1 ? 2 : 1); u++) {
            char uname[16], mail[32];
            snprintf(uname, sizeof uname, "U%d%d", t, u);
            snprintf(mail, sizeof mail, "u%d%d@x.io", t, u);
            int at = t == 0 ? 0 : t == 1 ? 1 + u : t + 1;
            users[at] = setup(json_pack("{s:s, s:s, s:s}", "tenant_id", ten, "name", uname,
                                        "email", mail),
                              "users.create");
        }
        free(ten);
    }

    static const char *const methods[] = {"credits", "credits", "credits", "invoice", "card"};
    char start[32], end[32], key[32];
    for (int round = 0; round < ROUNDS; round++) {
        slot(start, end, sizeof start);
        const char *room = rooms[next() % ROOMS], *user = users[next() % USERS];
        json_t *args = json_pack("{s:s, s:s, s:s, s:s}", "resource_id", room, "user_id", user,
                                 "start", start, "end", end);
        if (next() % 4 == 0) {
            json_object_set_new(args, "discount_percent", json_integer((json_int_t)(next() % 60)));
        }
        /* A quote of the slot, then (mostly) its booking. */
        json_t *booking = json_deep_copy(args);
        both("quotes.create", json_deep_copy(args), NULL);
        json_decref(args);
        json_object_set_new(booking, "payment_method", json_string(methods[next() % 5]));
        const char *k = NULL;
        if (next() % 3 == 0) {
            snprintf(key, sizeof key, "key-%d", round);
            k = key;
        }
        both("bookings.create", json_incref(booking), k);
        if (k != NULL) {
            both("bookings.create", json_incref(booking), k); /* the replay */
        }
        json_decref(booking);
        if (round % 50 == 49) {
            /* Time moves on: some slots are now in the past (in_past). */
            struct eng_error err = {0};
            int64_t now = engine_now(&tree_eng) + 86400;
            CHECK_INT(engine_set_clock(&tree_eng, now, &err), 0);
            CHECK_INT(engine_set_clock(&text_eng, now, &err), 0);
        }
    }
    printf("test_answers: %ld requests compared: %ld answered, %ld as text (%ld replays), "
           "%ld refused\n",
           compared, successes, texts, replays, refusals);
    printf("test_answers: paid from two lots %ld, with fractions %ld, with a money price %ld, "
           "credits_unavailable_reason %ld, conflicts %ld, in_past %ld, unlimited %ld\n",
           two_lots, fractions, with_money, reasons, conflicts, in_past, unlimited);
    /* The random requests reached every kind of answer. */
    CHECK(successes > ROUNDS && refusals > 20 && replays > 20);
    CHECK(two_lots > 0 && fractions > 20 && with_money > 20 && reasons > 20 && conflicts > 10 &&
          in_past > 5 &&
          unlimited > 5);

    engine_close(&tree_eng);
    engine_close(&text_eng);
    for (int i = 0; i < ROOMS; i++) {
        free(rooms[i]);
    }
    for (int i = 0; i < USERS; i++) {
        free(users[i]);
    }
    free(bld);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    CHECK_INT(system(cmd), 0);
    return check_exit();
}

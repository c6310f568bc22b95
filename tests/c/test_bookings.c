/* test_bookings.c - store/bookings.c against a real SQLite file: the slot
 * check, cancel, get and list, and above all that a storage failure is an
 * error and never "slot free", "not found" or a cut text. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bookings.h"
#include "check.h"
#include "internal.h"

static int
exec_sql(struct store *s, const char *sql)
{
    return sqlite3_exec(s->db, sql, NULL, NULL, NULL) == SQLITE_OK ? 0 : -1;
}

static int64_t
book(struct store *s, int64_t start, int64_t end)
{
    struct booking_new nb = {
        .resource_id = 1,
        .building_id = 1,
        .tenant_id = 1,
        .user_id = 1,
        .start_at = start,
        .end_at = end,
        .payment_method = "card",
        .has_money = true,
        .money = 7000,
        .money_before_discount = 7000,
        .currency = "USD",
        .policy_versions = "{\"pricing\": \"default:1\"}",
        .created_at = 1,
        .created_by = "test",
    };
    struct eng_error err = {0};
    int64_t id = 0;
    CHECK_INT(store_booking_insert(s, &nb, &id, &err), 0);
    return id;
}

static int
count_row(void *ud, const struct booking_row *row)
{
    (void)row;
    (*(int *)ud)++;
    return 0;
}

static void
test_slot_and_cancel(struct store *s)
{
    struct eng_error err = {0};
    bool taken = true;
    CHECK_INT(store_booking_slot_taken(s, 1, 3600, 7200, &taken, &err), 0);
    CHECK(!taken);
    int64_t id = book(s, 3600, 7200);
    CHECK(id > 0);
    CHECK_INT(store_booking_slot_taken(s, 1, 5400, 9000, &taken, &err), 0);
    CHECK(taken);
    CHECK_INT(store_booking_slot_taken(s, 1, 7200, 9000, &taken, &err), 0);
    CHECK(!taken);

    struct booking_cancel c = {.id = id, .cancelled_at = 10, .cancelled_by = "test",
                               .reason = "déjà vu"};
    CHECK_INT(store_booking_cancel(s, &c, &err), 0);
    CHECK_INT(store_booking_cancel(s, &c, &err), ENG_ECONFLICT);
    CHECK_STR(eng_error_code_of(&err), "already_cancelled");
    CHECK_INT(store_booking_slot_taken(s, 1, 5400, 9000, &taken, &err), 0);
    CHECK(!taken);

    struct booking_row row;
    bool found = false;
    CHECK_INT(store_booking_get(s, id, &row, &found, &err), 0);
    CHECK(found);
    CHECK_STR(row.status, "cancelled");
    CHECK_STR(row.cancel_reason, "déjà vu");
    CHECK(row.has_money && row.money == 7000 && !row.has_credits);
    CHECK(json_is_object(row.policy_versions));
    store_booking_clear(&row);
    CHECK_INT(store_booking_get(s, id + 100, &row, &found, &err), 0);
    CHECK(!found);

    int n = 0;
    struct booking_filter f = {.from = INT64_MIN, .to = INT64_MAX, .status = "cancelled"};
    CHECK_INT(store_bookings_list(s, &f, 0, 10, count_row, &n, &err), 0);
    CHECK_INT(n, 1);
    n = 0;
    f.status = "confirmed";
    CHECK_INT(store_bookings_list(s, &f, 0, 10, count_row, &n, &err), 0);
    CHECK_INT(n, 0);
}

static int
count_op(void *ud)
{
    (*(long *)ud)++;
    return 0;
}

static int
note_overlap(void *ud, const struct booking_overlap *o)
{
    int64_t *last = ud;
    CHECK(o->start_at >= *last); /* in start order */
    *last = o->start_at;
    return 0;
}

/* The slot check, the writer's re-check and the conflict list read one
 * index entry (or the overlapping ones): answers equal to a scan of every
 * booking, and the work does not grow with the resource's later bookings. */
static void
test_slot_ahead(struct store *s)
{
    struct eng_error err = {0};
    /* Half-hour bookings every hour from t0, 2,000 of them; one cancelled. */
    const int64_t t0 = 1000000;
    enum { N = 2000 };
    int64_t cancelled_at = t0 + 700 * 3600;
    CHECK_INT(store_tx(s, STORE_BEGIN_IMMEDIATE, &err), 0);
    for (int i = 0; i < N; i++) {
        int64_t id = book(s, t0 + i * 3600, t0 + i * 3600 + 1800);
        if (t0 + i * 3600 == cancelled_at) {
            struct booking_cancel c = {.id = id, .cancelled_at = 10, .cancelled_by = "test"};
            CHECK_INT(store_booking_cancel(s, &c, &err), 0);
        }
    }
    CHECK_INT(store_tx(s, STORE_COMMIT, &err), 0);
    /* Every quarter hour over the first 800 hours, 45- and 150-minute slots. */
    long wrong = 0;
    for (int64_t t = t0 - 3600; t < t0 + 800 * 3600; t += 900) {
        for (int64_t len = 2700; len <= 9000; len += 6300) {
            int want = 0;
            for (int i = 0; i < N; i++) {
                int64_t bs = t0 + i * 3600, be = bs + 1800;
                want += bs != cancelled_at && bs < t + len && be > t;
            }
            bool taken = false;
            CHECK_INT(store_booking_slot_taken(s, 1, t, t + len, &taken, &err), 0);
            int64_t n = -1, last = INT64_MIN;
            CHECK_INT(store_booking_overlaps(s, 1, t, t + len, 10, note_overlap, &last, &n,
                                             &err),
                      0);
            struct booking_recheck rc;
            CHECK_INT(store_booking_recheck(s, 1, t, t + len, 1, "hour", "UTC", 202701, &rc,
                                            &err),
                      0);
            wrong += taken != (want > 0) || n != want || rc.taken != (want > 0);
        }
    }
    CHECK_INT(wrong, 0);
    /* Work: SQLite instructions for the slot check of the first hour, with
     * 2,000 bookings ahead of it (the scan of every later booking took
     * tens of thousands). */
    long ops = 0;
    bool taken = true;
    sqlite3_progress_handler(s->db, 1, count_op, &ops);
    CHECK_INT(store_booking_slot_taken(s, 1, t0 - 3600, t0 - 1800, &taken, &err), 0);
    sqlite3_progress_handler(s->db, 0, NULL, NULL);
    CHECK(!taken);
    CHECK(ops > 0 && ops < 200);
    printf("# slot check with %d bookings ahead: %ld VM steps\n", N, ops);
}

/* A stored reason longer than the API allows is an error, not a cut. */
static void
test_long_text(struct store *s)
{
    struct eng_error err = {0};
    int64_t id = book(s, 90000, 93600);
    char sql[2048];
    snprintf(sql, sizeof sql,
             "UPDATE booking SET cancel_reason = printf('%%.*c', %d, 'x') WHERE id = %lld",
             BOOKING_REASON_MAX + 1, (long long)id);
    CHECK_INT(exec_sql(s, sql), 0);
    struct booking_row row;
    bool found = true;
    CHECK_INT(store_booking_get(s, id, &row, &found, &err), ENG_ESTORE);
    CHECK(!found);
}

/* Any failure of the slot check is an error and reads as "taken". */
static void
test_slot_failure(struct store *s)
{
    struct eng_error err = {0};
    CHECK_INT(exec_sql(s, "DROP INDEX booking_slot"), 0);
    bool taken = false;
    CHECK_INT(store_booking_slot_taken(s, 1, 200000, 203600, &taken, &err), ENG_ESTORE);
    CHECK(taken);
}

int
main(void)
{
    char path[] = "/tmp/allot_test_bookings_XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0) {
        perror("mkstemp");
        return 1;
    }
    close(fd);
    unlink(path);
    struct store *s = NULL;
    struct eng_error err = {0};
    CHECK_INT(store_open(&s, path, STORE_CREATE, 1000, 0, &err), 0);
    if (s == NULL) {
        return check_exit();
    }
    CHECK_INT(exec_sql(s, "INSERT INTO building VALUES (1, 'HQ', 'UTC', 'USD', 1, 1, 1, 0);"
                          "INSERT INTO resource (id, building_id, name, kind, tags, pricing, credit_only,"
                          " created_at) VALUES (1, 1, 'Room', 'room', '[]', '{}', 0, 0);"
                          "INSERT INTO tenant VALUES (1, 'Acme', 0, 0);"
                          "INSERT INTO user VALUES (1, 1, 'Ada', 'a@x', '[]', 0);"),
              0);
    test_slot_and_cancel(s);
    test_long_text(s);
    test_slot_ahead(s);
    test_slot_failure(s);
    store_close(s);
    unlink(path);
    return check_exit();
}

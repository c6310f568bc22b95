/* buildings.c - the building table: lists and writes. */
#include "buildings.h"

#include "portfolio_rows.h"
#include "timeutil.h"
#include "usage.h"

int
store_building_each(struct store *s, int64_t after, int64_t limit,
                    int (*cb)(void *ud, const struct building_row *row), void *ud,
                    struct eng_error *err)
{
    STORE_SQL(q, "SELECT " BUILDING_COLS " FROM building WHERE id > ? ORDER BY id LIMIT ?");
    sqlite3_stmt *st = sq_prep(s, &q, err);
    if (st == NULL) {
        return err->status;
    }
    sq_int(s, st, 1, after);
    sq_int(s, st, 2, limit);
    int rc;
    while ((rc = sq_step(s, st, "building list", err)) == 1) {
        struct building_row row;
        rc = rows_building(st, &row, err);
        if (rc == 0) {
            rc = cb(ud, &row);
        }
        if (rc != 0) {
            sq_reset(st);
            return rc;
        }
    }
    return rc;
}

static void
bind_building(struct store *s, sqlite3_stmt *st, const struct building_row *b)
{
    sq_text(s, st, 1, b->name);
    sq_text(s, st, 2, b->timezone);
    sq_text(s, st, 3, b->currency);
    sq_int(s, st, 4, b->pay_credits);
    sq_int(s, st, 5, b->pay_invoice);
    sq_int(s, st, 6, b->pay_card);
}

int
store_building_insert(struct store *s, const struct building_row *b, int64_t *id,
                      struct eng_error *err)
{
    STORE_SQL(q, "INSERT INTO building (name, timezone, currency, pay_credits, pay_invoice,"
                 " pay_card, created_at) VALUES (?,?,?,?,?,?,?)");
    sqlite3_stmt *st = sq_prep(s, &q, err);
    if (st == NULL) {
        return err->status;
    }
    bind_building(s, st, b);
    sq_int(s, st, 7, b->created_at);
    int rc = sq_exec(s, st, "building insert", err);
    *id = rc == 0 ? sq_last_id(s) : 0;
    /* Policies here see usage by this zone's months: keep counters for it. */
    return rc == 0 ? store_usage_zone_add(s, b->timezone, err) : rc;
}

int
store_building_update(struct store *s, const struct building_row *b, struct eng_error *err)
{
    STORE_SQL(q, "UPDATE building SET name = ?, timezone = ?, currency = ?, pay_credits = ?,"
                 " pay_invoice = ?, pay_card = ? WHERE id = ?");
    sqlite3_stmt *st = sq_prep(s, &q, err);
    if (st == NULL) {
        return err->status;
    }
    bind_building(s, st, b);
    sq_int(s, st, 7, b->id);
    int rc = sq_exec(s, st, "building update", err);
    return rc == 0 ? store_usage_zone_add(s, b->timezone, err) : rc;
}

int
store_buildings_zone(struct store *s, int64_t tenant_id, char *zone, int *count,
                     struct eng_error *err)
{
    STORE_SQL(q, "SELECT DISTINCT b.timezone FROM building b WHERE ?1 IS NULL OR b.id IN"
                 " (SELECT building_id FROM tenant_building WHERE tenant_id = ?1) LIMIT 2");
    *count = 0;
    zone[0] = '\0';
    sqlite3_stmt *st = sq_prep(s, &q, err);
    if (st == NULL) {
        return err->status;
    }
    if (tenant_id != 0) {
        sq_int(s, st, 1, tenant_id);
    }
    int rc;
    while ((rc = sq_step(s, st, "building zones", err)) == 1) {
        if (++*count == 1) {
            rc = sq_col_copy(st, 0, zone, TIME_ZONE_NAME_MAX, "building zone", err);
            if (rc != 0) {
                sq_reset(st);
                return rc;
            }
        }
    }
    if (*count != 1) {
        zone[0] = '\0';
    }
    return rc < 0 ? rc : 0;
}

/* quote_info.c - why credits cannot pay for a quoted booking, and whether
 * its slot is free.  Read-only: nothing here creates a lot or writes. */
#include "quote_info.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "amount.h"
#include "bookings.h"
#include "ledger.h"

static int
oom(struct op *op)
{
    return eng_error_set(op->err, ENG_ENOMEM, "out of memory");
}

static const char *
unit_words(const char *unit)
{
    return unit != NULL && strcmp(unit, "coin") == 0 ? "coins" : "hours";
}

static int
reason(struct op *op, const char *code, json_t *details, json_t **out, const char *fmt, ...)
    ENG_PRINTF(5, 6);

static int
reason(struct op *op, const char *code, json_t *details, json_t **out, const char *fmt, ...)
{
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    *out = json_pack("{s:s, s:s, s:o}", "code", code, "message", msg, "details",
                     details != NULL ? details : json_object());
    return *out != NULL ? 0 : oom(op);
}

/* The user's lots of the unit valid at t that the principal reaches, by
 * eligibility without a resource (any of each allocation's buildings): their
 * count, and the earliest start and latest end among them. */
static int
lots_at(struct op *op, const struct quote_credit_facts *f, int64_t t, int *count,
        int64_t *from_min, int64_t *until_max)
{
    struct cand_list list = {0};
    int rc = ledger_candidates(&op->lx, NULL, f->user_id, f->tenant_id, f->user, f->tenant, NULL,
                               f->unit, t, false, true, &list);
    *count = 0;
    *from_min = INT64_MAX;
    *until_max = INT64_MIN;
    for (int i = 0; rc == 0 && i < list.count; i++) {
        bool reaches = false;
        rc = op_check_reaches(op, OP_OBJ_ALLOCATION, list.items[i].alloc_id, &reaches);
        if (rc == 0 && reaches) {
            (*count)++;
            *from_min = list.items[i].valid_from < *from_min ? list.items[i].valid_from : *from_min;
            *until_max =
                list.items[i].valid_until > *until_max ? list.items[i].valid_until : *until_max;
        }
    }
    cand_list_free(&list);
    return rc;
}

/* The local date of t in the building's zone, as YYYY-MM-DD. */
static void
local_date(const struct quote_credit_facts *f, int64_t t, char *buf, size_t cap)
{
    struct civil_time lt;
    struct eng_error e = {0};
    const char *zone = json_string_value(json_object_get(f->building, "timezone"));
    if (zone == NULL || tz_local_time(zone, t, &lt, &e) != 0) {
        time_format_rfc3339(t, buf, cap);
        return;
    }
    struct civil_date d = {lt.year, lt.month, lt.day};
    date_format(d, buf, cap);
}

static int
insufficient(struct op *op, const struct quote_credit_facts *f, int64_t available, json_t **out)
{
    char need[32], have[32];
    amount_format(f->credits, need, sizeof need);
    amount_format(available, have, sizeof have);
    json_t *d = json_pack("{s:o, s:o, s:s}", "needed", amount_to_json(f->credits), "available",
                          amount_to_json(available), "unit", f->unit);
    if (d == NULL) {
        return oom(op);
    }
    return reason(op, "insufficient_balance", d, out,
                  "This booking costs %s %s and %s %s of yours can pay for it: credits pay "
                  "the whole price or nothing.",
                  need, unit_words(f->unit), have, unit_words(f->unit));
}

int
quote_credits_reason(struct op *op, const struct quote_credit_facts *f, json_t **out)
{
    *out = NULL;
    if (!f->building_accepts) {
        return reason(op, "credits_not_accepted", NULL, out,
                      "This building does not take credits as payment.");
    }
    if (!f->priced_in_credits) {
        return reason(op, "not_priced_in_credits", NULL, out,
                      "This space has no credit price; it is paid by invoice or card.");
    }
    if (f->candidates > 0) {
        return f->unlimited || f->available >= f->credits ? 0
                                                          : insufficient(op, f, f->available, out);
    }
    /* Lots that could pay here, all spent. */
    struct cand_list spent = {0};
    int rc = ledger_candidates(&op->lx, f->pol, f->user_id, f->tenant_id, f->user, f->tenant,
                               f->resource, f->unit, f->start, false, true, &spent);
    int n_spent = spent.count;
    cand_list_free(&spent);
    if (rc != 0) {
        return rc;
    }
    if (n_spent > 0) {
        return insufficient(op, f, 0, out);
    }
    int count = 0;
    int64_t from = 0, until = 0;
    char day[40];
    local_date(f, f->start, day, sizeof day);
    if (lots_at(op, f, f->start, &count, &from, &until) != 0) {
        return op->err->status;
    }
    if (count > 0) {
        return reason(op, "not_eligible", NULL, out,
                      "Your %s valid on %s cannot pay for this space: they are for other "
                      "buildings or spaces, or not for you.",
                      unit_words(f->unit), day);
    }
    if (lots_at(op, f, op->now, &count, &from, &until) != 0) {
        return op->err->status;
    }
    if (count > 0) {
        char a[40], b[40];
        local_date(f, from, a, sizeof a);
        json_t *d = json_pack("{s:o, s:o}", "valid_from", json_time(from), "valid_until",
                              until == TIME_NEVER ? json_null() : json_time(until));
        if (d == NULL) {
            return oom(op);
        }
        if (until != TIME_NEVER && until <= f->start) {
            local_date(f, until - 1, b, sizeof b);
            return reason(op, "no_lot_at_time", d, out,
                          "None of your %s are valid on %s: the ones you have end on %s.",
                          unit_words(f->unit), day, b);
        }
        return reason(op, "no_lot_at_time", d, out,
                      "None of your %s are valid on %s: the ones you have start on %s.",
                      unit_words(f->unit), day, a);
    }
    return reason(op, "no_credits", NULL, out, "You have no %s to pay with.",
                  unit_words(f->unit));
}

struct slot_ud {
    struct op *op;
    json_t *list;
};

static int
slot_add(void *ud, const struct booking_overlap *o)
{
    struct slot_ud *s = ud;
    bool reaches = false;
    if (op_check_reaches(s->op, OP_OBJ_BOOKING, o->id, &reaches) != 0) {
        return s->op->err->status;
    }
    json_t *c = json_pack("{s:o, s:o}", "start", json_time(o->start_at), "end",
                          json_time(o->end_at));
    if (c != NULL && reaches) {
        json_object_set_new(c, "booking_id", id_json("bkg", o->id));
    }
    if (c == NULL || json_array_append_new(s->list, c) != 0) {
        return oom(s->op);
    }
    return 0;
}

/* The conflicts of the slot (a new array in *list, NULL when the slot is
 * free) and how many there are. */
static int
slot_conflicts(struct op *op, int64_t resource_id, int64_t start, int64_t end, json_t **list,
               int64_t *count)
{
    struct slot_ud s = {op, NULL};
    *count = 0;
    *list = NULL;
    /* Most quoted slots are free: the slot check (no sort, one row at
     * most) says so; the conflicts are listed only when it is taken.  A
     * failed check is an error, never a free slot. */
    bool taken = true;
    int rc = store_booking_slot_taken(op->store, resource_id, start, end, &taken, op->err);
    if (rc == 0 && taken) {
        s.list = json_array();
        rc = s.list != NULL ? 0 : oom(op);
    }
    if (rc == 0 && taken) {
        rc = store_booking_overlaps(op->store, resource_id, start, end, QUOTE_CONFLICTS_MAX,
                                    slot_add, &s, count, op->err);
    }
    if (rc != 0) {
        json_decref(s.list);
        return rc;
    }
    *list = s.list;
    return 0;
}

int
quote_slot_text(struct op *op, int64_t resource_id, int64_t start, int64_t end,
                struct json_buf *t)
{
    json_t *list = NULL;
    int64_t count = 0;
    int rc = slot_conflicts(op, resource_id, start, end, &list, &count);
    if (rc != 0) {
        return rc;
    }
    /* The members quote_slot sets, in its order. */
    JSON_BUF_LIT(t, "{\"available\":");
    if (count == 0) {
        JSON_BUF_LIT(t, "true");
    } else {
        JSON_BUF_LIT(t, "false");
    }
    if (start < op->now) {
        JSON_BUF_LIT(t, ",\"in_past\":true,\"conflicts\":");
    } else {
        JSON_BUF_LIT(t, ",\"in_past\":false,\"conflicts\":");
    }
    if (list != NULL) {
        json_buf_value(t, list);
        json_decref(list);
    } else {
        JSON_BUF_LIT(t, "[]");
    }
    JSON_BUF_LIT(t, ",\"conflict_count\":");
    json_buf_int(t, count);
    JSON_BUF_LIT(t, "}");
    return t->failed ? oom(op) : 0;
}

int
quote_slot(struct op *op, int64_t resource_id, int64_t start, int64_t end, json_t **out)
{
    json_t *list = NULL;
    int64_t count = 0;
    *out = NULL;
    int rc = slot_conflicts(op, resource_id, start, end, &list, &count);
    if (rc != 0) {
        return rc;
    }
    list = list != NULL ? list : json_array();
    if (list == NULL) {
        return oom(op);
    }
    /* Built member by member (our ASCII keys, in API.md's order). */
    *out = json_object();
    if (json_object_set_new_nocheck(*out, "available", json_boolean(count == 0)) +
            json_object_set_new_nocheck(*out, "in_past", json_boolean(start < op->now)) +
            json_object_set_new_nocheck(*out, "conflicts", list) +
            json_object_set_new_nocheck(*out, "conflict_count", json_integer(count)) !=
        0) {
        json_decref(*out);
        *out = NULL;
    }
    return *out != NULL ? 0 : oom(op);
}

/* demo.c - a small, believable portfolio for `allotd --demo`.
 *
 * The data is made the way real data would be: through engine_exec, with
 * the same validation as the API, on a fake clock that starts three months
 * ago and moves forward booking by booking.  So the ledger holds what three
 * months of use would leave behind (monthly grants, expiries, rollovers,
 * refunds), and `allot verify` holds on it.  A fixed random seed makes
 * every demo the same. */
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "auth.h"

#include "demo.h"
#include "timeutil.h"

#define DEMO_BUILDINGS 2
#define DEMO_TENANTS 5
#define DEMO_USERS_PER_TENANT 8
#define DEMO_USERS (DEMO_TENANTS * DEMO_USERS_PER_TENANT)
#define DEMO_RESOURCES 20
#define DEMO_BOOKINGS 48
#define DEMO_HISTORY_MONTHS 3
#define DEMO_AHEAD_DAYS 21
#define DAY_S 86400
#define ID_MAX 32

struct demo_resource {
    int building;
    const char *name, *kind, *tags; /* tags: a JSON array */
    const char *pricing;            /* the resource's pricing, JSON */
    bool credit_only;
    int increment_minutes;
};

struct demo_booking {
    int user, resource;
    int64_t start, end, made_at;
    const char *method;
    bool cancel;
    char id[ID_MAX];
};

struct demo {
    struct engine eng;
    struct principal admin;
    struct eng_error *err;
    uint64_t rng;
    int64_t t0; /* the first instant of the history */
    char date0[11];
    char buildings[DEMO_BUILDINGS][ID_MAX];
    char tenants[DEMO_TENANTS][ID_MAX];
    char users[DEMO_USERS][ID_MAX];
    char resources[DEMO_RESOURCES][ID_MAX];
    struct demo_booking bookings[DEMO_BOOKINGS];
};

static const char *const zones[DEMO_BUILDINGS] = {"Europe/London", "America/New_York"};

static const struct demo_resource resource_table[DEMO_RESOURCES] = {
    {0, "Meeting Room 1", "meeting_room", "[\"screen\"]",
     "{\"money\":{\"per_hour\":5000},\"credits\":{\"unit\":\"hour\",\"model\":\"fixed\","
     "\"per_hour\":1,\"increment_minutes\":30}}", false, 30},
    {0, "Meeting Room 2", "meeting_room", "[]",
     "{\"money\":{\"per_hour\":5000},\"credits\":{\"unit\":\"hour\",\"model\":\"fixed\","
     "\"per_hour\":1,\"increment_minutes\":30}}", false, 30},
    {0, "Meeting Room 3", "meeting_room", "[\"screen\"]",
     "{\"money\":{\"per_hour\":6000},\"credits\":{\"unit\":\"hour\",\"model\":\"fixed\","
     "\"per_hour\":1,\"increment_minutes\":30}}", false, 30},
    {0, "Huddle Room", "meeting_room", "[\"small\"]",
     "{\"money\":{\"per_hour\":3000},\"credits\":{\"unit\":\"hour\",\"model\":\"fixed\","
     "\"per_hour\":1,\"increment_minutes\":30}}", false, 30},
    {0, "Training Room", "meeting_room", "[\"large\"]",
     "{\"money\":{\"per_hour\":8000},\"credits\":{\"unit\":\"hour\",\"model\":\"fixed\","
     "\"per_hour\":1,\"increment_minutes\":30}}", false, 30},
    {0, "Boardroom", "boardroom", "[\"premium\"]",
     "{\"money\":{\"per_hour\":15000},\"credits\":{\"unit\":\"hour\",\"model\":\"fixed\","
     "\"per_hour\":3,\"increment_minutes\":30}}", false, 30},
    {0, "Roof Deck", "roof_deck", "[\"outdoor\",\"events\"]",
     "{\"money\":{\"per_hour\":20000},\"credits\":{\"unit\":\"coin\",\"model\":\"fixed\","
     "\"per_hour\":70,\"increment_minutes\":30,\"max\":300}}", false, 30},
    {0, "Quiet Pod", "pod", "[\"small\"]",
     "{\"money\":null,\"credits\":{\"unit\":\"hour\",\"model\":\"fixed\",\"per_hour\":1,"
     "\"increment_minutes\":30}}", true, 30},
    {0, "Conference Centre", "conference_centre", "[\"events\",\"large\"]",
     "{\"money\":{\"per_hour\":30000},\"credits\":{\"unit\":\"hour\",\"model\":\"fixed\","
     "\"per_hour\":2,\"increment_minutes\":60}}", false, 60},
    {0, "Library Room", "meeting_room", "[]",
     "{\"money\":{\"per_hour\":4000},\"credits\":{\"unit\":\"hour\",\"model\":\"fixed\","
     "\"per_hour\":1,\"increment_minutes\":30}}", false, 30},
    {1, "Hudson Room", "meeting_room", "[\"screen\"]",
     "{\"money\":{\"per_hour\":7000},\"credits\":{\"unit\":\"hour\",\"model\":\"fixed\","
     "\"per_hour\":1,\"increment_minutes\":30}}", false, 30},
    {1, "Liberty Room", "meeting_room", "[]",
     "{\"money\":{\"per_hour\":7000},\"credits\":{\"unit\":\"hour\",\"model\":\"fixed\","
     "\"per_hour\":1,\"increment_minutes\":30}}", false, 30},
    {1, "Brooklyn Room", "meeting_room", "[\"screen\"]",
     "{\"money\":{\"per_hour\":7000},\"credits\":{\"unit\":\"hour\",\"model\":\"fixed\","
     "\"per_hour\":1,\"increment_minutes\":30}}", false, 30},
    {1, "Chelsea Room", "meeting_room", "[\"small\"]",
     "{\"money\":{\"per_hour\":5000},\"credits\":{\"unit\":\"hour\",\"model\":\"fixed\","
     "\"per_hour\":1,\"increment_minutes\":30}}", false, 30},
    {1, "SoHo Room", "meeting_room", "[]",
     "{\"money\":{\"per_hour\":6000},\"credits\":{\"unit\":\"hour\",\"model\":\"fixed\","
     "\"per_hour\":1,\"increment_minutes\":30}}", false, 30},
    {1, "Harlem Room", "meeting_room", "[]",
     "{\"money\":{\"per_hour\":6000},\"credits\":{\"unit\":\"hour\",\"model\":\"fixed\","
     "\"per_hour\":1,\"increment_minutes\":30}}", false, 30},
    {1, "Auditorium", "auditorium", "[\"events\",\"large\"]",
     "{\"money\":{\"per_hour\":50000},\"credits\":{\"unit\":\"hour\",\"model\":\"fixed\","
     "\"per_hour\":4,\"increment_minutes\":60}}", false, 60},
    {1, "Sky Lounge", "lounge", "[\"premium\",\"events\"]",
     "{\"money\":{\"per_hour\":25000},\"credits\":{\"unit\":\"hour\",\"model\":\"fixed\","
     "\"per_hour\":3,\"increment_minutes\":30}}", false, 30},
    {1, "Focus Booth", "pod", "[\"small\"]",
     "{\"money\":null,\"credits\":{\"unit\":\"hour\",\"model\":\"fixed\",\"per_hour\":1,"
     "\"increment_minutes\":30}}", true, 30},
    {1, "Conference Centre NY", "conference_centre", "[\"events\",\"large\"]",
     "{\"money\":{\"per_hour\":35000},\"credits\":{\"unit\":\"hour\",\"model\":\"fixed\","
     "\"per_hour\":2,\"increment_minutes\":60}}", false, 60},
};

static const struct {
    const char *name, *domain, *buildings; /* buildings: "0", "1" or "01" */
    bool cross;
} tenant_table[DEMO_TENANTS] = {
    {"Acme Analytics", "acme.example", "0", false},
    {"Bluebird Legal", "bluebird.example", "0", false},
    {"Northwind Trading", "northwind.example", "01", true},
    {"Cobalt Health", "cobalt.example", "1", false},
    {"Delta Design", "delta.example", "1", false},
};

static const char *const first_names[DEMO_USERS] = {
    "Ada", "Ben", "Chloe", "Dev", "Elena", "Farid", "Grace", "Hugo", "Ines", "Jon",
    "Kemi", "Liam", "Maya", "Noah", "Olga", "Pablo", "Quinn", "Rosa", "Sami", "Tara",
    "Uma", "Victor", "Wen", "Ximena", "Yusuf", "Zoe", "Amir", "Bea", "Carlos", "Dana",
    "Emil", "Fatima", "Gus", "Hana", "Ivan", "Jade", "Kai", "Lena", "Marco", "Nia",
};

static const char *const last_names[8] = {"Lovelace", "Okafor", "Martin", "Patel",
                                          "Novak", "Silva", "Kim", "Haddad"};

/* ---------- plumbing ---------- */

static uint32_t
demo_rand(struct demo *d, uint32_t n)
{
    /* xorshift64: deterministic, and plenty for picking demo rooms. */
    d->rng ^= d->rng << 13;
    d->rng ^= d->rng >> 7;
    d->rng ^= d->rng << 17;
    return (uint32_t)(d->rng % n);
}

/* Runs `op` (args stolen) as `who`; the result, or NULL with d->err set. */
static json_t *
demo_as(struct demo *d, const struct principal *who, const char *op, json_t *args)
{
    json_t *out = NULL;
    bool created;
    bool replayed;
    int rc = engine_exec(&d->eng, who, op, args, NULL, &out, &created, &replayed, d->err);
    json_decref(args);
    return rc == 0 ? out : NULL;
}

/* Runs `op` as the demo admin and copies the new object's id into id. */
static int
demo_create(struct demo *d, const char *op, json_t *args, char id[ID_MAX])
{
    if (args == NULL) {
        return eng_error_set(d->err, ENG_ENOMEM, "out of memory building demo data");
    }
    json_t *out = demo_as(d, &d->admin, op, args);
    if (out == NULL) {
        return d->err->status;
    }
    snprintf(id, ID_MAX, "%s", json_string_value(json_object_get(out, "id")));
    json_decref(out);
    return 0;
}

static json_t *
json_text(const char *text)
{
    return json_loads(text, 0, NULL);
}

/* ---------- the portfolio ---------- */

static int
seed_buildings(struct demo *d)
{
    static const char *const names[DEMO_BUILDINGS] = {"Thames House", "Hudson Yards Tower"};
    static const char *const currencies[DEMO_BUILDINGS] = {"GBP", "USD"};
    for (int b = 0; b < DEMO_BUILDINGS; b++) {
        json_t *args = json_pack("{s:s, s:s, s:s, s:{s:b, s:b, s:b}}", "name", names[b],
                                 "timezone", zones[b], "currency", currencies[b], "payment",
                                 "credits", 1, "invoice", 1, "card", 1);
        if (demo_create(d, "buildings.create", args, d->buildings[b]) != 0) {
            return d->err->status;
        }
    }
    return 0;
}

static int
seed_tenants(struct demo *d)
{
    for (int t = 0; t < DEMO_TENANTS; t++) {
        json_t *bids = json_array();
        for (const char *c = tenant_table[t].buildings; *c != '\0'; c++) {
            json_array_append_new(bids, json_string(d->buildings[*c - '0']));
        }
        json_t *args = json_pack("{s:s, s:o, s:b}", "name", tenant_table[t].name,
                                 "building_ids", bids, "cross_building", tenant_table[t].cross);
        if (demo_create(d, "tenants.create", args, d->tenants[t]) != 0) {
            return d->err->status;
        }
    }
    return 0;
}

static int
seed_users(struct demo *d)
{
    for (int u = 0; u < DEMO_USERS; u++) {
        int t = u / DEMO_USERS_PER_TENANT;
        const char *first = first_names[u], *last = last_names[u % 8];
        char name[64], email[96];
        snprintf(name, sizeof name, "%s %s", first, last);
        snprintf(email, sizeof email, "%s.%s@%s", first, last, tenant_table[t].domain);
        for (char *c = email; *c != '\0'; c++) {
            *c = (char)(*c >= 'A' && *c <= 'Z' ? *c + ('a' - 'A') : *c);
        }
        /* Every fourth person may reserve the big rooms. */
        json_t *roles = json_array();
        if (u % 4 == 1) {
            json_array_append_new(roles, json_string("resource_reservation_reserver"));
        }
        json_t *args = json_pack("{s:s, s:s, s:s, s:o}", "tenant_id", d->tenants[t], "name",
                                 name, "email", email, "roles", roles);
        if (demo_create(d, "users.create", args, d->users[u]) != 0) {
            return d->err->status;
        }
    }
    return 0;
}

static int
seed_resources(struct demo *d)
{
    for (int r = 0; r < DEMO_RESOURCES; r++) {
        const struct demo_resource *res = &resource_table[r];
        json_t *args = json_pack("{s:s, s:s, s:s, s:o, s:o, s:b}", "building_id",
                                 d->buildings[res->building], "name", res->name, "kind",
                                 res->kind, "tags", json_text(res->tags), "pricing",
                                 json_text(res->pricing), "credit_only", res->credit_only);
        if (demo_create(d, "resources.create", args, d->resources[r]) != 0) {
            return d->err->status;
        }
    }
    return 0;
}

/* ---------- allocations ---------- */

/* One allocation from a JSON template whose %s fields are, in order: the
 * tenant, the building ids (a JSON array), and the start date. */
static int
allocate(struct demo *d, int tenant, const char *buildings, const char *tmpl)
{
    char text[1024], id[ID_MAX];
    snprintf(text, sizeof text, tmpl, d->tenants[tenant], buildings, d->date0);
    json_t *args = json_text(text);
    if (args == NULL) {
        return eng_error_set(d->err, ENG_EINVAL, "demo allocation template is not JSON");
    }
    return demo_create(d, "allocations.create", args, id);
}

static int
seed_allocations(struct demo *d)
{
    char b0[64], b1[64], both[128], roof[96], big[160];
    snprintf(b0, sizeof b0, "[\"%s\"]", d->buildings[0]);
    snprintf(b1, sizeof b1, "[\"%s\"]", d->buildings[1]);
    snprintf(both, sizeof both, "[\"%s\",\"%s\"]", d->buildings[0], d->buildings[1]);
    snprintf(roof, sizeof roof, "\"%s\"", d->resources[6]);
    snprintf(big, sizeof big, "\"%s\",\"%s\"", d->resources[16], d->resources[19]);
    char roof_tmpl[640], big_tmpl[700];
    snprintf(roof_tmpl, sizeof roof_tmpl,
             "{\"tenant_id\":\"%%s\",\"building_ids\":%%s,\"description\":\"Roof deck coins\","
             "\"unit\":\"coin\",\"lines\":[{\"scope\":\"resources\",\"resource_ids\":[%s],"
             "\"amount\":600}],\"schedule\":{\"start\":\"%%s\",\"recurrence\":\"none\"}}",
             roof);
    snprintf(big_tmpl, sizeof big_tmpl,
             "{\"tenant_id\":\"%%s\",\"building_ids\":%%s,\"description\":\"Event spaces for"
             " reservers\",\"unit\":\"hour\",\"lines\":[{\"scope\":\"resources\","
             "\"resource_ids\":[%s],\"amount\":6}],\"targeting\":{\"type\":\"roles\","
             "\"roles\":[\"resource_reservation_reserver\"]},\"schedule\":{\"start\":\"%%s\","
             "\"recurrence\":\"monthly\"}}",
             big);
    static const char monthly[] =
        "{\"tenant_id\":\"%s\",\"building_ids\":%s,\"description\":\"Monthly meeting room"
        " hours\",\"unit\":\"hour\",\"lines\":[{\"scope\":\"all\",\"amount\":20}],"
        "\"schedule\":{\"start\":\"%s\",\"recurrence\":\"monthly\"}}";
    static const char rollover[] =
        "{\"tenant_id\":\"%s\",\"building_ids\":%s,\"description\":\"Monthly hours with"
        " rollover\",\"unit\":\"hour\",\"lines\":[{\"scope\":\"all\",\"amount\":10}],"
        "\"schedule\":{\"start\":\"%s\",\"recurrence\":\"monthly\","
        "\"rollover\":{\"enabled\":true,\"cap\":5}}}";
    static const char cross[] =
        "{\"tenant_id\":\"%s\",\"building_ids\":%s,\"cross_building\":true,\"description\":"
        "\"Hours in both buildings\",\"unit\":\"hour\",\"lines\":[{\"scope\":\"all\","
        "\"amount\":30}],\"schedule\":{\"start\":\"%s\",\"recurrence\":\"monthly\","
        "\"rollover\":{\"enabled\":true,\"cap\":10}}}";
    static const char coins[] =
        "{\"tenant_id\":\"%s\",\"building_ids\":%s,\"description\":\"Welcome coins\","
        "\"unit\":\"coin\",\"lines\":[{\"scope\":\"all\",\"amount\":1000}],"
        "\"schedule\":{\"start\":\"%s\",\"recurrence\":\"none\"}}";
    static const char unlimited[] =
        "{\"tenant_id\":\"%s\",\"building_ids\":%s,\"description\":\"Unlimited meeting"
        " hours\",\"unit\":\"hour\",\"lines\":[{\"scope\":\"all\",\"amount\":\"unlimited\"}],"
        "\"schedule\":{\"start\":\"%s\",\"recurrence\":\"monthly\"}}";
    static const char per_user[] =
        "{\"tenant_id\":\"%s\",\"building_ids\":%s,\"description\":\"Personal hours\","
        "\"unit\":\"hour\",\"pool\":\"per_user\",\"lines\":[{\"scope\":\"all\",\"amount\":4}],"
        "\"schedule\":{\"start\":\"%s\",\"recurrence\":\"monthly\"}}";
    if (allocate(d, 0, b0, monthly) || allocate(d, 0, b0, roof_tmpl) ||
        allocate(d, 1, b0, rollover) || allocate(d, 2, both, cross) ||
        allocate(d, 2, b0, coins) || allocate(d, 3, b1, unlimited) ||
        allocate(d, 4, b1, per_user) || allocate(d, 4, b1, big_tmpl)) {
        return d->err->status;
    }
    return 0;
}

/* ---------- bookings ---------- */

/* A resource the user's tenant can book: one of its buildings. */
static int
pick_resource(struct demo *d, int user)
{
    const char *bs = tenant_table[user / DEMO_USERS_PER_TENANT].buildings;
    int building = bs[demo_rand(d, (uint32_t)strlen(bs))] - '0';
    return building * (DEMO_RESOURCES / DEMO_BUILDINGS) +
           (int)demo_rand(d, DEMO_RESOURCES / DEMO_BUILDINGS);
}

/* Plans booking i: who, where, when (a weekday, office hours, local time),
 * when it was made (one to six days ahead), how it is paid. */
static int
plan_booking(struct demo *d, int i, int64_t now)
{
    struct demo_booking *b = &d->bookings[i];
    struct civil_date day0;
    (void)date_parse(d->date0, &day0, d->err);
    int span = (int)((now - d->t0) / DAY_S) + DEMO_AHEAD_DAYS;
    b->user = (int)demo_rand(d, DEMO_USERS);
    b->resource = pick_resource(d, b->user);
    const struct demo_resource *res = &resource_table[b->resource];
    struct civil_date day = date_add_days(day0, 2 + (int)demo_rand(d, (uint32_t)span - 2));
    int wday = date_wday(day);
    day = date_add_days(day, wday >= 6 ? 8 - wday : 0);
    int64_t midnight;
    if (tz_local_midnight(zones[res->building], day, &midnight, d->err) != 0) {
        return d->err->status;
    }
    int steps = 2 + (int)demo_rand(d, 3); /* 2..4 increments */
    int minutes = res->increment_minutes == 60 ? 60 * (steps - 1) : 30 * steps;
    b->start = midnight + (9 + (int)demo_rand(d, 8)) * 3600 + 1800 * (int)demo_rand(d, 2);
    b->end = b->start + minutes * 60;
    b->made_at = b->start - DAY_S * (1 + (int)demo_rand(d, 6)) - 3600 * (int)demo_rand(d, 8);
    if (b->made_at < d->t0 + 3600) {
        b->made_at = d->t0 + 3600;
    }
    if (b->made_at > now) {
        b->made_at = now;
    }
    uint32_t pay = demo_rand(d, 20);
    b->method = pay < 14 ? "credits" : pay < 17 ? "card" : "invoice";
    b->cancel = i % 16 == 5 || i % 16 == 12;
    return 0;
}

/* One moment of the history: a booking is made, or cancelled. */
struct demo_event {
    int64_t at;
    int booking;
    bool cancel;
};

static int
by_time(const void *a, const void *b)
{
    const struct demo_event *x = a, *y = b;
    if (x->at != y->at) {
        return x->at < y->at ? -1 : 1;
    }
    return (int)x->cancel - (int)y->cancel;
}

static struct principal
user_principal(const struct demo *d, int u)
{
    struct principal who = {.role = ROLE_TENANT_USER};
    (void)id_parse("ten", d->tenants[u / DEMO_USERS_PER_TENANT], &who.tenant_id);
    (void)id_parse("usr", d->users[u], &who.user_id);
    snprintf(who.name, sizeof who.name, "demo:%s", d->users[u]);
    return who;
}

/* Books as the user would; a refused credit payment falls back to the
 * card, and a booking that cannot be made at all is left out. */
static void
make_booking(struct demo *d, struct demo_booking *b)
{
    struct principal who = user_principal(d, b->user);
    char start[32], end[32];
    time_format_rfc3339(b->start, start, sizeof start);
    time_format_rfc3339(b->end, end, sizeof end);
    for (int attempt = 0; attempt < 2 && b->id[0] == '\0'; attempt++) {
        const char *method = attempt == 0 ? b->method : "card";
        json_t *out = demo_as(d, &who, "bookings.create",
                              json_pack("{s:s, s:s, s:s, s:s, s:s}", "resource_id",
                                        d->resources[b->resource], "user_id",
                                        d->users[b->user], "start", start, "end", end,
                                        "payment_method", method));
        if (out != NULL) {
            snprintf(b->id, sizeof b->id, "%s", json_string_value(json_object_get(out, "id")));
            json_decref(out);
        }
    }
    memset(d->err, 0, sizeof *d->err);
}

/* Half the cancellations come from the user (refunded by the policy's
 * windows), half from the operator (refunded in full). */
static void
cancel_booking(struct demo *d, int i)
{
    struct demo_booking *b = &d->bookings[i];
    if (b->id[0] == '\0') {
        return;
    }
    struct principal user = user_principal(d, b->user);
    json_t *out = demo_as(d, i % 2 == 0 ? &user : &d->admin, "bookings.cancel",
                          json_pack("{s:s, s:s}", "id", b->id, "reason", "plans changed"));
    json_decref(out);
    memset(d->err, 0, sizeof *d->err);
}

/* Lives through the history: the clock moves to each booking's making,
 * and to some cancellations two hours later. */
static int
seed_bookings(struct demo *d, int64_t now)
{
    struct demo_event events[2 * DEMO_BOOKINGS];
    int n = 0;
    for (int i = 0; i < DEMO_BOOKINGS; i++) {
        if (plan_booking(d, i, now) != 0) {
            return d->err->status;
        }
        events[n++] = (struct demo_event){d->bookings[i].made_at, i, false};
        int64_t cancel_at = d->bookings[i].made_at + 2 * 3600;
        if (d->bookings[i].cancel && cancel_at <= now) {
            events[n++] = (struct demo_event){cancel_at, i, true};
        }
    }
    qsort(events, (size_t)n, sizeof events[0], by_time);
    for (int k = 0; k < n; k++) {
        if (engine_set_clock(&d->eng, events[k].at, d->err) != 0) {
            return d->err->status;
        }
        if (events[k].cancel) {
            cancel_booking(d, events[k].booking);
        } else {
            make_booking(d, &d->bookings[events[k].booking]);
        }
    }
    return 0;
}

/* ---------- keys ---------- */

static int
first_id(struct demo *d, const char *op, char id[ID_MAX])
{
    json_t *out = demo_as(d, &d->admin, op, json_pack("{s:i}", "limit", 1));
    json_t *row = out != NULL ? json_array_get(json_object_get(out, "data"), 0) : NULL;
    id[0] = '\0';
    if (row != NULL) {
        snprintf(id, ID_MAX, "%s", json_string_value(json_object_get(row, "id")));
    }
    json_decref(out);
    return out != NULL ? 0 : d->err->status;
}

/* The name of object `id` (op "tenants.get" or "users.get") into out; ""
 * when it cannot be read. */
static void
name_of(struct demo *d, const char *op, const char *prefix, int64_t id, char *out, size_t cap)
{
    char text[ID_MAX];
    id_format(prefix, id, text, sizeof text);
    json_t *row = demo_as(d, &d->admin, op, json_pack("{s:s}", "id", text));
    const char *name = json_string_value(json_object_get(row, "name"));
    const char *email = json_string_value(json_object_get(row, "email"));
    snprintf(out, cap, "%s%s%s%s (%s)", name != NULL ? name : "?", email ? " <" : "",
             email ? email : "", email ? ">" : "", text);
    json_decref(row);
    memset(d->err, 0, sizeof *d->err);
}

/* Whether `key` authenticates as `role`; fills who with whom it stands for.
 * A storage failure is an error, not a key to replace. */
static int
key_check(struct demo *d, const char *key, const char *role, bool *ok, char *who, size_t cap)
{
    struct principal p;
    *ok = false;
    if (engine_authenticate(&d->eng, key, &p, d->err) != 0) {
        int rc = d->err->status == ENG_ESTORE ? ENG_ESTORE : 0;
        if (rc == 0) {
            memset(d->err, 0, sizeof *d->err);
        }
        return rc;
    }
    *ok = strcmp(role_name(p.role), role) == 0;
    if (!*ok) {
        return 0;
    }
    char tenant[96], user[160];
    if (p.user_id != 0) {
        name_of(d, "users.get", "usr", p.user_id, user, sizeof user);
        name_of(d, "tenants.get", "ten", p.tenant_id, tenant, sizeof tenant);
        snprintf(who, cap, "%s of %s", user, tenant);
    } else if (p.tenant_id != 0) {
        name_of(d, "tenants.get", "ten", p.tenant_id, tenant, sizeof tenant);
        snprintf(who, cap, "an administrator of %s", tenant);
    } else {
        snprintf(who, cap, "every building (an operator key)");
    }
    return 0;
}

static int
make_key(struct demo *d, struct demo_keys *keys, int k, const char *field, const char *id)
{
    json_t *args = json_pack("{s:s, s:s}", "role", keys->role[k], "name", "demo");
    if (args != NULL && field != NULL) {
        json_object_set_new(args, field, json_string(id));
    }
    if (args == NULL) {
        return eng_error_set(d->err, ENG_ENOMEM, "out of memory making demo keys");
    }
    json_t *out = demo_as(d, &d->admin, "keys.create", args);
    if (out == NULL) {
        return d->err->status;
    }
    snprintf(keys->key[k], sizeof keys->key[k], "%s",
             json_string_value(json_object_get(out, "key")));
    json_decref(out);
    keys->minted++;
    return 0;
}

/* The keys file: "# comment" lines, then one "ROLE KEY" line per role.
 * Reads the saved key of each role of *keys into it (a missing file or
 * line leaves it empty). */
static void
keys_load(struct demo_keys *keys)
{
    FILE *f = keys->path[0] != '\0' ? fopen(keys->path, "r") : NULL;
    char line[256];
    while (f != NULL && fgets(line, sizeof line, f) != NULL) {
        char role[16], key[DEMO_KEY_BYTES_MAX];
        if (line[0] == '#' || sscanf(line, "%15s %95s", role, key) != 2) {
            continue;
        }
        for (int k = 0; k < keys->count; k++) {
            if (strcmp(keys->role[k], role) == 0) {
                snprintf(keys->key[k], sizeof keys->key[k], "%s", key);
            }
        }
    }
    if (f != NULL) {
        fclose(f);
    }
}

/* Writes the keys file whole (a temporary file renamed over it), readable
 * by its owner only: it holds a super_admin key. */
static int
keys_save(struct demo *d, const struct demo_keys *keys)
{
    if (keys->path[0] == '\0') {
        return 0; /* a database URI: keys are printed, not kept in a file */
    }
    char tmp[sizeof keys->path + 8];
    snprintf(tmp, sizeof tmp, "%s.tmp", keys->path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
    if (f == NULL) {
        if (fd >= 0) {
            close(fd);
        }
        return eng_error_set(d->err, ENG_ESTORE, "cannot write the demo keys file %s", tmp);
    }
    fprintf(f, "# The API keys of `allotd --demo` on this database, one per role; the next\n"
               "# start reuses them (delete this file for new ones).  Keep it private.\n");
    for (int k = 0; k < keys->count; k++) {
        fprintf(f, "%s %s\n", keys->role[k], keys->key[k]);
    }
    bool ok = fflush(f) == 0 && fsync(fileno(f)) == 0;
    ok = fclose(f) == 0 && ok;
    if (!ok || rename(tmp, keys->path) != 0) {
        (void)unlink(tmp);
        return eng_error_set(d->err, ENG_ESTORE, "cannot write the demo keys file %s",
                             keys->path);
    }
    return 0;
}

static int
create_keys(struct demo *d, struct demo_keys *keys)
{
    static const char *const roles[DEMO_KEYS_MAX] = {"super_admin", "manager", "viewer",
                                                     "tenant_admin", "tenant_user"};
    char tenant[ID_MAX], user[ID_MAX];
    if (first_id(d, "tenants.list", tenant) || first_id(d, "users.list", user)) {
        return d->err->status;
    }
    keys->count = 0;
    for (int k = 0; k < DEMO_KEYS_MAX; k++) {
        if ((k == 3 && tenant[0] == '\0') || (k == 4 && user[0] == '\0')) {
            continue;
        }
        snprintf(keys->role[keys->count], sizeof keys->role[0], "%s", roles[k]);
        keys->key[keys->count++][0] = '\0';
    }
    keys_load(keys);
    for (int k = 0; k < keys->count; k++) {
        bool ok = false;
        if (keys->key[k][0] != '\0' &&
            key_check(d, keys->key[k], keys->role[k], &ok, keys->who[k], sizeof keys->who[0])) {
            return d->err->status;
        }
        if (ok) {
            continue;
        }
        const char *field = strcmp(keys->role[k], "tenant_admin") == 0  ? "tenant_id"
                            : strcmp(keys->role[k], "tenant_user") == 0 ? "user_id"
                                                                        : NULL;
        const char *id = field != NULL && strcmp(field, "tenant_id") == 0 ? tenant : user;
        if (make_key(d, keys, k, field, id) ||
            key_check(d, keys->key[k], keys->role[k], &ok, keys->who[k], sizeof keys->who[0])) {
            return d->err->status;
        }
    }
    return keys->minted > 0 ? keys_save(d, keys) : 0;
}

/* ---------- entry point ---------- */

/* True when the database holds at least one building. */
static int
has_buildings(struct demo *d, bool *yes)
{
    char id[ID_MAX];
    if (first_id(d, "buildings.list", id) != 0) {
        return d->err->status;
    }
    *yes = id[0] != '\0';
    return 0;
}

/* The history starts on the first day of the month three months back. */
static void
history_start(struct demo *d, int64_t now)
{
    char today[32];
    struct civil_date day;
    time_format_rfc3339(now, today, sizeof today);
    today[10] = '\0';
    (void)date_parse(today, &day, d->err);
    day.day = 1;
    day = date_add_months(day, -DEMO_HISTORY_MONTHS);
    date_format(day, d->date0, sizeof d->date0);
    /* 06:00 UTC is after local midnight in both demo zones. */
    d->t0 = date_to_days(day) * DAY_S + 6 * 3600;
}

static int
seed(struct demo *d, const struct engine_config *cfg, int64_t now)
{
    struct engine_config past = *cfg;
    past.fake_clock = true;
    past.fake_now = d->t0;
    if (engine_open(&d->eng, &past, d->err) != 0) {
        return d->err->status; /* engine_open leaves nothing open */
    }
    int rc = 0;
    if (seed_buildings(d) || seed_tenants(d) || seed_users(d) || seed_resources(d) ||
        seed_allocations(d) || seed_bookings(d, now) ||
        engine_set_clock(&d->eng, now, d->err)) {
        rc = d->err->status;
    }
    engine_close(&d->eng);
    return rc;
}

int
demo_prepare(const struct engine_config *cfg, struct demo_keys *keys, struct eng_error *err)
{
    static struct demo d; /* big; used once, before any server thread runs */
    memset(&d, 0, sizeof d);
    d.err = err;
    d.rng = 0x9e3779b97f4a7c15ull;
    d.admin.role = ROLE_SUPER_ADMIN;
    snprintf(d.admin.name, sizeof d.admin.name, "demo");
    int64_t now = cfg->fake_clock && cfg->fake_now != 0 ? cfg->fake_now : (int64_t)time(NULL);
    bool seeded = false;
    if (engine_open(&d.eng, cfg, err) != 0) {
        return err->status;
    }
    int rc = has_buildings(&d, &seeded);
    engine_close(&d.eng);
    if (rc != 0) {
        return rc;
    }
    if (!seeded) {
        history_start(&d, now);
        if (seed(&d, cfg, now) != 0) {
            return err->status;
        }
    }
    /* Keys are made on the engine as the server will run it. */
    /* Beside a database file; for a URI (postgresql://...) none. */
    if (strstr(cfg->db_path, "://") == NULL) {
        snprintf(keys->path, sizeof keys->path, "%s.keys", cfg->db_path);
    } else {
        keys->path[0] = '\0';
    }
    keys->minted = 0;
    rc = engine_open(&d.eng, cfg, err);
    if (rc == 0) {
        rc = create_keys(&d, keys);
        engine_auth_thread_done(); /* this thread's reader is on the engine closed next */
        engine_close(&d.eng);
    }
    return rc;
}

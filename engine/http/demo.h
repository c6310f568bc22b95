/* demo.h - demo data for `allotd --demo`. */
#ifndef ENG_DEMO_H
#define ENG_DEMO_H

#include "engine.h"

#define DEMO_KEYS_MAX 5
#define DEMO_KEY_BYTES_MAX 96

/* The keys created for the demo, one per role, to print once. */
struct demo_keys {
    int count;
    char role[DEMO_KEYS_MAX][16];
    char key[DEMO_KEYS_MAX][DEMO_KEY_BYTES_MAX];
};

/* Prepares the database of `cfg` for a demo.  When it holds no building,
 * seeds a portfolio (2 buildings, 5 tenants, 40 users, 20 resources,
 * allocations from three months ago and a few dozen bookings) by living
 * through those three months on a fake clock, so that expiries, rollovers
 * and refunds happen as they would have.  Then, new database or not,
 * creates one fresh API key per role into *keys.  Everything goes through
 * engine_exec as a super_admin console principal.  Opens and closes its
 * own engine: call it before the server opens the database.  Returns 0 or
 * an error in *err. */
ENG_MUST_CHECK int demo_prepare(const struct engine_config *cfg, struct demo_keys *keys,
                                struct eng_error *err);

#endif

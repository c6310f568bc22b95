/* demo.h - demo data for `allotd --demo`. */
#ifndef ENG_DEMO_H
#define ENG_DEMO_H

#include "engine.h"

#define DEMO_KEYS_MAX 5
#define DEMO_KEY_BYTES_MAX 96

#define DEMO_WHO_BYTES_MAX 288

/* The demo's keys, one per role, and whom each one is: the same keys at
 * every start on the same database (see demo_prepare). */
struct demo_keys {
    int count;
    int minted; /* how many of them this start created */
    char role[DEMO_KEYS_MAX][16];
    char key[DEMO_KEYS_MAX][DEMO_KEY_BYTES_MAX];
    char who[DEMO_KEYS_MAX][DEMO_WHO_BYTES_MAX]; /* "Ada Lovelace (usr_1) of Acme ..." */
    char path[ENGINE_PATH_MAX + 8];              /* the keys file: the database + ".keys" */
};

/* Prepares the database of `cfg` for a demo.  When it holds no building,
 * seeds a portfolio (2 buildings, 5 tenants, 40 users, 20 resources,
 * allocations from three months ago and a few dozen bookings) by living
 * through those three months on a fake clock, so that expiries, rollovers
 * and refunds happen as they would have.  Then, new database or not, fills
 * *keys with one API key per role: the ones saved in the keys file (the
 * database's path + ".keys", mode 0600) when they still authenticate with
 * their role, fresh ones (saved there) for the others, so restarting a
 * demo neither changes its keys nor piles up new ones.  Everything goes through
 * engine_exec as a super_admin console principal.  Opens and closes its
 * own engine: call it before the server opens the database.  Returns 0 or
 * an error in *err. */
ENG_MUST_CHECK int demo_prepare(const struct engine_config *cfg, struct demo_keys *keys,
                                struct eng_error *err);

#endif

/* auth.h - turning an API key into a principal.
 *
 * Keys are stored only as their SHA-256 (api_key.key_hash); a presented key
 * is hashed and looked up on a read-only connection that belongs to the
 * calling thread, never on the writer, so authentication never waits behind
 * a write transaction. */
#ifndef ENG_AUTH_H
#define ENG_AUTH_H

#include "engine.h"

#define AUTH_KEY_BYTES_MAX 200 /* longer "keys" are refused unhashed */

/* Fills *out with the principal of API key `key` (borrowed, NUL-terminated).
 * A missing, malformed, unknown or revoked key is ENG_EUNAUTH with code
 * "unauthorized"; a database failure is ENG_ESTORE.  Tenant roles carry
 * their tenant (a tenant_user's is its user's tenant), admin keys their
 * building scope.  Thread-safe: each thread lazily opens its own reader,
 * closed when the thread exits. */
ENG_MUST_CHECK int engine_authenticate(struct engine *eng, const char *key,
                                       struct principal *out, struct eng_error *err);

/* The authentication cache: a keyed hash of the raw key (SipHash-2-4,
 * 128 bits, under a random secret of the process) -> principal, so a known
 * key costs that hash and a table probe instead of a SHA-256 and a
 * database lookup.  An entry is
 * trusted only while (a) no committed write that can change what a key
 * authenticates as (an op named keys.*, users.* or tenants.*) came after
 * the lookup that filled it began, and (b) it is younger than
 * AUTH_CACHE_TTL_MS, which bounds how long a change made to the database
 * by another process (sqlite3, a second allotd) can go unseen.  Refusals
 * are never cached. */
#define AUTH_CACHE_ENTRIES 1024 /* auth_cache_entries_max: distinct keys held */
#define AUTH_CACHE_TTL_MS 1000

/* Closes the calling thread's reader now (for the thread that also closes
 * the engine; worker threads close theirs when they exit). */
void engine_auth_thread_done(void);

#endif

/* users.h - listing and writing users (rows: portfolio.h). */
#ifndef ENG_STORE_USERS_H
#define ENG_STORE_USERS_H

#include <stdint.h>

#include "error.h"
#include "portfolio.h"
#include "store.h"

/* Users with id > after (of one tenant unless tenant_id is 0) in id order,
 * at most `limit` (negative: all); cb borrows each row, its JSON included
 * (non-zero stops and is returned). */
ENG_MUST_CHECK int store_user_each(struct store *s, int64_t tenant_id, int64_t after,
                                   int64_t limit, int (*cb)(void *ud, const struct user_row *row),
                                   void *ud, struct eng_error *err);
/* Inserts u (its id ignored; NULL roles store []); *id is the new id. */
ENG_MUST_CHECK int store_user_insert(struct store *s, const struct user_row *u, int64_t *id,
                                     struct eng_error *err);
/* Rewrites the name, email and roles of user u->id. */
ENG_MUST_CHECK int store_user_update(struct store *s, const struct user_row *u,
                                     struct eng_error *err);

#endif

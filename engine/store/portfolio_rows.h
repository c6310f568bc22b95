/* portfolio_rows.h - for the store's portfolio modules only: the column
 * lists of buildings, resources, tenants and users and the readers that
 * turn one selected row into its row struct (portfolio.h).  A stored text
 * too long for its field is an error, never a truncation. */
#ifndef ENG_STORE_PORTFOLIO_ROWS_H
#define ENG_STORE_PORTFOLIO_ROWS_H

#include <jansson.h>

#include "internal.h"

/* The row structs are portfolio.h's (declared here only, so that
 * portfolio.c, which defines these readers, may include this header). */
struct building_row;
struct resource_row;
struct tenant_row;
struct user_row;

#define BUILDING_COLS                                                                         \
    "id, name, timezone, currency, pay_credits, pay_invoice, pay_card, created_at"
#define RESOURCE_COLS                                                                         \
    "id, building_id, name, kind, tags, pricing, credit_only, created_at, archived_at"
#define TENANT_COLS "id, name, cross_building, created_at"
#define USER_COLS "id, tenant_id, name, email, roles, created_at"

/* Each fills *out from the statement's current row (selected with the
 * matching column list; defined in portfolio.c); 0 or an error.  JSON fields are owned by *out
 * (release with store_resource_clear / store_user_clear), even on error. */
int rows_building(sqlite3_stmt *st, struct building_row *out, struct eng_error *err);
int rows_resource(sqlite3_stmt *st, struct resource_row *out, struct eng_error *err);
int rows_tenant(sqlite3_stmt *st, struct tenant_row *out, struct eng_error *err);
int rows_user(sqlite3_stmt *st, struct user_row *out, struct eng_error *err);

/* A JSON value as stored text (compact); NULL on out of memory (err set). */
char *rows_json_text(const json_t *v, struct eng_error *err);

#endif

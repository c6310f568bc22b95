/* generation.c - the portfolio generation (see generation.h). */
#include "generation.h"

#include "internal.h"

int
store_generation_get(struct store *s, int64_t *gen, struct eng_error *err)
{
    STORE_SQL(q, "SELECT n FROM portfolio_generation");
    if (sq_scalar(s, &q, 0, -1, gen, err) != 0) {
        return err->status;
    }
    if (*gen < 0) {
        return eng_error_code(err, ENG_ESTORE, "storage_error",
                              "the portfolio generation row is missing");
    }
    return 0;
}

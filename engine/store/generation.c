/* generation.c - the portfolio generation (see generation.h). */
#include "generation.h"

#include "internal.h"

int
store_generation_get(struct store *s, int64_t *gen, struct eng_error *err)
{
    STORE_SQL(q, "SELECT n FROM portfolio_generation");
    s->known.gen_known = false;
    if (sq_scalar(s, &q, 0, -1, gen, err) != 0) {
        return err->status;
    }
    if (*gen < 0) {
        return eng_error_code(err, ENG_ESTORE, "storage_error",
                              "the portfolio generation row is missing");
    }
    /* Noted for store_generation_known (writing SQLite connections). */
    if (store_known_note_begin(s)) {
        s->known.gen_known = true;
        s->known.gen = *gen;
        s->known.bumps_at = s->known.bumps;
    }
    return 0;
}

bool
store_generation_known(struct store *s, int64_t *gen)
{
    if (!s->known.gen_known || s->known.bumps != s->known.bumps_at || !store_known_holds(s)) {
        return false;
    }
    *gen = s->known.gen;
    return true;
}

int
store_generation_now(struct store *s, int64_t *gen, struct eng_error *err)
{
    return store_generation_known(s, gen) ? 0 : store_generation_get(s, gen, err);
}

/* price_check.c - the checks every pricing result meets. */
#include "price_check.h"

#include <stdio.h>
#include <string.h>

#include "amount.h"

/* One optional integer field in [0, max]. */
static int
price_int(const json_t *res, const char *key, int64_t max, bool *has, int64_t *out,
          struct eng_error *err)
{
    const json_t *v = json_object_get(res, key);
    *has = v != NULL && !json_is_null(v);
    if (!*has) {
        return 0;
    }
    /* A real (1e308, 2.0) is refused like a negative or too large integer:
     * amounts are exact integers (policies/README.md §2). */
    if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > max) {
        char got[48];
        if (json_is_integer(v)) {
            snprintf(got, sizeof got, "%lld", (long long)json_integer_value(v));
        } else if (json_is_real(v)) {
            snprintf(got, sizeof got, "%.6g", json_real_value(v));
        } else {
            snprintf(got, sizeof got, "a %s", json_is_string(v)   ? "string"
                                              : json_is_boolean(v) ? "boolean"
                                                                   : "table");
        }
        return eng_error_code(err, ENG_EPOLICY, "policy_error",
                              "the pricing policy returned an invalid '%s' (%s; an integer "
                              "from 0 to %lld is required)",
                              key, got, (long long)max);
    }
    *out = (int64_t)json_integer_value(v);
    return 0;
}

int
policy_price_read(const json_t *res, struct policy_price *out, const char **refusal,
                  struct eng_error *err)
{
    memset(out, 0, sizeof *out);
    *refusal = NULL;
    const json_t *msg = json_is_object(res) ? json_object_get(res, "error") : NULL;
    if (msg != NULL) {
        *refusal = json_is_string(msg) ? json_string_value(msg) : "refused by policy";
        return 0;
    }
    if (json_is_array(res) && json_array_size(res) == 0) {
        return 0; /* an empty Lua table: no price of either kind */
    }
    if (!json_is_object(res)) {
        return eng_error_code(err, ENG_EPOLICY, "policy_error",
                              "the pricing policy must return a table");
    }
    static const char *const known[] = {"money", "money_before_discount", "credits", "unit"};
    const char *key;
    const json_t *value;
    json_object_foreach((json_t *)res, key, value) {
        bool named = false;
        for (size_t i = 0; i < sizeof known / sizeof known[0] && !named; i++) {
            named = strcmp(known[i], key) == 0;
        }
        if (!named) {
            return eng_error_code(err, ENG_EPOLICY, "policy_error",
                                  "the pricing policy returned an unknown key '%.40s'", key);
        }
    }
    (void)value;
    bool has_before = false;
    if (price_int(res, "money", POLICY_PRICE_MONEY_MAX, &out->has_money, &out->money, err) ||
        price_int(res, "money_before_discount", POLICY_PRICE_MONEY_MAX, &has_before,
                  &out->money_before, err) ||
        price_int(res, "credits", AMOUNT_MILLI_MAX, &out->has_credits, &out->credits, err)) {
        return err->status;
    }
    if (!has_before) {
        out->money_before = out->money;
    }
    if (out->has_money && out->money_before < out->money) {
        return eng_error_code(err, ENG_EPOLICY, "policy_error",
                              "the pricing policy returned money_before_discount (%lld) below "
                              "money (%lld): a discount never raises a price",
                              (long long)out->money_before, (long long)out->money);
    }
    if (out->has_credits) {
        const char *unit = json_string_value(json_object_get(res, "unit"));
        if (unit == NULL || (strcmp(unit, "hour") != 0 && strcmp(unit, "coin") != 0)) {
            return eng_error_code(err, ENG_EPOLICY, "policy_error",
                                  "the pricing policy must name the unit (hour or coin)");
        }
        snprintf(out->unit, sizeof out->unit, "%s", unit);
    }
    return 0;
}

/* test_csv.c - the CSV writer against formula injection (OWASP "CSV
 * injection"): text that a spreadsheet would run gets a leading
 * apostrophe, numbers (negative amounts included) stay numbers. */
#include <stdlib.h>

#include "check.h"
#include "csv.h"

/* One row of one JSON value, as text without the CRLF. */
static char *
cell_of(json_t *v)
{
    struct csv c = {0};
    csv_json(&c, v);
    csv_end_row(&c);
    json_decref(v);
    char *text = csv_take(&c);
    size_t n = strlen(text);
    if (n >= 2) {
        text[n - 2] = '\0';
    }
    return text;
}

static void
check_cell(json_t *v, const char *want)
{
    char *got = cell_of(v);
    CHECK_STR(got, want);
    free(got);
}

static void
test_text_is_neutralised(void)
{
    check_cell(json_string("=HYPERLINK(\"http://x\",\"y\")"),
               "\"'=HYPERLINK(\"\"http://x\"\",\"\"y\"\")\"");
    check_cell(json_string("=1+2"), "'=1+2");
    check_cell(json_string("+1"), "'+1");
    check_cell(json_string("-1"), "'-1");
    check_cell(json_string("@SUM(A1)"), "'@SUM(A1)");
    check_cell(json_string("\tcmd"), "'\tcmd");
    check_cell(json_string("\rcmd"), "\"'\rcmd\"");
    check_cell(json_string("=a,b"), "\"'=a,b\"");
    /* Only the first character counts. */
    check_cell(json_string("a=1"), "a=1");
    check_cell(json_string("Acme"), "Acme");
    check_cell(json_string(""), "");
    check_cell(json_string("2026-01-15"), "2026-01-15");
}

static void
test_numbers_stay_numbers(void)
{
    check_cell(json_integer(-5), "-5");
    check_cell(json_integer(42), "42");
    check_cell(json_real(-1.5), "-1.5");
    check_cell(json_real(2.25), "2.25");
    check_cell(json_null(), "");
    check_cell(json_true(), "true");
}

static void
test_lists_and_direct_fields(void)
{
    json_t *list = json_pack("[s,s]", "=cmd", "b");
    check_cell(list, "'=cmd b");
    struct csv c = {0};
    csv_field(&c, "-x");
    csv_number(&c, "-2.5");
    csv_field(&c, "@y");
    csv_end_row(&c);
    char *text = csv_take(&c);
    CHECK_STR(text, "'-x,-2.5,'@y\r\n");
    free(text);
}

static void
test_table(void)
{
    static const char *const cols[] = {"name", "amount", NULL};
    json_t *rows = json_pack("[{s:s,s:f},{s:s,s:i}]", "name", "=2+5", "amount", -1.5, "name",
                             "Acme", "amount", 3);
    char *text = csv_table(rows, cols);
    CHECK_STR(text, "name,amount\r\n'=2+5,-1.5\r\nAcme,3\r\n");
    free(text);
    json_decref(rows);
}

int
main(void)
{
    test_text_is_neutralised();
    test_numbers_stay_numbers();
    test_lists_and_direct_fields();
    test_table();
    return check_exit();
}

/* fuzz_policy.c - loading arbitrary source into the policy sandbox with
 * the real limits (policy_host.h), then calling it.  The first input byte
 * picks the kind the source overrides; the rest is the Lua text.  The
 * sandbox must refuse or run it without crashing, without undefined
 * behaviour, and within its memory cap; a load that fails leaves a
 * message, and a set that loads can be called and released. */
#include "fuzz_util.h"
#include "policy_host.h"

static struct policy_source defaults[POLICY_KIND_COUNT];
static json_t *ctx;

static char *
read_text(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        return NULL;
    }
    char *buf = malloc(256 * 1024 + 1);
    *len = buf != NULL ? fread(buf, 1, 256 * 1024, f) : 0;
    fclose(f);
    if (buf != NULL) {
        buf[*len] = '\0';
    }
    return buf;
}

int LLVMFuzzerInitialize(int *argc, char ***argv);

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    static char names[POLICY_KIND_COUNT][64];
    for (int k = 0; k < POLICY_KIND_COUNT; k++) {
        char path[1024];
        const char *kind = policy_kind_name((enum policy_kind)k);
        snprintf(path, sizeof path, "%s/policies/default/%s.lua", ALLOT_SOURCE_DIR, kind);
        snprintf(names[k], sizeof names[k], "policies/default/%s.lua", kind);
        size_t len = 0;
        char *text = read_text(path, &len);
        if (text == NULL) {
            fprintf(stderr, "fuzz_policy: cannot read %s\n", path);
            abort();
        }
        defaults[k] = (struct policy_source){names[k], text, len};
    }
    ctx = json_pack("{s:{s:i, s:s, s:s}, s:{s:s}, s:[]}", "booking", "minutes", 60, "start",
                    "2026-01-05T09:00:00Z", "end", "2026-01-05T10:00:00Z", "resource", "kind",
                    "meeting_room", "lots");
    return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) {
        return 0;
    }
    enum policy_kind kind = (enum policy_kind)(data[0] % POLICY_KIND_COUNT);
    struct policy_source over[POLICY_KIND_COUNT] = {{0}};
    over[kind] = (struct policy_source){"policies/buildings/bld_1/fuzz.lua",
                                        (const char *)data + 1, size - 1};
    struct policy_limits lim;
    policy_limits_default(&lim);
    struct policy_set *set = NULL;
    struct eng_error err = {0};
    if (policy_set_load(&set, defaults, over, &lim, &err) != 0) {
        FUZZ_ASSERT(set == NULL && err.msg[0] != '\0');
        return 0;
    }
    FUZZ_ASSERT(set != NULL);
    json_t *out = NULL;
    if (policy_set_call(set, kind, ctx, &out, &err) == 0) {
        FUZZ_ASSERT(out != NULL);
        json_decref(out);
    } else {
        FUZZ_ASSERT(out == NULL && err.msg[0] != '\0');
    }
    FUZZ_ASSERT(policy_set_memory_bytes(set) <= lim.memory_bytes_max);
    policy_set_release(set);
    return 0;
}

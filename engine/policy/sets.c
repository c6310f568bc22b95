/* sets.c - per-building policy sets: sources, build, cache, install. */
#include "sets.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "cluster.h"
#include "policies.h"
#include "sha256.h"

static char *
read_file(const char *path, size_t max, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        return NULL;
    }
    char *buf = malloc(max + 1);
    size_t n = buf ? fread(buf, 1, max + 1, f) : 0;
    fclose(f);
    if (buf == NULL || n > max) {
        free(buf);
        return NULL;
    }
    buf[n] = '\0';
    *len = n;
    return buf;
}

int
policy_cache_open(struct policy_cache *pc, const char *dir, const struct policy_limits *limits,
                  struct eng_error *err)
{
    memset(pc, 0, sizeof *pc);
    snprintf(pc->dir, sizeof pc->dir, "%s", dir);
    pc->limits = *limits;
    pthread_mutex_init(&pc->mu, NULL);
    pc->slots = calloc(POLICY_CACHE_SLOTS, sizeof *pc->slots);
    if (pc->slots == NULL) {
        policy_cache_close(pc);
        return eng_error_set(err, ENG_ENOMEM, "out of memory");
    }
    for (int k = 0; k < POLICY_KIND_COUNT; k++) {
        char path[POLICY_PATH_MAX + 64];
        size_t len = 0;
        const char *kind = policy_kind_name((enum policy_kind)k);
        snprintf(path, sizeof path, "%s/default/%s.lua", pc->dir, kind);
        pc->default_text[k] = read_file(path, pc->limits.source_bytes_max, &len);
        if (pc->default_text[k] == NULL) {
            eng_error_set(err, ENG_EINVAL, "cannot read the default policy '%s'", path);
            policy_cache_close(pc);
            return ENG_EINVAL;
        }
        snprintf(pc->default_names[k], sizeof pc->default_names[k], "policies/default/%s.lua",
                 kind);
        pc->defaults[k] = (struct policy_source){pc->default_names[k], pc->default_text[k], len};
        sha256_hex(pc->default_text[k], len, pc->default_sha[k]);
    }
    /* Compile them once now, so a broken default fails at start-up. */
    struct policy_set *set = NULL;
    struct policy_source none[POLICY_KIND_COUNT] = {{0}};
    if (policy_set_load(&set, pc->defaults, none, &pc->limits, err) != 0) {
        policy_cache_close(pc);
        return err->status;
    }
    policy_set_release(set);
    return 0;
}

void
policy_cache_close(struct policy_cache *pc)
{
    if (pc->slots != NULL) {
        policy_cache_invalidate(pc, 0);
        free(pc->slots);
        pc->slots = NULL;
        pthread_mutex_destroy(&pc->mu);
    }
    for (int k = 0; k < POLICY_KIND_COUNT; k++) {
        free(pc->default_text[k]);
        pc->default_text[k] = NULL;
    }
}

/* Open addressing keyed by building_id + 1 (0 marks a never-used slot, -1 a
 * freed one that probe chains still pass through). */
static struct policy_slot *
slot_find(struct policy_cache *pc, int64_t building_id, bool insert)
{
    int64_t key = building_id + 1;
    uint64_t h = (uint64_t)key * 11400714819323198485ull;
    struct policy_slot *tomb = NULL;
    for (int probe = 0; probe < POLICY_CACHE_SLOTS; probe++) {
        struct policy_slot *s =
            &pc->slots[(h + (uint64_t)probe) % POLICY_CACHE_SLOTS];
        if (s->set != NULL && s->building_id == key) {
            return s;
        }
        if (s->set == NULL && s->building_id == 0) {
            return insert ? (tomb != NULL ? tomb : s) : NULL;
        }
        if (s->set == NULL && tomb == NULL) {
            tomb = s;
        }
    }
    return insert ? tomb : NULL;
}

/* The sources of a building's policy set: per kind, the active uploaded
 * version (policy_active), else a file policies/buildings/bld_<id>/<kind>.lua,
 * else the default.  `cand`, when not NULL, replaces one kind (a candidate
 * being checked, simulated or quoted under). */
struct set_sources {
    struct policy_source over[POLICY_KIND_COUNT];
    char *texts[POLICY_KIND_COUNT];
    char names[POLICY_KIND_COUNT][96];
    char labels[POLICY_KIND_COUNT][POLICY_LABEL_MAX];
};

static void
sources_free(struct set_sources *src)
{
    for (int k = 0; k < POLICY_KIND_COUNT; k++) {
        free(src->texts[k]);
        src->texts[k] = NULL;
    }
}

struct db_sources {
    struct set_sources *src;
    int64_t building_id;
    struct eng_error *err;
};

static int
source_from_row(void *ud, const struct policy_active_row *row)
{
    struct db_sources *d = ud;
    struct set_sources *src = d->src;
    enum policy_kind k;
    if (policy_kind_parse(row->kind, &k, NULL) != 0 || src->texts[k] != NULL) {
        return 0;
    }
    src->texts[k] = malloc(row->source_len + 1);
    if (src->texts[k] == NULL) {
        return eng_error_set(d->err, ENG_ENOMEM, "out of memory");
    }
    memcpy(src->texts[k], row->source, row->source_len);
    src->texts[k][row->source_len] = '\0';
    snprintf(src->names[k], sizeof src->names[k], "policies/bld_%" PRId64 "/%s.lua@v%" PRId64,
             d->building_id, policy_kind_name(k), row->version);
    src->over[k] = (struct policy_source){src->names[k], src->texts[k], row->source_len};
    snprintf(src->labels[k], sizeof src->labels[k], "v%" PRId64 ":%.12s", row->version,
             row->sha256);
    return 0;
}

static int
sources_load(struct policy_cache *pc, struct store *store, int64_t building_id,
             const struct policy_candidate *cand, struct set_sources *src,
             struct eng_error *err)
{
    memset(src, 0, sizeof *src);
    if (building_id != 0 && store != NULL) {
        struct db_sources d = {src, building_id, err};
        int rc = store_policy_active_each(store, building_id, source_from_row, &d, err);
        if (rc != 0) {
            sources_free(src);
            return rc;
        }
    }
    for (int k = 0; k < POLICY_KIND_COUNT; k++) {
        const char *kind = policy_kind_name((enum policy_kind)k);
        char hex[65];
        if (cand != NULL && cand->kind == (enum policy_kind)k) {
            free(src->texts[k]);
            src->texts[k] = NULL;
            snprintf(src->names[k], 96, "candidate/%s.lua", kind);
            src->over[k] = (struct policy_source){src->names[k], cand->source, cand->len};
            sha256_hex(cand->source, cand->len, hex);
            snprintf(src->labels[k], 48, "candidate:%.12s", hex);
            continue;
        }
        if (src->texts[k] != NULL) {
            continue;
        }
        char path[POLICY_PATH_MAX + 96];
        size_t len = 0;
        snprintf(path, sizeof path, "%s/buildings/bld_%" PRId64 "/%s.lua",
                 pc->dir, building_id, kind);
        src->texts[k] = building_id != 0
                            ? read_file(path, pc->limits.source_bytes_max, &len)
                            : NULL;
        if (src->texts[k] != NULL) {
            snprintf(src->names[k], 96, "policies/buildings/bld_%" PRId64 "/%s.lua",
                     building_id, kind);
            src->over[k] = (struct policy_source){src->names[k], src->texts[k], len};
            sha256_hex(src->texts[k], len, hex);
            snprintf(src->labels[k], 48, "file:%.12s", hex);
        } else {
            src->over[k] = (struct policy_source){0};
            snprintf(src->labels[k], 48, "default:%.12s", pc->default_sha[k]);
        }
    }
    return 0;
}

int
policy_cache_build(struct policy_cache *pc, struct store *store, int64_t building_id,
                   const struct policy_candidate *cand, struct policy_set **set,
                   char versions[POLICY_KIND_COUNT][POLICY_LABEL_MAX], struct eng_error *err)
{
    struct set_sources src;
    if (sources_load(pc, store, building_id, cand, &src, err) != 0) {
        return err->status;
    }
    int rc = policy_set_load(set, pc->defaults, src.over, &pc->limits, err);
    if (rc == 0 && versions != NULL) {
        memcpy(versions, src.labels, sizeof src.labels);
    }
    sources_free(&src);
    return rc;
}

/* Swaps the slot's set; the caller holds pc->mu.  Returns the old set, to
 * be released once the lock is dropped. */
static struct policy_set *
slot_install(struct policy_cache *pc, int64_t building_id, struct policy_set *set,
             char versions[POLICY_KIND_COUNT][POLICY_LABEL_MAX])
{
    struct policy_slot *s = slot_find(pc, building_id, false);
    if (s == NULL) {
        s = slot_find(pc, building_id, true);
    }
    struct policy_set *old = NULL;
    pc->installs++;
    if (s != NULL) {
        old = s->set;
        s->building_id = building_id + 1;
        s->set = set;
        memcpy(s->versions, versions, sizeof s->versions);
        s->epoch = pc->installs;
        policy_set_retain(set);
    }
    return old;
}

void
policy_cache_install(struct policy_cache *pc, int64_t building_id, struct policy_set *set,
                     char versions[POLICY_KIND_COUNT][POLICY_LABEL_MAX])
{
    pthread_mutex_lock(&pc->mu);
    struct policy_set *old = slot_install(pc, building_id, set, versions);
    pthread_mutex_unlock(&pc->mu);
    /* Requests that hold the old set finish on it; the last one frees it. */
    if (old != NULL) {
        policy_set_retire(old);
        policy_set_release(old);
    }
}

uint64_t
policy_cache_epoch(struct policy_cache *pc)
{
    pthread_mutex_lock(&pc->mu);
    uint64_t epoch = pc->installs;
    pthread_mutex_unlock(&pc->mu);
    return epoch;
}

bool
policy_cache_install_since(struct policy_cache *pc, int64_t building_id, struct policy_set *set,
                           char versions[POLICY_KIND_COUNT][POLICY_LABEL_MAX], uint64_t epoch)
{
    pthread_mutex_lock(&pc->mu);
    /* Only this building's own history counts: the installs a reload makes
     * for the buildings before this one move the global count too, and must
     * not stop it from installing the rest. */
    const struct policy_slot *s = slot_find(pc, building_id, false);
    bool fresh = s != NULL ? s->epoch <= epoch : pc->dropped_epoch <= epoch;
    struct policy_set *old = fresh ? slot_install(pc, building_id, set, versions) : NULL;
    pthread_mutex_unlock(&pc->mu);
    if (old != NULL) {
        policy_set_retire(old);
        policy_set_release(old);
    }
    return fresh;
}

int
policy_cache_get(struct policy_cache *pc, struct store *store, int64_t building_id,
                 struct policy_set **set, char versions[POLICY_KIND_COUNT][POLICY_LABEL_MAX],
                 struct eng_error *err)
{
    pthread_mutex_lock(&pc->mu);
    struct policy_slot *s = slot_find(pc, building_id, false);
    if (s != NULL) {
        policy_set_retain(s->set);
        *set = s->set;
        if (versions != NULL) {
            memcpy(versions, s->versions, sizeof s->versions);
        }
        pthread_mutex_unlock(&pc->mu);
        return 0;
    }
    int64_t synced_gen = pc->synced_gen;
    /* Taken before the sources are read: a reload that began later may
     * replace what is built here, one that began earlier may not. */
    uint64_t epoch = pc->installs;
    pthread_mutex_unlock(&pc->mu);
    /* After a sync, the snapshot's policy generation decides whether what
     * is built here may be cached (see policy_cache_sync).  Read before the
     * sources, so that outside a transaction it can only be older. */
    int64_t snap_gen = 0;
    if (synced_gen != 0 && store != NULL &&
        store_cluster_policy_gen(store, &snap_gen, err) != 0) {
        return err->status;
    }
    char labels[POLICY_KIND_COUNT][POLICY_LABEL_MAX];
    struct policy_set *fresh = NULL;
    unsigned long oom_before = eng_alloc_failures();
    int built = policy_cache_build(pc, store, building_id, NULL, &fresh, labels, err);
    if (eng_alloc_failures() != oom_before) {
        /* Built short of memory: never cache what may be incomplete. */
        if (built == 0) {
            policy_set_release(fresh);
        }
        return eng_error_code(err, ENG_ENOMEM, "overloaded", "out of memory; try again");
    }
    if (built != 0) {
        if (err->status == ENG_ESTORE || err->status == ENG_ENOMEM) {
            return err->status;
        }
        /* A broken override must not take the building down silently. */
        return eng_error_recode(err, ENG_EPOLICY, "policy_error");
    }
    pthread_mutex_lock(&pc->mu);
    s = slot_find(pc, building_id, false);
    if (s != NULL) {
        /* Another request (or a committed change) filled the slot while this
         * one was building: serve that set, so the set and its labels agree
         * and a set built from an older snapshot never wins. */
        policy_set_retain(s->set);
        if (versions != NULL) {
            memcpy(versions, s->versions, sizeof s->versions);
        }
        *set = s->set;
        pthread_mutex_unlock(&pc->mu);
        policy_set_release(fresh);
        return 0;
    }
    /* Built on a snapshot older than a change another node made (and this
     * one has seen): good for this request, stale for the next. */
    s = snap_gen >= pc->synced_gen ? slot_find(pc, building_id, true) : NULL;
    if (s != NULL) {
        s->building_id = building_id + 1;
        s->set = fresh;
        memcpy(s->versions, labels, sizeof labels);
        s->epoch = epoch;
        policy_set_retain(fresh);
    }
    if (versions != NULL) {
        memcpy(versions, labels, sizeof labels);
    }
    pthread_mutex_unlock(&pc->mu);
    *set = fresh;
    return 0;
}

void
policy_cache_invalidate(struct policy_cache *pc, int64_t building_id)
{
    if (pc->slots == NULL) {
        return;
    }
    pthread_mutex_lock(&pc->mu);
    for (int i = 0; i < POLICY_CACHE_SLOTS; i++) {
        struct policy_slot *s = &pc->slots[i];
        if (s->set != NULL && (building_id == 0 || s->building_id == building_id + 1)) {
            policy_set_retire(s->set);
            policy_set_release(s->set);
            /* Keep building_id as a tombstone so probe chains stay intact. */
            s->set = NULL;
            s->building_id = -1;
        }
    }
    pthread_mutex_unlock(&pc->mu);
}

/* ---------- following other nodes ---------- */

/* An active version's label, as source_from_row writes it. */
struct active_label {
    int64_t building_id;
    int kind;
    char label[POLICY_LABEL_MAX];
};

struct active_list {
    struct active_label *rows;
    size_t count, cap;
    struct eng_error *err;
};

static int
active_collect(void *ud, const struct cluster_policy_row *row)
{
    struct active_list *l = ud;
    enum policy_kind k;
    if (policy_kind_parse(row->kind, &k, NULL) != 0) {
        return 0; /* a kind this build does not serve: nothing cached for it */
    }
    if (l->count == l->cap) {
        size_t cap = l->cap != 0 ? l->cap * 2 : 64;
        struct active_label *grown = realloc(l->rows, cap * sizeof *grown);
        if (grown == NULL) {
            return eng_error_set(l->err, ENG_ENOMEM, "out of memory");
        }
        l->rows = grown;
        l->cap = cap;
    }
    struct active_label *a = &l->rows[l->count++];
    a->building_id = row->building_id;
    a->kind = (int)k;
    snprintf(a->label, sizeof a->label, "v%" PRId64 ":%.12s", row->version, row->sha256);
    return 0;
}

/* Whether a cached slot's labels agree with the active versions (rows
 * sorted by building). */
static bool
slot_current(const struct policy_slot *slot, const struct active_list *l)
{
    int64_t b = slot->building_id - 1;
    size_t lo = 0, hi = l->count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (l->rows[mid].building_id < b) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    bool uploaded[POLICY_KIND_COUNT] = {false};
    for (size_t i = lo; i < l->count && l->rows[i].building_id == b; i++) {
        const struct active_label *a = &l->rows[i];
        if (strcmp(slot->versions[a->kind], a->label) != 0) {
            return false; /* another version is active */
        }
        uploaded[a->kind] = true;
    }
    for (int k = 0; k < POLICY_KIND_COUNT; k++) {
        if (!uploaded[k] && slot->versions[k][0] == 'v') {
            return false; /* the uploaded version was deactivated */
        }
    }
    return true;
}

int
policy_cache_sync(struct policy_cache *pc, struct store *store, int64_t gen, int *dropped,
                  struct eng_error *err)
{
    struct active_list l = {.err = err};
    int n = 0;
    int rc = store_cluster_policies_each(store, active_collect, &l, err);
    if (rc != 0) {
        free(l.rows);
        return rc;
    }
    pthread_mutex_lock(&pc->mu);
    for (int i = 0; i < POLICY_CACHE_SLOTS; i++) {
        struct policy_slot *s = &pc->slots[i];
        if (s->set != NULL && !slot_current(s, &l)) {
            policy_set_retire(s->set);
            policy_set_release(s->set);
            s->set = NULL;
            s->building_id = -1; /* a tombstone, as policy_cache_invalidate leaves */
            n++;
        }
    }
    if (gen > pc->synced_gen || n > 0) {
        /* Another process changed policies: a reload whose snapshot began
         * before may be older than a change made to a building that has no
         * set cached (never used, or dropped above), so it installs none
         * for such a building (policy_cache_install_since).  Skipping one
         * is always safe: its next use builds it from current sources. */
        pc->installs++;
        pc->dropped_epoch = pc->installs;
    }
    if (gen > pc->synced_gen) {
        pc->synced_gen = gen;
    }
    pthread_mutex_unlock(&pc->mu);
    free(l.rows);
    if (dropped != NULL) {
        *dropped = n;
    }
    return 0;
}

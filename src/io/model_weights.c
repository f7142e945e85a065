/* model_weights.c — a whole model's weights from one safetensors file:
 * find the layers under a per-layer prefix ("layers.{i}."), find each
 * layer's LayerNorms, attention and MLP under the names PyTorch and the
 * common GPT-style checkpoints use, check every shape against every other,
 * then read them into helix's f32 [in, out] layout (W = W_pt^T).
 *
 * Names looked for inside one layer, first match wins:
 *   LN before attention   norm1 | ln_1 | ln1 | input_layernorm   (.weight, .bias)
 *   attention             self_attn. | attn. | attention.  (see helix_st_attn_find)
 *   LN before the MLP     norm2 | ln_2 | ln2 | post_attention_layernorm
 *   FC1 [F, D]            linear1 | mlp.fc1 | fc1                (.weight, .bias)
 *   FC2 [D, F]            linear2 | mlp.fc2 | fc2
 * The first column is PyTorch's nn.TransformerEncoderLayer. */
#include "helix_io.h"
#include "../core/err-impl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const ln1_names[] = {"norm1", "ln_1", "ln1", "input_layernorm", NULL};
static const char *const attn_names[] = {"self_attn.", "attn.", "attention.", NULL};
static const char *const ln2_names[] = {"norm2", "ln_2", "ln2", "post_attention_layernorm", NULL};
static const char *const fc1_names[] = {"linear1", "mlp.fc1", "fc1", NULL};
static const char *const fc2_names[] = {"linear2", "mlp.fc2", "fc2", NULL};
static const char *const patterns[] = {"layers.{i}.",       "encoder.layers.{i}.", "model.layers.{i}.",
                                       "transformer.layers.{i}.", "transformer.h.{i}.", "h.{i}.",
                                       "blocks.{i}.",       "{i}.",                NULL};

/* prefix of layer i: pattern with "{i}" replaced */
static void layer_prefix(const char *pat, int64_t i, char *out, size_t n)
{
    const char *at = strstr(pat, "{i}");
    snprintf(out, n, "%.*s%lld%s", (int)(at - pat), pat, (long long)i, at + 3);
}

static const helix_st_tensor *get2(const helix_st_file *f, const char *prefix, const char *name, const char *suffix)
{
    char full[700];
    snprintf(full, sizeof full, "%s%s%s", prefix, name, suffix);
    return helix_st_find(f, full);
}

/* the first of names[] under prefix that has a .weight; its index or -1 */
static int find_named(const helix_st_file *f, const char *prefix, const char *const *names)
{
    for (int k = 0; names[k]; k++)
        if (get2(f, prefix, names[k], ".weight")) return k;
    return -1;
}

static void names_list(const char *prefix, const char *const *names, const char *suffix, char *out, size_t n)
{
    size_t used = 0;
    out[0] = 0;
    for (int k = 0; names[k] && used < n; k++)
        used += (size_t)snprintf(out + used, n - used, "%s'%s%s%s'", k ? ", " : "", prefix, names[k], suffix);
}

static helix_status shape_err(const helix_st_file *f, const helix_st_tensor *t, int64_t r, int64_t c, const char *what,
                              helix_err *err)
{
    char got[128] = "", *p = got;
    for (int d = 0; d < t->ndim; d++) p += snprintf(p, (size_t)(got + sizeof got - p), "%s%lld", d ? ", " : "", (long long)t->shape[d]);
    if (c)
        return helix_errf(err, HELIX_ERR_FORMAT, "%s: tensor '%s' has shape [%s], expected [%lld, %lld] (%s)", f->path,
                          t->name, got, (long long)r, (long long)c, what);
    return helix_errf(err, HELIX_ERR_FORMAT, "%s: tensor '%s' has shape [%s], expected [%lld] (%s)", f->path, t->name, got,
                      (long long)r, what);
}

static int is_shape(const helix_st_tensor *t, int64_t r, int64_t c)
{
    return c ? t->ndim == 2 && t->shape[0] == r && t->shape[1] == c : t->ndim == 1 && t->shape[0] == r;
}

/* Does any tensor name belong to layer index i under pat? (for gaps) */
static int64_t max_layer_index(const helix_st_file *f, const char *pat)
{
    const char *at = strstr(pat, "{i}");
    const size_t pre = (size_t)(at - pat), post = strlen(at + 3);
    int64_t best = -1;
    for (int64_t k = 0; k < f->n_tensors; k++) {
        const char *name = f->tensors[k].name;
        if (strncmp(name, pat, pre)) continue;
        const char *q = name + pre;
        int64_t v = 0;
        int digits = 0;
        while (*q >= '0' && *q <= '9' && digits < 9) v = v * 10 + (*q++ - '0'), digits++;
        if (!digits || strncmp(q, at + 3, post)) continue;
        if (v > best) best = v;
    }
    return best;
}

/* the first of names[] with a .weight under prefix, and its .bias (or NULL) */
static helix_status find_part(const helix_st_file *f, const char *prefix, const char *const *names, const char *what,
                              const helix_st_tensor **w, const helix_st_tensor **b, helix_err *err)
{
    const int k = find_named(f, prefix, names);
    if (k < 0) {
        char list[512];
        names_list(prefix, names, ".weight", list, sizeof list);
        return helix_errf(err, HELIX_ERR_FORMAT, "%s: layer '%s' has no %s: expected one of %s", f->path, prefix, what,
                          list);
    }
    *w = get2(f, prefix, names[k], ".weight");
    *b = get2(f, prefix, names[k], ".bias");
    return HELIX_OK;
}

/* One layer's tensors, checked; D and F from layer 0 (D < 1: learn them). */
static helix_status find_layer(const helix_st_file *f, const char *prefix, helix_st_layer *L, int64_t *D, int64_t *F,
                               helix_err *err)
{
    char list[512], sub[600];
    memset(L, 0, sizeof *L);
    helix_status st;
    if ((st = find_part(f, prefix, ln1_names, "LayerNorm before the attention", &L->ln1_g, &L->ln1_b, err)) ||
        (st = find_part(f, prefix, ln2_names, "LayerNorm before the MLP", &L->ln2_g, &L->ln2_b, err)) ||
        (st = find_part(f, prefix, fc1_names, "MLP FC1", &L->w1, &L->b1, err)) ||
        (st = find_part(f, prefix, fc2_names, "MLP FC2", &L->w2, &L->b2, err)))
        return st;
    /* attention: the first sub-prefix that holds one */
    int found = 0;
    for (int a = 0; attn_names[a] && !found; a++) {
        snprintf(sub, sizeof sub, "%s%s", prefix, attn_names[a]);
        if (get2(f, sub, "in_proj_weight", "") || get2(f, sub, "q_proj.weight", "")) {
            if ((st = helix_st_attn_find(f, sub, &L->attn, err))) return st;
            found = 1;
        }
    }
    if (!found) {
        names_list(prefix, attn_names, "in_proj_weight", list, sizeof list);
        return helix_errf(err, HELIX_ERR_FORMAT, "%s: layer '%s' has no attention: expected one of %s (or q_proj.weight, "
                          "k_proj.weight, v_proj.weight there)", f->path, prefix, list);
    }
    if (!L->attn.o.t)
        return helix_errf(err, HELIX_ERR_FORMAT, "%s: layer '%s' has attention without an output projection "
                          "(out_proj.weight or o_proj.weight)", f->path, prefix);
    /* shapes: D from the attention, F from FC1 */
    if (*D < 1) {
        *D = L->attn.D;
        if (L->w1->ndim == 2) *F = L->w1->shape[0];
    }
    if (L->attn.D != *D)
        return shape_err(f, L->attn.q.t, L->attn.q.t == L->attn.k.t ? 3 * *D : *D, *D, "D differs from layer 0", err);
    if (*F < 1 || !is_shape(L->w1, *F, *D)) return shape_err(f, L->w1, *F < 1 ? 1 : *F, *D, "FC1 is [F, D]", err);
    if (!is_shape(L->w2, *D, *F)) return shape_err(f, L->w2, *D, *F, "FC2 is [D, F]", err);
    const helix_st_tensor *vec[6] = {L->ln1_g, L->ln1_b, L->ln2_g, L->ln2_b, L->b1, L->b2};
    const int64_t len[6] = {*D, *D, *D, *D, *F, *D};
    for (int v = 0; v < 6; v++)
        if (vec[v] && !is_shape(vec[v], len[v], 0)) return shape_err(f, vec[v], len[v], 0, "a vector", err);
    return HELIX_OK;
}

static int has_any_bias(const helix_st_layer *L)
{
    return L->attn.bq.t || L->attn.bo.t || L->b1 || L->b2;
}

helix_status helix_st_model_find(const helix_st_file *f, const char *pattern, helix_st_model *m, helix_err *err)
{
    memset(m, 0, sizeof *m);
    m->file = f;
    if (pattern && pattern[0]) {
        const char *at = strstr(pattern, "{i}");
        if (!at || strstr(at + 3, "{i}"))
            return helix_errf(err, HELIX_ERR_INVALID, "layer prefix '%s' must contain '{i}' once (e.g. 'layers.{i}.')", pattern);
        if (strlen(pattern) >= sizeof m->pattern)
            return helix_errf(err, HELIX_ERR_INVALID, "layer prefix '%.40s...' is too long", pattern);
        snprintf(m->pattern, sizeof m->pattern, "%s", pattern);
    } else {
        char p0[160];
        for (int k = 0; patterns[k] && !m->pattern[0]; k++) {
            layer_prefix(patterns[k], 0, p0, sizeof p0);
            if (find_named(f, p0, ln1_names) >= 0) snprintf(m->pattern, sizeof m->pattern, "%s", patterns[k]);
        }
        if (!m->pattern[0]) {
            char list[600];
            size_t used = 0;
            for (int k = 0; patterns[k]; k++) used += (size_t)snprintf(list + used, sizeof list - used, "%s'%s'", k ? ", " : "", patterns[k]);
            return helix_errf(err, HELIX_ERR_FORMAT,
                              "%s: no transformer layers found: looked for layer 0's first LayerNorm (norm1, ln_1, ln1, "
                              "input_layernorm) under %s; give the prefix with --layer-prefix ('helix inspect' lists the "
                              "tensors)", f->path, list);
        }
    }
    const int64_t top = max_layer_index(f, m->pattern);
    if (top < 0)
        return helix_errf(err, HELIX_ERR_FORMAT, "%s: no tensor name matches the layer prefix '%s'", f->path, m->pattern);
    if (top >= HELIX_ST_MAX_LAYERS)
        return helix_errf(err, HELIX_ERR_FORMAT, "%s: layer index %lld under '%s': at most %d layers", f->path,
                          (long long)top, m->pattern, HELIX_ST_MAX_LAYERS);
    m->layers = top + 1;
    m->layer = calloc((size_t)m->layers, sizeof *m->layer);
    if (!m->layer) return helix_errf(err, HELIX_ERR_NOMEM, "out of memory");
    m->D = m->F = 0;
    int any = 0;
    for (int64_t i = 0; i < m->layers; i++) {
        char prefix[160];
        layer_prefix(m->pattern, i, prefix, sizeof prefix);
        helix_status st = find_layer(f, prefix, &m->layer[i], &m->D, &m->F, err);
        if (st) {
            if (i > 0 && find_named(f, prefix, ln1_names) < 0 && find_named(f, prefix, fc1_names) < 0)
                helix_errf(err, HELIX_ERR_FORMAT, "%s: layer %lld is missing (layers 0 to %lld have tensors under '%s')",
                           f->path, (long long)i, (long long)top, m->pattern);
            helix_st_model_close(m);
            return st;
        }
        any |= has_any_bias(&m->layer[i]);
    }
    m->bias = any;
    return HELIX_OK;
}

void helix_st_model_close(helix_st_model *m)
{
    if (!m) return;
    free(m->layer);
    m->layer = NULL;
}

/* dst [cols_in, rows_out] = rows [row0, row0+rows) of t ([*, cols_in]) transposed */
/* "has a non-finite value (nan)" or "value 70000 overflows f16" */
static helix_status nonfinite(const helix_st_file *f, const helix_st_tensor *t, float v, helix_dtype as, const char *at,
                              helix_err *err)
{
    if (v - v == 0)
        return helix_errf(err, HELIX_ERR_FORMAT, "%s: tensor '%s' value %g at %s overflows %s (the run's storage type) to Inf",
                          f->path, t->name, v, at, helix_dtype_name(as));
    return helix_errf(err, HELIX_ERR_FORMAT, "%s: tensor '%s' has a non-finite value (%g) at %s", f->path, t->name, v, at);
}

static helix_status read_t(const helix_st_file *f, const helix_st_tensor *t, int64_t row0, int64_t rows, int64_t cols,
                           float *dst, float *row, int check, helix_dtype as, helix_err *err)
{
    for (int64_t o = 0; o < rows; o++) {
        helix_status st = helix_st_read_f32(f, NULL, t, (row0 + o) * cols, cols, row, err);
        if (st) return st;
        const int64_t bad = check ? helix_first_nonfinite_as(as, row, cols) : -1;
        if (bad >= 0) {
            char at[64];
            snprintf(at, sizeof at, "[%lld, %lld]", (long long)(row0 + o), (long long)bad);
            return nonfinite(f, t, row[bad], as, at, err);
        }
        if (dst)
            for (int64_t r = 0; r < cols; r++) dst[r * rows + o] = row[r];
    }
    return HELIX_OK;
}

/* dst [n] = elements [first, first+n) of t, or fill when t is NULL */
static helix_status read_v(const helix_st_file *f, const helix_st_tensor *t, int64_t first, int64_t n, float *dst,
                           float fill, int check, helix_dtype as, helix_err *err)
{
    if (!t) {
        for (int64_t k = 0; k < n; k++) dst[k] = fill;
        return HELIX_OK;
    }
    helix_status st = helix_st_read_f32(f, NULL, t, first, n, dst, err);
    if (st) return st;
    const int64_t bad = check ? helix_first_nonfinite_as(as, dst, n) : -1;
    if (bad >= 0) {
        char at[32];
        snprintf(at, sizeof at, "[%lld]", (long long)(first + bad));
        return nonfinite(f, t, dst[bad], as, at, err);
    }
    return HELIX_OK;
}

helix_status helix_st_model_load(const helix_st_model *m, int64_t layers, int allow_nonfinite, helix_dtype as,
                                 helix_model_weights *out, helix_err *err)
{
    memset(out, 0, sizeof *out);
    if (layers < 1 || layers > m->layers)
        return helix_errf(err, HELIX_ERR_INVALID, "%s has %lld layers; %lld asked for", m->file->path, (long long)m->layers,
                          (long long)layers);
    const int64_t D = m->D, F = m->F;
    helix_status st = helix_model_weights_alloc(D, F, layers, m->bias, out, err);
    if (st) return st;
    float *row = malloc(sizeof(float) * (size_t)(D > F ? D : F));
    if (!row) {
        helix_model_weights_free(out);
        return helix_errf(err, HELIX_ERR_NOMEM, "out of memory");
    }
    const helix_st_file *f = m->file;
    const int ck = !allow_nonfinite;
    for (int64_t l = 0; !st && l < layers; l++) {
        const helix_st_layer *L = &m->layer[l];
        const helix_st_attn *a = &L->attn;
        helix_layer_weights *w = (helix_layer_weights *)&out->layer[l];
        st = read_v(f, L->ln1_g, 0, D, (float *)w->ln1_g, 1, ck, as, err);
        if (!st) st = read_v(f, L->ln1_b, 0, D, (float *)w->ln1_b, 0, ck, as, err);
        if (!st) st = read_v(f, L->ln2_g, 0, D, (float *)w->ln2_g, 1, ck, as, err);
        if (!st) st = read_v(f, L->ln2_b, 0, D, (float *)w->ln2_b, 0, ck, as, err);
        if (!st) st = read_t(f, a->q.t, a->q.row0, D, D, (float *)w->wq, row, ck, as, err);
        if (!st) st = read_t(f, a->k.t, a->k.row0, D, D, (float *)w->wk, row, ck, as, err);
        if (!st) st = read_t(f, a->v.t, a->v.row0, D, D, (float *)w->wv, row, ck, as, err);
        if (!st) st = read_t(f, a->o.t, 0, D, D, (float *)w->wo, row, ck, as, err);
        if (!st) st = read_t(f, L->w1, 0, F, D, (float *)w->w1, row, ck, as, err);
        if (!st) st = read_t(f, L->w2, 0, D, F, (float *)w->w2, row, ck, as, err);
        if (!st && m->bias) {
            st = read_v(f, a->bq.t, a->bq.row0, D, (float *)w->bq, 0, ck, as, err);
            if (!st) st = read_v(f, a->bk.t, a->bk.row0, D, (float *)w->bk, 0, ck, as, err);
            if (!st) st = read_v(f, a->bv.t, a->bv.row0, D, (float *)w->bv, 0, ck, as, err);
            if (!st) st = read_v(f, a->bo.t, 0, D, (float *)w->bo, 0, ck, as, err);
            if (!st) st = read_v(f, L->b1, 0, F, (float *)w->b1, 0, ck, as, err);
            if (!st) st = read_v(f, L->b2, 0, D, (float *)w->b2, 0, ck, as, err);
        }
    }
    free(row);
    if (st) helix_model_weights_free(out);
    return st;
}

helix_status helix_st_model_check(const helix_st_model *m, int64_t layers, helix_dtype as, helix_err *err)
{
    if (layers < 1 || layers > m->layers)
        return helix_errf(err, HELIX_ERR_INVALID, "%s has %lld layers; %lld asked for", m->file->path, (long long)m->layers,
                          (long long)layers);
    const int64_t D = m->D, F = m->F, n = D > F ? D : F;
    float *row = malloc(sizeof(float) * (size_t)n), *vec = malloc(sizeof(float) * (size_t)n);
    helix_status st = row && vec ? HELIX_OK : helix_errf(err, HELIX_ERR_NOMEM, "out of memory");
    const helix_st_file *f = m->file;
    /* the order helix_st_model_load reads in, so the first bad value named is the same */
    for (int64_t l = 0; !st && l < layers; l++) {
        const helix_st_layer *L = &m->layer[l];
        const helix_st_attn *a = &L->attn;
        st = read_v(f, L->ln1_g, 0, D, vec, 1, 1, as, err);
        if (!st) st = read_v(f, L->ln1_b, 0, D, vec, 0, 1, as, err);
        if (!st) st = read_v(f, L->ln2_g, 0, D, vec, 1, 1, as, err);
        if (!st) st = read_v(f, L->ln2_b, 0, D, vec, 0, 1, as, err);
        if (!st) st = read_t(f, a->q.t, a->q.row0, D, D, NULL, row, 1, as, err);
        if (!st) st = read_t(f, a->k.t, a->k.row0, D, D, NULL, row, 1, as, err);
        if (!st) st = read_t(f, a->v.t, a->v.row0, D, D, NULL, row, 1, as, err);
        if (!st) st = read_t(f, a->o.t, 0, D, D, NULL, row, 1, as, err);
        if (!st) st = read_t(f, L->w1, 0, F, D, NULL, row, 1, as, err);
        if (!st) st = read_t(f, L->w2, 0, D, F, NULL, row, 1, as, err);
        if (!st && m->bias) {
            st = read_v(f, a->bq.t, a->bq.row0, D, vec, 0, 1, as, err);
            if (!st) st = read_v(f, a->bk.t, a->bk.row0, D, vec, 0, 1, as, err);
            if (!st) st = read_v(f, a->bv.t, a->bv.row0, D, vec, 0, 1, as, err);
            if (!st) st = read_v(f, a->bo.t, 0, D, vec, 0, 1, as, err);
            if (!st) st = read_v(f, L->b1, 0, F, vec, 0, 1, as, err);
            if (!st) st = read_v(f, L->b2, 0, D, vec, 0, 1, as, err);
        }
    }
    free(row);
    free(vec);
    return st;
}

/* n values of t from element first (fill when t is NULL) into dst at element at, as type ty */
static helix_status put_v(const helix_st_file *f, const helix_st_tensor *t, int64_t first, int64_t n, float fill,
                          float *row, helix_dtype ty, void *dst, int64_t at, helix_err *err)
{
    helix_status st = read_v(f, t, first, n, row, fill, 0, ty, err);
    if (!st) helix_from_f32(ty, row, (char *)dst + (size_t)at * helix_dtype_size(ty), n);
    return st;
}

helix_status helix_st_model_shard_load(void *ctx, const helix_model_plan *p, int64_t r, int64_t l, helix_dtype ty,
                                       const helix_layer_shard *s, helix_err *err)
{
    const helix_st_model *m = (const helix_st_model *)ctx;
    const int64_t D = m->D, F = m->F, fc = p->fcols;
    if (D != p->D || F != p->F || l < 0 || l >= m->layers)
        return helix_errf(err, HELIX_ERR_INVALID, "%s (D=%lld F=%lld, %lld layers) does not match the plan", m->file->path,
                          (long long)D, (long long)F, (long long)m->layers);
    const helix_st_layer *L = &m->layer[l];
    const helix_st_file *f = m->file;
    /* the attention shards exactly as helix run --weights reads them */
    helix_status st = helix_st_attn_load((void *)&L->attn, &p->attn, r, ty, s->wq, s->wk, s->wv, s->bq, s->bk, s->bv,
                                         s->wo, s->bo, err);
    if (st) return st;
    float *row = malloc(sizeof(float) * (size_t)(D > F ? D : F));
    if (!row) return helix_errf(err, HELIX_ERR_NOMEM, "out of memory");
    const size_t es = helix_dtype_size(ty);
    st = put_v(f, L->ln1_g, 0, D, 1, row, ty, s->ln1_g, 0, err);
    if (!st) st = put_v(f, L->ln1_b, 0, D, 0, row, ty, s->ln1_b, 0, err);
    if (!st) st = put_v(f, L->ln2_g, 0, D, 1, row, ty, s->ln2_g, 0, err);
    if (!st) st = put_v(f, L->ln2_b, 0, D, 0, row, ty, s->ln2_b, 0, err);
    /* FC1 columns r*fc.. of helix's [D, F] = rows of PyTorch's [F, D] */
    for (int64_t c = 0; !st && c < fc; c++) {
        st = helix_st_read_f32(f, NULL, L->w1, (r * fc + c) * D, D, row, err);
        for (int64_t k = 0; !st && k < D; k++) helix_from_f32(ty, row + k, (char *)s->w1 + (size_t)(k * fc + c) * es, 1);
    }
    /* FC2 rows r*fc.. of helix's [F, D] = columns of PyTorch's [D, F]: a piece of each row */
    for (int64_t o = 0; !st && o < D; o++) {
        st = helix_st_read_f32(f, NULL, L->w2, o * F + r * fc, fc, row, err);
        for (int64_t c = 0; !st && c < fc; c++) helix_from_f32(ty, row + c, (char *)s->w2 + (size_t)(c * D + o) * es, 1);
    }
    if (!st && s->b1) st = put_v(f, L->b1, r * fc, fc, 0, row, ty, s->b1, 0, err);
    if (!st && s->b2) st = put_v(f, L->b2, 0, D, 0, row, ty, s->b2, 0, err);
    free(row);
    return st;
}

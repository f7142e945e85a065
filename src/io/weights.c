/* weights.c — attention weights from a safetensors file: find them under
 * either PyTorch naming, check their shapes, and load each device's shards
 * straight from the file.
 *
 * PyTorch stores a linear layer as W_pt [out, in] with y = x W_pt^T + b, so
 * helix's W = W_pt^T: the columns helix gives device (i, j) are rows of
 * W_pt (contiguous reads), and its rows of W_O are columns of W_O_pt. */
#include "helix_io.h"
#include "../core/err-impl.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const helix_st_tensor *get(const helix_st_file *f, const char *prefix, const char *name)
{
    char full[600];
    snprintf(full, sizeof full, "%s%s", prefix, name);
    return helix_st_find(f, full);
}

static helix_status want_shape(const helix_st_file *f, const helix_st_tensor *t, int64_t rows, int64_t cols,
                               helix_err *err)
{
    int ok = cols ? (t->ndim == 2 && t->shape[0] == rows && t->shape[1] == cols) : (t->ndim == 1 && t->shape[0] == rows);
    if (ok) return HELIX_OK;
    char got[128] = "", *p = got;
    for (int d = 0; d < t->ndim; d++) p += snprintf(p, (size_t)(got + sizeof got - p), "%s%lld", d ? ", " : "", (long long)t->shape[d]);
    if (cols)
        return helix_errf(err, HELIX_ERR_FORMAT, "%s: tensor '%s' has shape [%s], expected [%lld, %lld]", f->path, t->name, got,
                    (long long)rows, (long long)cols);
    return helix_errf(err, HELIX_ERR_FORMAT, "%s: tensor '%s' has shape [%s], expected [%lld]", f->path, t->name, got,
                (long long)rows);
}

static void shape_text(const helix_st_tensor *t, char *got, size_t n)
{
    size_t k = 0;
    got[0] = 0;
    for (int d = 0; d < t->ndim && k < n; d++) k += (size_t)snprintf(got + k, n - k, "%s%lld", d ? ", " : "", (long long)t->shape[d]);
}

/* a weight matrix of the wrong rank or sizes, with what was expected in words */
static helix_status matrix_err(const helix_st_file *f, const helix_st_tensor *t, const char *want, helix_err *err)
{
    char got[128];
    shape_text(t, got, sizeof got);
    return helix_errf(err, HELIX_ERR_FORMAT, "%s: tensor '%s' has shape [%s] (%d-D), expected a 2-D matrix %s", f->path,
                      t->name, got, t->ndim, want);
}

/* " (the file has 'P in_proj_weight': try --weights-prefix P)" for the first
 * attention weight under any prefix, or nothing */
static void suggest_prefix(const helix_st_file *f, char *out, size_t n)
{
    static const char *const ends[] = {"in_proj_weight", "q_proj.weight"};
    for (int64_t k = 0; k < f->n_tensors; k++) {
        const char *name = f->tensors[k].name;
        const size_t len = strlen(name);
        for (int e = 0; e < 2; e++) {
            const size_t el = strlen(ends[e]);
            if (len >= el && !strcmp(name + len - el, ends[e])) {
                snprintf(out, n, "; the file has '%s': try --weights-prefix '%.*s'", name, (int)(len - el), name);
                return;
            }
        }
    }
}

helix_status helix_st_attn_find(const helix_st_file *f, const char *prefix, helix_st_attn *a, helix_err *err)
{
    memset(a, 0, sizeof *a);
    a->file = f;
    helix_status st;
    const helix_st_tensor *in = get(f, prefix, "in_proj_weight");
    if (in) {
        a->layout = "nn.MultiheadAttention";
        if (in->ndim != 2 || in->shape[1] < 1 || in->shape[0] != 3 * in->shape[1])
            return matrix_err(f, in, "[3*D, D] with D >= 1 (W_Q, W_K, W_V stacked)", err);
        const int64_t D = a->D = in->shape[1];
        a->q = (helix_st_view){in, 0};
        a->k = (helix_st_view){in, D};
        a->v = (helix_st_view){in, 2 * D};
        const helix_st_tensor *b = get(f, prefix, "in_proj_bias");
        if (b) {
            if ((st = want_shape(f, b, 3 * D, 0, err))) return st;
            a->bq = (helix_st_view){b, 0};
            a->bk = (helix_st_view){b, D};
            a->bv = (helix_st_view){b, 2 * D};
        }
        a->o.t = get(f, prefix, "out_proj.weight");
        a->bo.t = get(f, prefix, "out_proj.bias");
    } else {
        const helix_st_tensor *q = get(f, prefix, "q_proj.weight"), *k = get(f, prefix, "k_proj.weight"),
                              *v = get(f, prefix, "v_proj.weight");
        if (!q || !k || !v) {
            char hint[400] = "";
            suggest_prefix(f, hint, sizeof hint);
            return helix_errf(err, HELIX_ERR_FORMAT,
                        "%s: no attention weights under prefix '%s': expected '%sin_proj_weight' "
                        "(nn.MultiheadAttention) or '%sq_proj.weight', '%sk_proj.weight', '%sv_proj.weight'%s",
                        f->path, prefix, prefix, prefix, prefix, prefix,
                        hint[0] ? hint : " (none under any prefix; 'helix inspect' lists the tensors)");
        }
        a->layout = "separate projections";
        if (q->ndim != 2 || q->shape[0] != q->shape[1] || q->shape[0] < 1)
            return matrix_err(f, q, "[D, D] with D >= 1", err);
        const int64_t D = a->D = q->shape[0];
        if ((st = want_shape(f, k, D, D, err)) || (st = want_shape(f, v, D, D, err))) return st;
        a->q = (helix_st_view){q, 0};
        a->k = (helix_st_view){k, 0};
        a->v = (helix_st_view){v, 0};
        const helix_st_tensor *bq = get(f, prefix, "q_proj.bias"), *bk = get(f, prefix, "k_proj.bias"),
                              *bv = get(f, prefix, "v_proj.bias");
        if ((bq || bk || bv) && !(bq && bk && bv))
            return helix_errf(err, HELIX_ERR_FORMAT, "%s: only some of q_proj.bias, k_proj.bias, v_proj.bias are present", f->path);
        if (bq) {
            if ((st = want_shape(f, bq, D, 0, err)) || (st = want_shape(f, bk, D, 0, err)) ||
                (st = want_shape(f, bv, D, 0, err)))
                return st;
            a->bq.t = bq; a->bk.t = bk; a->bv.t = bv;
        }
        a->o.t = get(f, prefix, "o_proj.weight");
        a->bo.t = get(f, prefix, "o_proj.bias");
        if (!a->o.t) { a->o.t = get(f, prefix, "out_proj.weight"); a->bo.t = get(f, prefix, "out_proj.bias"); }
    }
    if (a->o.t && (st = want_shape(f, a->o.t, a->D, a->D, err))) return st;
    if (a->bo.t && (st = want_shape(f, a->bo.t, a->D, 0, err))) return st;
    if (a->bo.t && !a->o.t) a->bo.t = NULL;
    return HELIX_OK;
}

#define col0 helix_shard_col0   /* src/plan/shard.c */

/* dst [D, cols] = the device's rows of W_pt, transposed */
static helix_status load_cols(const helix_st_attn *a, const helix_st_view *v, const helix_plan *p, int64_t rank,
                              helix_dtype t, void *dst, float *row, helix_err *err)
{
    const int64_t D = a->D, cols = p->cols;
    const size_t es = helix_dtype_size(t);
    for (int64_t k = 0; k < p->hg; k++)
        for (int64_t s = 0; s < p->ds; s++) {
            const int64_t out = col0(p, rank, k) + s, c = k * p->ds + s;
            helix_status st = helix_st_read_f32(a->file, NULL, v->t, (v->row0 + out) * D, D, row, err);
            if (st) return st;
            for (int64_t r = 0; r < D; r++) helix_from_f32(t, row + r, (char *)dst + (size_t)(r * cols + c) * es, 1);
        }
    return HELIX_OK;
}

static helix_status load_bias(const helix_st_attn *a, const helix_st_view *v, const helix_plan *p, int64_t rank,
                              helix_dtype t, void *dst, float *row, helix_err *err)
{
    const size_t es = helix_dtype_size(t);
    for (int64_t k = 0; k < p->hg; k++) {
        if (v->t) {
            helix_status st = helix_st_read_f32(a->file, NULL, v->t, v->row0 + col0(p, rank, k), p->ds, row, err);
            if (st) return st;
        } else {
            memset(row, 0, sizeof(float) * (size_t)p->ds);
        }
        helix_from_f32(t, row, (char *)dst + (size_t)(k * p->ds) * es, p->ds);
    }
    return HELIX_OK;
}

helix_status helix_st_attn_load(void *ctx, const helix_plan *p, int64_t rank, helix_dtype t, void *wq, void *wk,
                                void *wv, void *bq, void *bk, void *bv, void *wo, void *bo, helix_err *err)
{
    const helix_st_attn *a = (const helix_st_attn *)ctx;
    const int64_t D = a->D;
    if (D != p->D) return helix_errf(err, HELIX_ERR_INVALID, "weights have D=%lld, the plan D=%lld", (long long)D, (long long)p->D);
    if (wo && !a->o.t) return helix_errf(err, HELIX_ERR_INVALID, "%s has no output projection", a->file->path);
    float *row = malloc(sizeof(float) * (size_t)D);          /* the only memory besides the shards */
    if (!row) return helix_errf(err, HELIX_ERR_NOMEM, "out of memory");
    const size_t es = helix_dtype_size(t);
    helix_status st = load_cols(a, &a->q, p, rank, t, wq, row, err);
    if (!st) st = load_cols(a, &a->k, p, rank, t, wk, row, err);
    if (!st) st = load_cols(a, &a->v, p, rank, t, wv, row, err);
    if (!st && bq) st = load_bias(a, &a->bq, p, rank, t, bq, row, err);
    if (!st && bk) st = load_bias(a, &a->bk, p, rank, t, bk, row, err);
    if (!st && bv) st = load_bias(a, &a->bv, p, rank, t, bv, row, err);
    /* W_O rows of this device = columns col0(k)+s of W_O_pt: pieces of each row */
    for (int64_t c = 0; !st && wo && c < D; c++)
        for (int64_t k = 0; !st && k < p->hg; k++) {
            st = helix_st_read_f32(a->file, NULL, a->o.t, c * D + col0(p, rank, k), p->ds, row, err);
            for (int64_t s = 0; !st && s < p->ds; s++)
                helix_from_f32(t, row + s, (char *)wo + (size_t)((k * p->ds + s) * D + c) * es, 1);
        }
    if (!st && bo) {
        if (a->bo.t) st = helix_st_read_f32(a->file, NULL, a->bo.t, 0, D, row, err);
        else memset(row, 0, sizeof(float) * (size_t)D);
        if (!st) helix_from_f32(t, row, bo, D);
    }
    free(row);
    return st;
}

static helix_status full_t(const helix_st_attn *a, const helix_st_view *v, float *dst, float *row, helix_err *err)
{
    const int64_t D = a->D;
    for (int64_t o = 0; o < D; o++) {
        helix_status st = helix_st_read_f32(a->file, NULL, v->t, (v->row0 + o) * D, D, row, err);
        if (st) return st;
        for (int64_t r = 0; r < D; r++) dst[r * D + o] = row[r];
    }
    return HELIX_OK;
}

static helix_status full_b(const helix_st_attn *a, const helix_st_view *v, float *dst, helix_err *err)
{
    if (!v->t) { memset(dst, 0, sizeof(float) * (size_t)a->D); return HELIX_OK; }
    return helix_st_read_f32(a->file, NULL, v->t, v->row0, a->D, dst, err);
}

helix_status helix_st_attn_full(const helix_st_attn *a, float *wq, float *wk, float *wv, float *wo, float *bq,
                                float *bk, float *bv, float *bo, helix_err *err)
{
    float *row = malloc(sizeof(float) * (size_t)a->D);
    if (!row) return helix_errf(err, HELIX_ERR_NOMEM, "out of memory");
    helix_status st = full_t(a, &a->q, wq, row, err);
    if (!st) st = full_t(a, &a->k, wk, row, err);
    if (!st) st = full_t(a, &a->v, wv, row, err);
    if (!st && wo) st = a->o.t ? full_t(a, &a->o, wo, row, err) : helix_errf(err, HELIX_ERR_INVALID, "no W_O in the file");
    if (!st) st = full_b(a, &a->bq, bq, err);
    if (!st) st = full_b(a, &a->bk, bk, err);
    if (!st) st = full_b(a, &a->bv, bv, err);
    if (!st) st = full_b(a, &a->bo, bo, err);
    free(row);
    return st;
}

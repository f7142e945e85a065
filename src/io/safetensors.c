/* safetensors.c — a strict safetensors reader.
 *
 * Format: u64 little-endian header length N, N bytes of JSON (an object:
 * tensor name -> {"dtype", "shape", "data_offsets": [begin, end]}, plus an
 * optional "__metadata__" object of strings), then the data region. Offsets
 * are relative to the data region and must tile it exactly. Nothing is
 * trusted: every size is checked before it is used or allocated, and data
 * are copied out with pread (never cast from a mapping). */
#include "helix_io.h"
#include "../core/err-impl.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int64_t helix_first_nonfinite(helix_dtype t, const void *data, int64_t n)
{
    for (int64_t k = 0; k < n; k++)
        if (!isfinite(helix_load(t, data, k))) return k;
    return -1;
}

/* by (begin, end): an empty tensor sharing its begin with another comes first */
static int cmp_offset(const void *a, const void *b)
{
    const helix_st_tensor *x = a, *y = b;
    if (x->offset != y->offset) return x->offset < y->offset ? -1 : 1;
    return x->n_bytes < y->n_bytes ? -1 : x->n_bytes > y->n_bytes ? 1 : 0;
}

/* the name index: pointers into tensors[], sorted by name */
static int cmp_name(const void *a, const void *b)
{
    return strcmp((*(const helix_st_tensor *const *)a)->name, (*(const helix_st_tensor *const *)b)->name);
}

static int dtype_of(const char *s, helix_dtype *t)
{
    if (!strcmp(s, "F32")) *t = HELIX_F32;
    else if (!strcmp(s, "F16")) *t = HELIX_F16;
    else if (!strcmp(s, "BF16")) *t = HELIX_BF16;
    else {
        static const char *known[] = {"F64", "F8_E4M3", "F8_E5M2", "I64", "I32", "I16", "I8", "U64", "U32",
                                      "U16", "U8", "BOOL"};
        for (size_t k = 0; k < sizeof known / sizeof *known; k++)
            if (!strcmp(s, known[k])) return 1;   /* valid safetensors, not for helix */
        return 2;
    }
    return 0;
}

/* Validate the JSON header; data region is data_bytes long from data_start. */
static helix_status parse_json(const char *json, size_t n, uint64_t data_start, uint64_t data_bytes,
                               const char *name, helix_st_file *f, helix_err *err)
{
    json_error_t je;
    json_t *root = json_loadb(json, n, JSON_REJECT_DUPLICATES, &je);
    if (!root)
        return helix_errf(err, HELIX_ERR_FORMAT, "%s: header is not valid JSON (%s at byte %d)", name, je.text,
                    je.position);
    helix_status st = HELIX_OK;
    if (!json_is_object(root)) {
        st = helix_errf(err, HELIX_ERR_FORMAT, "%s: header is not a JSON object", name);
        goto out;
    }
    size_t count = json_object_size(root);
    f->tensors = calloc(count ? count : 1, sizeof *f->tensors);
    if (!f->tensors) { st = helix_errf(err, HELIX_ERR_NOMEM, "%s: out of memory", name); goto out; }
    const char *key;
    json_t *val;
    json_object_foreach(root, key, val) {
        if (!strcmp(key, "__metadata__")) {
            const char *mk;
            json_t *mv;
            if (!json_is_object(val)) { st = helix_errf(err, HELIX_ERR_FORMAT, "%s: __metadata__ is not an object", name); goto out; }
            json_object_foreach(val, mk, mv)
                if (!json_is_string(mv)) {
                    st = helix_errf(err, HELIX_ERR_FORMAT, "%s: __metadata__ value '%s' is not a string", name, mk);
                    goto out;
                }
            f->meta = json_incref(val);
            continue;
        }
        helix_st_tensor *t = &f->tensors[f->n_tensors];
        if (strlen(key) >= sizeof t->name) {
            st = helix_errf(err, HELIX_ERR_FORMAT, "%s: tensor name longer than %zu bytes", name, sizeof t->name - 1);
            goto out;
        }
        strcpy(t->name, key);
        json_t *dt = json_object_get(val, "dtype"), *sh = json_object_get(val, "shape"),
               *off = json_object_get(val, "data_offsets");
        if (!json_is_object(val) || !dt || !sh || !off || json_object_size(val) != 3) {
            st = helix_errf(err, HELIX_ERR_FORMAT, "%s: tensor '%s' must be an object with exactly dtype, shape, data_offsets",
                      name, key);
            goto out;
        }
        if (!json_is_string(dt)) { st = helix_errf(err, HELIX_ERR_FORMAT, "%s: tensor '%s': dtype is not a string", name, key); goto out; }
        int k = dtype_of(json_string_value(dt), &t->dtype);
        if (k == 1) { st = helix_errf(err, HELIX_ERR_FORMAT, "%s: tensor '%s': dtype %s is not supported (F32, F16, BF16)", name, key, json_string_value(dt)); goto out; }
        if (k == 2) { st = helix_errf(err, HELIX_ERR_FORMAT, "%s: tensor '%s': unknown dtype '%s'", name, key, json_string_value(dt)); goto out; }
        if (!json_is_array(sh) || json_array_size(sh) > HELIX_MAX_NDIM) {
            st = helix_errf(err, HELIX_ERR_FORMAT, "%s: tensor '%s': shape must be an array of at most %d integers", name, key,
                      HELIX_MAX_NDIM);
            goto out;
        }
        t->ndim = (int)json_array_size(sh);
        int64_t elems = 1;
        for (int d = 0; d < t->ndim; d++) {
            json_t *e = json_array_get(sh, (size_t)d);
            if (!json_is_integer(e) || json_integer_value(e) < 0) {
                st = helix_errf(err, HELIX_ERR_FORMAT, "%s: tensor '%s': shape[%d] is not a non-negative integer", name, key, d);
                goto out;
            }
            t->shape[d] = json_integer_value(e);
            if (__builtin_mul_overflow(elems, t->shape[d], &elems) || elems > ((int64_t)1 << 56)) {
                st = helix_errf(err, HELIX_ERR_FORMAT, "%s: tensor '%s': shape overflows (more than 2^56 elements)", name, key);
                goto out;
            }
        }
        t->n_elems = elems;
        if (!json_is_array(off) || json_array_size(off) != 2 || !json_is_integer(json_array_get(off, 0)) ||
            !json_is_integer(json_array_get(off, 1))) {
            st = helix_errf(err, HELIX_ERR_FORMAT, "%s: tensor '%s': data_offsets must be [begin, end] integers", name, key);
            goto out;
        }
        json_int_t b = json_integer_value(json_array_get(off, 0)), e = json_integer_value(json_array_get(off, 1));
        if (b < 0 || e < b) {
            st = helix_errf(err, HELIX_ERR_FORMAT, "%s: tensor '%s': data_offsets [%lld, %lld] are not 0 <= begin <= end", name,
                      key, (long long)b, (long long)e);
            goto out;
        }
        uint64_t want = (uint64_t)elems * helix_dtype_size(t->dtype);
        if ((uint64_t)(e - b) != want) {
            st = helix_errf(err, HELIX_ERR_FORMAT, "%s: tensor '%s': shape and dtype need %llu bytes but data_offsets hold %lld",
                      name, key, (unsigned long long)want, (long long)(e - b));
            goto out;
        }
        t->offset = data_start + (uint64_t)b;
        t->n_bytes = want;
        f->n_tensors++;
    }
    qsort(f->tensors, (size_t)f->n_tensors, sizeof *f->tensors, cmp_offset);
    f->by_name = malloc(sizeof *f->by_name * (size_t)(f->n_tensors ? f->n_tensors : 1));
    if (!f->by_name) { st = helix_errf(err, HELIX_ERR_NOMEM, "%s: out of memory", name); goto out; }
    for (int64_t k = 0; k < f->n_tensors; k++) f->by_name[k] = &f->tensors[k];
    qsort(f->by_name, (size_t)f->n_tensors, sizeof *f->by_name, cmp_name);
    uint64_t pos = data_start;
    for (int64_t k = 0; k < f->n_tensors; k++) {
        const helix_st_tensor *t = &f->tensors[k];
        if (t->offset < pos) {
            st = helix_errf(err, HELIX_ERR_FORMAT, "%s: tensor '%s' overlaps the tensor before it", name, t->name);
            goto out;
        }
        if (t->offset > pos) {
            st = helix_errf(err, HELIX_ERR_FORMAT, "%s: %llu unused bytes (a gap) before tensor '%s'", name,
                      (unsigned long long)(t->offset - pos), t->name);
            goto out;
        }
        pos += t->n_bytes;
    }
    if (pos > data_start + data_bytes) {
        st = helix_errf(err, HELIX_ERR_FORMAT, "%s: truncated: the tensors need %llu data bytes, the file has %llu", name,
                  (unsigned long long)(pos - data_start), (unsigned long long)data_bytes);
        goto out;
    }
    if (pos < data_start + data_bytes) {
        st = helix_errf(err, HELIX_ERR_FORMAT, "%s: %llu trailing bytes after the last tensor", name,
                  (unsigned long long)(data_start + data_bytes - pos));
        goto out;
    }
out:
    json_decref(root);
    return st;
}

/* Header length from the first 8 bytes, checked against the limit and the file. */
static helix_status header_len(const unsigned char *b8, uint64_t file_bytes, const char *name, uint64_t *n,
                               helix_err *err)
{
    if (file_bytes < 8) return helix_errf(err, HELIX_ERR_FORMAT, "%s: too short for a safetensors file (%llu bytes)", name,
                                    (unsigned long long)file_bytes);
    uint64_t v = 0;
    for (int k = 7; k >= 0; k--) v = v << 8 | b8[k];
    if (v > HELIX_ST_MAX_HEADER)
        return helix_errf(err, HELIX_ERR_FORMAT, "%s: header length %llu bytes exceeds the 100 MB limit", name,
                    (unsigned long long)v);
    if (v > file_bytes - 8)
        return helix_errf(err, HELIX_ERR_FORMAT, "%s: header (%llu bytes) runs past the end of the file (%llu bytes)", name,
                    (unsigned long long)v, (unsigned long long)file_bytes);
    *n = v;
    return HELIX_OK;
}

helix_status helix_st_parse(const unsigned char *buf, size_t len, const char *name, helix_st_file *f, helix_err *err)
{
    memset(f, 0, sizeof *f);
    f->fd = -1;
    snprintf(f->path, sizeof f->path, "%s", name);
    f->file_bytes = len;
    uint64_t n;
    helix_status st = header_len(buf, len, name, &n, err);
    if (st) return st;
    st = parse_json((const char *)buf + 8, (size_t)n, 8 + n, len - 8 - n, name, f, err);
    if (st) helix_st_close(f);
    return st;
}

helix_status helix_st_open(const char *path, helix_st_file *f, helix_err *err)
{
    memset(f, 0, sizeof *f);
    f->fd = -1;
    snprintf(f->path, sizeof f->path, "%s", path);
    int fd;
    unsigned char b8[8];
    helix_status ost = helix_open_regular(path, &fd, &f->file_bytes, err);
    if (ost) return ost;
    ssize_t got = f->file_bytes >= 8 ? pread(fd, b8, 8, 0) : 0;
    uint64_t n = 0;
    helix_status st = got == 8 || f->file_bytes < 8 ? header_len(b8, f->file_bytes, path, &n, err)
                                                    : helix_errf(err, HELIX_ERR_IO, "%s: read failed", path);
    if (st) { close(fd); return st; }
    char *json = malloc(n ? n : 1);       /* n <= 100 MB and inside the file: checked above */
    if (!json) { close(fd); return helix_errf(err, HELIX_ERR_NOMEM, "%s: out of memory for a %llu-byte header", path, (unsigned long long)n); }
    if (pread(fd, json, n, 8) != (ssize_t)n) { free(json); close(fd); return helix_errf(err, HELIX_ERR_IO, "%s: short read", path); }
    st = parse_json(json, (size_t)n, 8 + n, f->file_bytes - 8 - n, path, f, err);
    free(json);
    if (st) { close(fd); helix_st_close(f); return st; }
    f->fd = fd;
    return HELIX_OK;
}

void helix_st_close(helix_st_file *f)
{
    if (!f) return;
    if (f->fd >= 0) close(f->fd);
    free(f->tensors);
    free(f->by_name);
    if (f->meta) json_decref((json_t *)f->meta);
    f->meta = NULL;
    f->by_name = NULL;
    f->tensors = NULL;
    f->n_tensors = 0;
    f->fd = -1;
}

const helix_st_tensor *helix_st_find(const helix_st_file *f, const char *name)
{
    int64_t lo = 0, hi = f->n_tensors;       /* binary search of the name index */
    while (lo < hi) {
        const int64_t mid = lo + (hi - lo) / 2;
        const int c = strcmp(f->by_name[mid]->name, name);
        if (c == 0) return f->by_name[mid];
        if (c < 0) lo = mid + 1;
        else hi = mid;
    }
    return NULL;
}

const char *helix_st_meta(const helix_st_file *f, const char *key)
{
    json_t *v = f->meta ? json_object_get((json_t *)f->meta, key) : NULL;
    return v ? json_string_value(v) : NULL;
}

helix_status helix_st_read_f32(const helix_st_file *f, const unsigned char *base, const helix_st_tensor *t,
                               int64_t first, int64_t count, float *dst, helix_err *err)
{
    if (first < 0 || count < 0 || first > t->n_elems || count > t->n_elems - first)
        return helix_errf(err, HELIX_ERR_INVALID, "%s: read of [%lld, +%lld) outside tensor '%s'", f->path,
                    (long long)first, (long long)count, t->name);
    const size_t es = helix_dtype_size(t->dtype);
    const uint64_t at = t->offset + (uint64_t)first * es;
    if (base) {
        helix_to_f32(t->dtype, base + at, dst, count);
        return HELIX_OK;
    }
    /* read raw 16-bit data into the tail of dst, then widen in place from the front */
    char *raw = (char *)dst + (size_t)count * (4 - es);
    size_t want = (size_t)count * es, done = 0;
    while (done < want) {
        ssize_t r = pread(f->fd, raw + done, want - done, (off_t)(at + done));
        if (r <= 0) return helix_errf(err, HELIX_ERR_IO, "%s: read of tensor '%s' failed", f->path, t->name);
        done += (size_t)r;
    }
    if (es == 4) return HELIX_OK;
    for (int64_t k = 0; k < count; k++) {
        uint16_t h;
        memcpy(&h, raw + 2 * k, 2);
        dst[k] = t->dtype == HELIX_F16 ? helix_f16_to_f32(h) : helix_bf16_to_f32(h);
    }
    return HELIX_OK;
}

helix_status helix_st_first_nonfinite(const helix_st_file *f, const helix_st_tensor *t, helix_dtype as, int64_t *first,
                                      helix_err *err)
{
    enum { PIECE = 1 << 16 };
    float *buf = malloc(sizeof(float) * PIECE);
    if (!buf) return helix_errf(err, HELIX_ERR_NOMEM, "out of memory");
    *first = -1;
    for (int64_t k0 = 0; k0 < t->n_elems && *first < 0; k0 += PIECE) {
        int64_t n = t->n_elems - k0 < PIECE ? t->n_elems - k0 : PIECE;
        helix_status st = helix_st_read_f32(f, NULL, t, k0, n, buf, err);
        if (st) { free(buf); return st; }
        int64_t bad = helix_first_nonfinite_as(as, buf, n);
        if (bad >= 0) *first = k0 + bad;
    }
    free(buf);
    return HELIX_OK;
}

helix_status helix_st_checksum(const helix_st_file *f, uint64_t *sum, helix_err *err)
{
    enum { PIECE = 1 << 20 };
    if (f->fd < 0) return helix_errf(err, HELIX_ERR_INVALID, "%s: no file to checksum", f->path);
    unsigned char *buf = malloc(PIECE);
    if (!buf) return helix_errf(err, HELIX_ERR_NOMEM, "out of memory");
    uint64_t h = 0x6a09e667f3bcc908ull ^ f->file_bytes;
    for (uint64_t at = 0; at < f->file_bytes;) {
        size_t want = f->file_bytes - at < PIECE ? (size_t)(f->file_bytes - at) : PIECE;
        ssize_t got = pread(f->fd, buf, want, (off_t)at);
        if (got <= 0) { free(buf); return helix_errf(err, HELIX_ERR_IO, "%s: read failed", f->path); }
        size_t k = 0;
        for (; k + 8 <= (size_t)got; k += 8) {      /* 8 bytes a step: multiply-xorshift */
            uint64_t w;
            memcpy(&w, buf + k, 8);
            h = (h ^ w) * 0x9e3779b97f4a7c15ull;
            h ^= h >> 29;
        }
        for (; k < (size_t)got; k++) h = (h ^ buf[k]) * 0x100000001b3ull;
        at += (uint64_t)got;
    }
    free(buf);
    *sum = h;
    return HELIX_OK;
}

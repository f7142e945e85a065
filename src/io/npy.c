/* npy.c — a small, strict .npy reader and writer.
 *
 * Layout: "\x93NUMPY", major, minor, header length (u16 for v1, u32 for
 * v2/v3, little-endian), a Python dict literal with exactly the keys
 * 'descr', 'fortran_order', 'shape', then the raw data. Only '<f4' and
 * '<f2' in C order are accepted. */
#include "helix_io.h"
#include "../core/err-impl.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define NPY_MAX_HEADER (1 << 20)

void helix_array_free(helix_array *a)
{
    if (!a) return;
    free(a->data);
    a->data = NULL;
}

typedef struct {
    const char *p, *end;
} cur;

static void ws(cur *c) { while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' || *c->p == '\n')) c->p++; }
static int eat(cur *c, char ch)
{
    ws(c);
    if (c->p < c->end && *c->p == ch) { c->p++; return 1; }
    return 0;
}
/* a quoted Python string without escapes, copied into out */
static int str(cur *c, char *out, size_t cap)
{
    ws(c);
    if (c->p >= c->end || (*c->p != '\'' && *c->p != '"')) return 0;
    char q = *c->p++;
    size_t n = 0;
    while (c->p < c->end && *c->p != q) {
        if (*c->p == '\\' || n + 1 >= cap) return 0;
        out[n++] = *c->p++;
    }
    if (c->p >= c->end) return 0;
    c->p++;
    out[n] = 0;
    return 1;
}
static int word(cur *c, const char *w)
{
    ws(c);
    size_t n = strlen(w);
    if ((size_t)(c->end - c->p) >= n && !memcmp(c->p, w, n)) { c->p += n; return 1; }
    return 0;
}

/* The header in buf[0, len) of a file of `total` bytes: fills out (no
 * data) and the data's offset, after checking that the file holds exactly
 * the data the shape needs. */
static helix_status parse_header(const unsigned char *buf, size_t len, uint64_t total, const char *name,
                                 helix_array *out, size_t *data_at, helix_err *err)
{
    memset(out, 0, sizeof *out);
    if (len < 10 || memcmp(buf, "\x93NUMPY", 6))
        return helix_errf(err, HELIX_ERR_FORMAT, "%s: not a .npy file (bad magic)", name);
    unsigned major = buf[6], minor = buf[7];
    size_t hlen, hoff;
    if (major == 1) {
        hlen = (size_t)buf[8] | (size_t)buf[9] << 8;
        hoff = 10;
    } else if (major == 2 || major == 3) {
        if (len < 12) return helix_errf(err, HELIX_ERR_FORMAT, "%s: truncated .npy header", name);
        hlen = (size_t)buf[8] | (size_t)buf[9] << 8 | (size_t)buf[10] << 16 | (size_t)buf[11] << 24;
        hoff = 12;
    } else {
        return helix_errf(err, HELIX_ERR_FORMAT, "%s: unsupported .npy version %u.%u (supported: 1.0, 2.0, 3.0)",
                    name, major, minor);
    }
    if (minor != 0)
        return helix_errf(err, HELIX_ERR_FORMAT, "%s: unsupported .npy version %u.%u", name, major, minor);
    if (hlen > NPY_MAX_HEADER)
        return helix_errf(err, HELIX_ERR_FORMAT, "%s: .npy header of %zu bytes is larger than %d", name, hlen,
                    NPY_MAX_HEADER);
    if (hlen > len - hoff)
        return helix_errf(err, HELIX_ERR_FORMAT, "%s: .npy header (%zu bytes) runs past the end of the file", name, hlen);
    cur c = {(const char *)buf + hoff, (const char *)buf + hoff + hlen};
    char key[32], descr[16] = "";
    int have_descr = 0, have_fortran = 0, have_shape = 0, fortran = 0, ndim = 0;
    int64_t shape[HELIX_MAX_NDIM];
    if (!eat(&c, '{')) return helix_errf(err, HELIX_ERR_FORMAT, "%s: .npy header is not a dict", name);
    while (!eat(&c, '}')) {
        if (!str(&c, key, sizeof key) || !eat(&c, ':'))
            return helix_errf(err, HELIX_ERR_FORMAT, "%s: malformed .npy header", name);
        if (!strcmp(key, "descr")) {
            if (have_descr++) return helix_errf(err, HELIX_ERR_FORMAT, "%s: duplicate key 'descr' in .npy header", name);
            if (!str(&c, descr, sizeof descr))
                return helix_errf(err, HELIX_ERR_FORMAT, "%s: 'descr' is not a simple type string", name);
        } else if (!strcmp(key, "fortran_order")) {
            if (have_fortran++) return helix_errf(err, HELIX_ERR_FORMAT, "%s: duplicate key 'fortran_order'", name);
            if (word(&c, "True")) fortran = 1;
            else if (!word(&c, "False")) return helix_errf(err, HELIX_ERR_FORMAT, "%s: bad 'fortran_order'", name);
        } else if (!strcmp(key, "shape")) {
            if (have_shape++) return helix_errf(err, HELIX_ERR_FORMAT, "%s: duplicate key 'shape'", name);
            if (!eat(&c, '(')) return helix_errf(err, HELIX_ERR_FORMAT, "%s: 'shape' is not a tuple", name);
            while (!eat(&c, ')')) {
                ws(&c);
                int64_t v = 0;
                int digits = 0;
                while (c.p < c.end && *c.p >= '0' && *c.p <= '9') {
                    if (v > (INT64_MAX - 9) / 10) return helix_errf(err, HELIX_ERR_FORMAT, "%s: shape value too large", name);
                    v = v * 10 + (*c.p++ - '0');
                    digits++;
                }
                if (!digits) return helix_errf(err, HELIX_ERR_FORMAT, "%s: shape must hold non-negative integers", name);
                if (ndim == HELIX_MAX_NDIM)
                    return helix_errf(err, HELIX_ERR_FORMAT, "%s: more than %d dimensions", name, HELIX_MAX_NDIM);
                shape[ndim++] = v;
                if (!eat(&c, ',')) {
                    if (!eat(&c, ')')) return helix_errf(err, HELIX_ERR_FORMAT, "%s: malformed shape tuple", name);
                    break;
                }
            }
        } else {
            return helix_errf(err, HELIX_ERR_FORMAT, "%s: unexpected key '%s' in .npy header", name, key);
        }
        if (!eat(&c, ',')) {
            if (!eat(&c, '}')) return helix_errf(err, HELIX_ERR_FORMAT, "%s: malformed .npy header", name);
            break;
        }
    }
    ws(&c);
    if (c.p != c.end) return helix_errf(err, HELIX_ERR_FORMAT, "%s: junk after the .npy header dict", name);
    if (!have_descr || !have_fortran || !have_shape)
        return helix_errf(err, HELIX_ERR_FORMAT, "%s: .npy header lacks '%s'", name,
                    !have_descr ? "descr" : !have_fortran ? "fortran_order" : "shape");
    helix_dtype t;
    if (!strcmp(descr, "<f4")) t = HELIX_F32;
    else if (!strcmp(descr, "<f2")) t = HELIX_F16;
    else if (descr[0] == '>')
        return helix_errf(err, HELIX_ERR_FORMAT, "%s: big-endian data ('%s') is not supported", name, descr);
    else
        return helix_errf(err, HELIX_ERR_FORMAT, "%s: dtype '%s' is not supported (use float32 '<f4' or float16 '<f2')",
                    name, descr);
    if (fortran) return helix_errf(err, HELIX_ERR_FORMAT, "%s: Fortran-order arrays are not supported", name);
    int64_t n = 1;
    for (int k = 0; k < ndim; k++)
        if (__builtin_mul_overflow(n, shape[k], &n) || n > ((int64_t)1 << 56))
            return helix_errf(err, HELIX_ERR_FORMAT, "%s: shape is too large", name);
    const size_t es = helix_dtype_size(t), data_off = hoff + hlen;
    const uint64_t want = (uint64_t)n * es, have = total - data_off;
    if (have < want)
        return helix_errf(err, HELIX_ERR_FORMAT, "%s: truncated data: shape needs %llu bytes, file has %llu", name,
                          (unsigned long long)want, (unsigned long long)have);
    if (have > want)
        return helix_errf(err, HELIX_ERR_FORMAT, "%s: %llu trailing bytes after the data", name,
                          (unsigned long long)(have - want));
    out->dtype = t;
    out->ndim = ndim;
    memcpy(out->shape, shape, sizeof(int64_t) * (size_t)ndim);
    out->n_elems = n;
    *data_at = data_off;
    return HELIX_OK;
}

helix_status helix_npy_parse(const unsigned char *buf, size_t len, const char *name, helix_array *out,
                             helix_err *err)
{
    size_t at = 0;
    helix_status st = parse_header(buf, len, len, name, out, &at, err);
    if (st) return st;
    const size_t want = (size_t)out->n_elems * helix_dtype_size(out->dtype);
    out->data = malloc(want ? want : 1);
    if (!out->data) return helix_errf(err, HELIX_ERR_NOMEM, "%s: out of memory (%zu bytes)", name, want);
    memcpy(out->data, buf + at, want);
    return HELIX_OK;
}

/* open, read and parse the header; the file stays open for the data */
static helix_status open_header(const char *path, int *fd, helix_array *out, size_t *at, helix_err *err)
{
    uint64_t total = 0;
    helix_status st = helix_open_regular(path, fd, &total, err);
    if (st) return st;
    const size_t cap = 12 + NPY_MAX_HEADER, n = total < cap ? (size_t)total : cap;
    unsigned char *buf = malloc(n ? n : 1);
    if (!buf) { close(*fd); return helix_errf(err, HELIX_ERR_NOMEM, "%s: out of memory", path); }
    ssize_t got = pread(*fd, buf, n, 0);
    if (got != (ssize_t)n) st = helix_errf(err, HELIX_ERR_IO, "%s: short read", path);
    else st = parse_header(buf, n, total, path, out, at, err);
    free(buf);
    if (st) close(*fd);
    return st;
}

helix_status helix_npy_read_header(const char *path, helix_array *out, helix_err *err)
{
    int fd;
    size_t at;
    helix_status st = open_header(path, &fd, out, &at, err);
    if (st == HELIX_OK) close(fd);
    return st;
}

helix_status helix_npy_read(const char *path, helix_array *out, helix_err *err)
{
    int fd;
    size_t at;
    helix_status st = open_header(path, &fd, out, &at, err);
    if (st) return st;
    const size_t want = (size_t)out->n_elems * helix_dtype_size(out->dtype);
    out->data = malloc(want ? want : 1);      /* the size the header promised and the file holds */
    if (!out->data) { close(fd); return helix_errf(err, HELIX_ERR_NOMEM, "%s: out of memory (%zu bytes)", path, want); }
    for (size_t done = 0; done < want;) {
        ssize_t r = pread(fd, (char *)out->data + done, want - done, (off_t)(at + done));
        if (r <= 0) {
            close(fd);
            helix_array_free(out);
            return helix_errf(err, HELIX_ERR_IO, "%s: short read", path);
        }
        done += (size_t)r;
    }
    close(fd);
    return HELIX_OK;
}

helix_status helix_npy_write(const char *path, helix_dtype t, int ndim, const int64_t *shape, const void *data,
                             helix_err *err)
{
    if (t == HELIX_BF16) return helix_errf(err, HELIX_ERR_UNSUPPORTED, "%s: .npy has no bfloat16 type", path);
    if (ndim < 0 || ndim > HELIX_MAX_NDIM) return helix_errf(err, HELIX_ERR_INVALID, "%s: bad ndim %d", path, ndim);
    char h[512];
    int n = snprintf(h, sizeof h, "{'descr': '%s', 'fortran_order': False, 'shape': (", t == HELIX_F32 ? "<f4" : "<f2");
    int64_t count = 1;
    for (int k = 0; k < ndim; k++) {
        n += snprintf(h + n, sizeof h - (size_t)n, "%lld,%s", (long long)shape[k], k + 1 < ndim ? " " : "");
        count *= shape[k];
    }
    n += snprintf(h + n, sizeof h - (size_t)n, "), }");
    int total = 10 + n + 1;
    int pad = (64 - total % 64) % 64;
    helix_wfile w;
    helix_status st = helix_wfile_open(&w, path, err);
    if (st) return st;
    FILE *f = w.f;
    unsigned short hl = (unsigned short)(n + pad + 1);
    unsigned char pre[10] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, (unsigned char)(hl & 0xff), (unsigned char)(hl >> 8)};
    int ok = fwrite(pre, 1, 10, f) == 10 && fwrite(h, 1, (size_t)n, f) == (size_t)n;
    for (int k = 0; ok && k < pad; k++) ok = fputc(' ', f) != EOF;
    ok = ok && fputc('\n', f) != EOF;
    size_t bytes = (size_t)count * helix_dtype_size(t);
    ok = ok && fwrite(data, 1, bytes, f) == bytes;
    if (!ok) {
        helix_wfile_abort(&w);
        return helix_errf(err, HELIX_ERR_IO, "%s: write failed; the old file, if any, is untouched", path);
    }
    return helix_wfile_commit(&w, err);
}

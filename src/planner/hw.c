/* hw.c — machine descriptions for the planner: `key = value` lines, '#'
 * starts a comment, numbers may use e-notation (80e9). Unknown keys and
 * missing required keys are errors, so a typo cannot silently become a
 * default. */
#include "helix_model.h"
#include "helix_io.h"
#include "../core/err-impl.h"
#include <unistd.h>

#include <ctype.h>
#include <stddef.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const char *key;
    size_t off;
    int required;
} field;

#define F(k, member, req) {k, offsetof(helix_hw, member), req}
static const field fields[] = {
    F("devices_per_node", devices_per_node, 1), F("flops_f32", flops[HELIX_F32], 1),
    F("flops_f16", flops[HELIX_F16], 1), F("flops_bf16", flops[HELIX_BF16], 1),
    F("eff_gemm", eff_gemm, 1), F("eff_attention", eff_attn, 1), F("eff_scores", eff_scores, 0),
    F("gemm_half", gemm_half, 0), F("attention_half", attn_half, 0), F("mem_bw", mem_bw, 1), F("gelu_rate", gelu_rate, 0),
    F("device_mem", device_mem, 0), F("node_mem", node_mem, 0), F("parallel", parallel, 0),
    F("devices_per_host", devices_per_host, 0), F("intra_bw", intra_bw, 1), F("intra_lat", intra_lat, 1), F("inter_bw", inter_bw, 1), F("inter_lat", inter_lat, 1),
};
#undef F

helix_status helix_hw_parse(const char *text, const char *what, helix_hw *hw, helix_err *err)
{
    memset(hw, 0, sizeof *hw);
    int seen[sizeof fields / sizeof fields[0]] = {0};
    const char *s = text;
    for (int line = 1; *s; line++) {
        const char *e = strchr(s, '\n');
        size_t n = e ? (size_t)(e - s) : strlen(s);
        char buf[512];
        if (n >= sizeof buf) return helix_errf(err, HELIX_ERR_FORMAT, "%s:%d: line too long", what, line);
        memcpy(buf, s, n);
        buf[n] = 0;
        s += n + (e ? 1 : 0);
        char *hash = strchr(buf, '#');
        if (hash) *hash = 0;
        char *p = buf;
        while (isspace((unsigned char)*p)) p++;
        if (!*p) continue;
        char *eq = strchr(p, '=');
        if (!eq) return helix_errf(err, HELIX_ERR_FORMAT, "%s:%d: expected 'key = value', got '%s'", what, line, p);
        *eq = 0;
        char *k = p, *v = eq + 1, *end;
        for (end = k + strlen(k); end > k && isspace((unsigned char)end[-1]);) *--end = 0;
        while (isspace((unsigned char)*v)) v++;
        for (end = v + strlen(v); end > v && isspace((unsigned char)end[-1]);) *--end = 0;
        if (!strcmp(k, "name")) { snprintf(hw->name, sizeof hw->name, "%s", v); continue; }
        /* a row of a table: eff_attention_wN (head width) or eff_gemm_sN (smallest GEMM dimension) */
        const int is_attn = !strncmp(k, "eff_attention_w", 15), is_gemm = !strncmp(k, "eff_gemm_s", 10);
        if (is_attn || is_gemm) {
            helix_eff_table *t = is_attn ? &hw->attn : &hw->gemm;
            const char *num = k + (is_attn ? 15 : 10), *form = is_attn ? "eff_attention_wN with a head width N"
                                                                        : "eff_gemm_sN with a smallest GEMM dimension N";
            char *we;
            errno = 0;
            const long w = strtol(num, &we, 10);
            const double x = strtod(v, &end);
            if (we == num || *we || w < 1 || w > (1L << 30))
                return helix_errf(err, HELIX_ERR_FORMAT, "%s:%d: '%s': write %s", what, line, k, form);
            if (end == v || *end || errno || !(x > 0 && x <= 1))
                return helix_errf(err, HELIX_ERR_FORMAT, "%s:%d: %s must be a fraction of peak in (0, 1], got '%s'", what, line, k, v);
            if (t->n == 8) return helix_errf(err, HELIX_ERR_FORMAT, "%s:%d: at most 8 %s rows", what, line, is_attn ? "eff_attention_wN" : "eff_gemm_sN");
            int at = t->n;
            for (int q = 0; q < t->n; q++)
                if (t->x[q] == (double)w) return helix_errf(err, HELIX_ERR_FORMAT, "%s:%d: %s given twice", what, line, k);
            while (at > 0 && t->x[at - 1] > (double)w) { t->x[at] = t->x[at - 1]; t->e[at] = t->e[at - 1]; at--; }
            t->x[at] = (double)w;
            t->e[at] = x;
            t->n++;
            continue;
        }
        size_t f = 0;
        while (f < sizeof fields / sizeof fields[0] && strcmp(fields[f].key, k)) f++;
        if (f == sizeof fields / sizeof fields[0]) return helix_errf(err, HELIX_ERR_FORMAT, "%s:%d: unknown key '%s'", what, line, k);
        errno = 0;
        double x = strtod(v, &end);
        if (end == v || *end || errno || !isfinite(x) || x < 0)
            return helix_errf(err, HELIX_ERR_FORMAT, "%s:%d: %s must be a non-negative number, got '%s'", what, line, k, v);
        if (!strcmp(k, "devices_per_node") || !strcmp(k, "devices_per_host")) {
            if (x < 1 || x != floor(x)) return helix_errf(err, HELIX_ERR_FORMAT, "%s:%d: %s must be a positive integer", what, line, k);
            *(int64_t *)((char *)hw + fields[f].off) = (int64_t)x;
        } else {
            *(double *)((char *)hw + fields[f].off) = x;
        }
        seen[f] = 1;
    }
    for (size_t f = 0; f < sizeof fields / sizeof fields[0]; f++) {
        if (fields[f].required && !seen[f]) return helix_errf(err, HELIX_ERR_FORMAT, "%s: missing '%s'", what, fields[f].key);
        if (fields[f].required && f != 0 && *(double *)((char *)hw + fields[f].off) <= 0)
            return helix_errf(err, HELIX_ERR_FORMAT, "%s: %s must be > 0", what, fields[f].key);
    }
    if (hw->eff_gemm > 1 || hw->eff_attn > 1 || hw->eff_scores > 1) return helix_errf(err, HELIX_ERR_FORMAT, "%s: efficiencies are fractions of peak (<= 1)", what);
    if (hw->parallel <= 0) hw->parallel = (double)hw->devices_per_node;
    if (!hw->name[0]) snprintf(hw->name, sizeof hw->name, "%s", what);
    return HELIX_OK;
}

helix_status helix_hw_load(const char *path, helix_hw *hw, helix_err *err)
{
    int fd;
    helix_status st = helix_open_regular(path, &fd, NULL, err);
    if (st) {
        char why[sizeof err->msg];
        snprintf(why, sizeof why, "%s", err ? err->msg : "cannot open");
        return helix_errf(err, st, "hardware file %s", why);
    }
    FILE *f = fdopen(fd, "rb");
    if (!f) { close(fd); return helix_errf(err, HELIX_ERR_NOMEM, "%s: out of memory", path); }
    char buf[16384];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    int big = !feof(f);
    fclose(f);
    if (big) return helix_errf(err, HELIX_ERR_FORMAT, "%s: larger than %zu bytes, not a hardware file", path, sizeof buf - 1);
    buf[n] = 0;
    if (memchr(buf, 0, n)) return helix_errf(err, HELIX_ERR_FORMAT, "%s: contains NUL bytes, not a hardware file", path);
    return helix_hw_parse(buf, path, hw, err);
}

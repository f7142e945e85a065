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
    F("eff_gemm", eff_gemm, 1), F("eff_attention", eff_attn, 1),
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
        if (!strncmp(k, "eff_attention_w", 15)) {          /* a row of the attention table */
            char *we;
            errno = 0;
            const long w = strtol(k + 15, &we, 10);
            const double x = strtod(v, &end);
            if (we == k + 15 || *we || w < 1 || w > 65536)
                return helix_errf(err, HELIX_ERR_FORMAT, "%s:%d: '%s': write eff_attention_wN with a head width N", what, line, k);
            if (end == v || *end || errno || !(x > 0 && x <= 1))
                return helix_errf(err, HELIX_ERR_FORMAT, "%s:%d: %s must be a fraction of peak in (0, 1], got '%s'", what, line, k, v);
            if (hw->attn_n == 8) return helix_errf(err, HELIX_ERR_FORMAT, "%s:%d: at most 8 eff_attention_wN rows", what, line);
            int at = hw->attn_n;
            for (int q = 0; q < hw->attn_n; q++)
                if (hw->attn_w[q] == (double)w) return helix_errf(err, HELIX_ERR_FORMAT, "%s:%d: %s given twice", what, line, k);
            while (at > 0 && hw->attn_w[at - 1] > (double)w) { hw->attn_w[at] = hw->attn_w[at - 1]; hw->attn_e[at] = hw->attn_e[at - 1]; at--; }
            hw->attn_w[at] = (double)w;
            hw->attn_e[at] = x;
            hw->attn_n++;
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
    if (hw->eff_gemm > 1 || hw->eff_attn > 1) return helix_errf(err, HELIX_ERR_FORMAT, "%s: efficiencies are fractions of peak (<= 1)", what);
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

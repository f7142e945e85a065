/* cli_util.c — argument parsing, random numbers and a JSON writer. */
#include "cli.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

double cli_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int cli_int(const char *opt, const char *s, int64_t lo, int64_t hi, int64_t *out)
{
    char *end = NULL;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (!*s || *end || errno) {
        fprintf(stderr, "helix: %s expects an integer, got '%s'\n", opt, s);
        return -1;
    }
    if (v < lo || v > hi) {
        fprintf(stderr, "helix: %s must be in [%lld, %lld], got %lld\n", opt, (long long)lo, (long long)hi, v);
        return -1;
    }
    *out = v;
    return 0;
}

int cli_double(const char *opt, const char *s, double *out)
{
    char *end = NULL;
    errno = 0;
    double v = strtod(s, &end);
    if (!*s || *end || errno || !isfinite(v)) {
        fprintf(stderr, "helix: %s expects a finite number, got '%s'\n", opt, s);
        return -1;
    }
    *out = v;
    return 0;
}

float cli_uniform(cli_rng *r, float a)
{
    uint64_t z = (r->s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    z ^= z >> 31;
    return a * (2.0f * (float)((double)(z >> 11) * (1.0 / 9007199254740992.0)) - 1.0f);
}

void cli_rng_skip(cli_rng *r, uint64_t n) { r->s += n * 0x9e3779b97f4a7c15ull; }

static void sep(jw *j, const char *key)
{
    if (!j->first[j->depth]) fputc(',', j->f);
    j->first[j->depth] = 0;
    fputc('\n', j->f);
    for (int k = 0; k < j->depth; k++) fputs("  ", j->f);
    if (key) fprintf(j->f, "\"%s\": ", key);
}

void jw_begin(jw *j, FILE *f) { j->f = f; j->depth = 0; j->first[0] = 1; }
int jw_open(jw *j, const char *path)
{
    FILE *f = strcmp(path, "-") ? fopen(path, "w") : stdout;
    if (!f) { fprintf(stderr, "helix: cannot write JSON file '%s'\n", path); return -1; }
    jw_begin(j, f);
    return 0;
}
int jw_close(jw *j, const char *path)
{
    int bad = ferror(j->f);
    if (j->f == stdout) bad |= fflush(stdout) != 0;
    else bad |= fclose(j->f) != 0;
    if (bad) fprintf(stderr, "helix: writing JSON file '%s' failed\n", path);
    return bad ? -1 : 0;
}
static void open_(jw *j, const char *key, char c)
{
    if (j->depth > 0 || !j->first[0]) sep(j, key);
    fputc(c, j->f);
    j->first[0] = 0;
    j->first[++j->depth] = 1;
}
static void close_(jw *j, char c)
{
    j->depth--;
    fputc('\n', j->f);
    for (int k = 0; k < j->depth; k++) fputs("  ", j->f);
    fputc(c, j->f);
    if (j->depth == 0) fputc('\n', j->f);
}
void jw_obj(jw *j, const char *key) { open_(j, key, '{'); }
void jw_arr(jw *j, const char *key) { open_(j, key, '['); }
void jw_end_obj(jw *j) { close_(j, '}'); }
void jw_end_arr(jw *j) { close_(j, ']'); }
void jw_int(jw *j, const char *key, int64_t v) { sep(j, key); fprintf(j->f, "%lld", (long long)v); }
void jw_num(jw *j, const char *key, double v)
{
    sep(j, key);
    if (isfinite(v)) fprintf(j->f, "%.9g", v);
    else fputs("null", j->f);
}
void jw_str(jw *j, const char *key, const char *v)
{
    sep(j, key);
    fputc('"', j->f);
    for (const char *p = v; *p; p++) {
        if (*p == '"' || *p == '\\') fprintf(j->f, "\\%c", *p);
        else if ((unsigned char)*p < 0x20) fprintf(j->f, "\\u%04x", *p);
        else fputc(*p, j->f);
    }
    fputc('"', j->f);
}
void jw_bool(jw *j, const char *key, int v) { sep(j, key); fputs(v ? "true" : "false", j->f); }

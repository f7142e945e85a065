/* check.h — a tiny test harness: CHECK records a failure with file:line and
 * goes on; test_summary() prints "N passed, N failed" and gives the exit
 * code. */
#ifndef HELIX_CHECK_H
#define HELIX_CHECK_H

#include <stdio.h>

static int t_pass, t_fail;

#define CHECK(cond, ...) do {                                            \
    if (cond) t_pass++;                                                  \
    else {                                                               \
        t_fail++;                                                        \
        fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);  \
        fprintf(stderr, __VA_ARGS__);                                    \
        fputc('\n', stderr);                                             \
    }                                                                    \
} while (0)

static inline int test_summary(void)
{
    printf("%d passed, %d failed\n", t_pass, t_fail);
    return t_fail ? 1 : 0;
}

#endif

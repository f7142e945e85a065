/* util-impl.h — private helpers shared by the library's files. */
#ifndef HELIX_UTIL_IMPL_H
#define HELIX_UTIL_IMPL_H

#include <stdint.h>
#include <time.h>

/* Every buffer in a device arena or workspace starts on 64 bytes: the plan
 * sizes and the executor's carving both round with this. */
static inline int64_t helix_al64(int64_t n_bytes) { return (n_bytes + 63) & ~(int64_t)63; }

static inline double helix_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

#endif

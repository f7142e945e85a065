/* range.c — balanced splits of a range, used by the plan, the collectives
 * and the kernels' thread splits alike. */
#include "helix.h"

void helix_split_range(int64_t total, int64_t parts, int64_t idx, int64_t *b, int64_t *e)
{
    int64_t q = total / parts, r = total % parts;
    *b = idx * q + (idx < r ? idx : r);
    *e = *b + q + (idx < r ? 1 : 0);
}

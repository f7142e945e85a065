/* comm-impl.h — private to src/comm: the chunk of rows a member owns in a
 * reduce-scatter by rows (and, unit = 1, the chunks of all-reduce and
 * reduce), the one formula the communicator and the byte prediction share. */
#ifndef HELIX_COMM_IMPL_H
#define HELIX_COMM_IMPL_H

#include "helix.h"

/* member p of `size` owns rows split(rows, size, p): elements [*b, *b + *n)
 * of rows of `unit` (b may be NULL) */
static inline void helix_row_chunk(int64_t rows, int64_t unit, int size, int p, int64_t *b, int64_t *n)
{
    int64_t rb, re;
    helix_split_range(rows, size, p, &rb, &re);
    if (b) *b = rb * unit;
    *n = (re - rb) * unit;
}

#endif

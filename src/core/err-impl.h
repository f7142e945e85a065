/* err-impl.h — private: fill a helix_err and return a status, in one call. */
#ifndef HELIX_ERR_IMPL_H
#define HELIX_ERR_IMPL_H

#include "helix.h"

/* printf-style message into err (may be NULL); returns st. */
helix_status helix_errf(helix_err *err, helix_status st, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif

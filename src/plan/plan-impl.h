/* plan-impl.h — private to src/plan. */
#ifndef HELIX_PLAN_IMPL_H
#define HELIX_PLAN_IMPL_H

#include "helix_model.h"

/* helix_model_plan_device without the traffic (which the program gives,
 * and which the program builder cannot ask for: it is what it computes). */
helix_status helix_model_plan_sizes(const helix_model_plan *p, int64_t rank, helix_model_device_plan *o);

#endif

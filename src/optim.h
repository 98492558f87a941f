/* The optimiser: schedules, Adam, sums of squares (optim.c). */
#ifndef PARLSTM_OPTIM_H
#define PARLSTM_OPTIM_H

#include "common.h"

/* Learning rate of step `step` (0-based) of `total`. */
float pl_lr_at(pl_schedule s, float base, long step, long total);
/* Adam with bias correction on params[0..n); t = 1-based step number. */
void pl_adam(float *params, const float *grad, float *m, float *v, size_t n,
             float lr, float beta1, float beta2, float eps, long t,
             float grad_scale);
double pl_sum_squares(const float *x, size_t n);

#endif

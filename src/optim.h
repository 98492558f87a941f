/* The optimiser: schedules, Adam, sums of squares (optim.c). */
#ifndef PARLSTM_OPTIM_H
#define PARLSTM_OPTIM_H

#include "common.h"

/* A run's learning rates: warm-up, then the schedule. */
typedef struct {
    pl_schedule kind; /* after warm-up: cosine from peak to 0, or constant */
    float peak;       /* the rate warm-up rises to (pl_lr_peak) */
    long warmup;      /* steps of linear warm-up; 0: none */
    long total;       /* steps planned */
} pl_lr_plan;

/* The plan of a run of `total` steps with options o. */
pl_lr_plan pl_lr_plan_of(const pl_train_opts *o, long total);
/* Learning rate of step `step` (0-based): peak x (step + 1) / warmup for
 * step < warmup; then constant, or cosine over the total - warmup steps
 * that remain: peak x (1 + cos(pi (step - warmup) / (total - warmup))) / 2. */
float pl_lr_at(const pl_lr_plan *p, long step);
/* Adam with bias correction on params[0..n); t = 1-based step number;
 * weight_decay: AdamW's decoupled decay (pl_adam_constants). */
void pl_adam(float *params, const float *grad, float *m, float *v, size_t n,
             float lr, float beta1, float beta2, float eps, long t,
             float grad_scale, float weight_decay);
double pl_sum_squares(const float *x, size_t n);

#endif

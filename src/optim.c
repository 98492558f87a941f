/* Learning-rate schedules, global-norm clipping support and Adam, over flat
 * float arrays (any slice of the parameter buffer). */
#include <math.h>

#include "optim.h"
#include "kernels.h"

float pl_lr_peak(const pl_train_opts *o)
{
    const double ratio = (double)o->batch / PL_LR_REF_BATCH;
    switch (o->lr_scaling) {
    case PL_LR_SCALE_LINEAR: return (float)(o->lr * ratio);
    case PL_LR_SCALE_SQRT: return (float)(o->lr * sqrt(ratio));
    default: return o->lr;
    }
}

pl_lr_plan pl_lr_plan_of(const pl_train_opts *o, long total)
{
    return (pl_lr_plan){.kind = o->schedule, .peak = pl_lr_peak(o), .warmup = o->warmup,
                        .total = total};
}

/* Without warm-up, the cosine is over (step / total): the same operations
 * as before warm-up existed, so the same bits. */
float pl_lr_at(const pl_lr_plan *p, long step)
{
    if (step < p->warmup)
        return (float)((double)p->peak * (double)(step + 1) / (double)p->warmup);
    const long span = p->total - p->warmup;
    if (p->kind == PL_SCHED_CONSTANT || span <= 0)
        return p->peak;
    double frac = (double)(step - p->warmup) / (double)span;
    if (frac > 1.0)
        frac = 1.0;
    return (float)(p->peak * 0.5 * (1.0 + cos(M_PI * frac)));
}

/* The reference loop; every kernel set's Adam does the same per lane: the
 * decay (params x keep) first, then Adam's step subtracted. */
void pl_adam_generic(float *restrict params, const float *restrict grad, float *restrict m,
                     float *restrict v, size_t n, const pl_adam_k *k)
{
#pragma omp simd
    for (size_t i = 0; i < n; i++) {
        float g = grad[i] * k->scale;
        float mi = k->b1 * m[i] + k->b1c * g;
        float vi = k->b2 * v[i] + k->b2c * g * g;
        m[i] = mi;
        v[i] = vi;
        params[i] = params[i] * k->keep - k->step * mi / (sqrtf(vi) * k->rbc2 + k->eps);
    }
}

/* PyTorch's form: p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps),
 * with the gradient multiplied by grad_scale (the clipping factor) first.
 * AdamW's decay as PyTorch does it, p *= 1 - lr * weight_decay before the
 * step: keep is exactly 1 without decay, and p * 1 is p, so a run without
 * decay gives the bits it gave before decay existed. */
pl_adam_k pl_adam_constants(float lr, float beta1, float beta2, float eps, long t,
                            float grad_scale, float weight_decay)
{
    return (pl_adam_k){.step = lr / (float)(1.0 - pow(beta1, (double)t)),
                       .b1 = beta1,
                       .b2 = beta2,
                       .b1c = 1.0f - beta1,
                       .b2c = 1.0f - beta2,
                       .rbc2 = (float)(1.0 / sqrt(1.0 - pow(beta2, (double)t))),
                       .eps = eps,
                       .scale = grad_scale,
                       .keep = (float)(1.0 - (double)lr * weight_decay)};
}

/* PyTorch's RMSprop (no momentum, not centred) as Adam's update with
 * beta1 0 and no bias corrections: m = 0 m + 1 g is g exactly (m stays
 * finite: it starts at 0 and only ever holds a gradient), step = rate (the
 * first moment's correction at t = 1 with beta1 0 divides by 1), rbc2 = 1,
 * so p = p keep - rate g / (sqrt(v) + eps) with v = alpha v + (1 - alpha)
 * g^2: torch.optim.RMSprop's update. Every kernel set runs it through its
 * Adam, with the same bits. */
pl_adam_k pl_rmsprop_constants(float lr, float alpha, float eps, float grad_scale,
                               float weight_decay)
{
    pl_adam_k k = pl_adam_constants(lr, 0.0f, alpha, eps, 1, grad_scale, weight_decay);
    k.rbc2 = 1.0f; /* v has no bias correction */
    return k;
}

/* Every set's Adam gives the same bits; this one runs the widest. */
void pl_adam(float *params, const float *grad, float *m, float *v, size_t n,
             float lr, float beta1, float beta2, float eps, long t,
             float grad_scale, float weight_decay)
{
    const pl_adam_k k = pl_adam_constants(lr, beta1, beta2, eps, t, grad_scale, weight_decay);
    pl_kernels_of(PL_GEMM_AUTO)->adam(params, grad, m, v, n, &k);
}

/* Eight running sums in double, lane l adding the squares of x[l], x[l + 8],
 * ... in turn (the tail into lane 0), then the lanes in order. The lanes
 * are four two-double vectors held in registers: as an array of eight
 * doubles the compiler kept them in memory, a load and a store on every add.
 * A float's square is exact in double, so a fused multiply-add gives the
 * same bits. */
typedef double pl_v2d __attribute__((vector_size(16)));

double pl_sum_squares(const float *x, size_t n)
{
    pl_v2d a0 = {0, 0}, a1 = a0, a2 = a0, a3 = a0;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const pl_v2d x0 = {x[i], x[i + 1]}, x1 = {x[i + 2], x[i + 3]};
        const pl_v2d x2 = {x[i + 4], x[i + 5]}, x3 = {x[i + 6], x[i + 7]};
        a0 += x0 * x0;
        a1 += x1 * x1;
        a2 += x2 * x2;
        a3 += x3 * x3;
    }
    for (; i < n; i++)
        a0[0] += (double)x[i] * x[i];
    return a0[0] + a0[1] + a1[0] + a1[1] + a2[0] + a2[1] + a3[0] + a3[1];
}

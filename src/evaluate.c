/* Evaluation: the forward pass over a whole data set, in chunks of a
 * workspace's rows split over the workers, with the loss, the right
 * answers and, for predict, the class probabilities. */
#include <math.h>
#include <stdlib.h>

#include "trainer_impl.h"

/* z[0..C) := softmax(z), in double, shifted by the largest logit. */
static void softmax(float *z, int C)
{
    double top = z[0], sum = 0;
    for (int c = 1; c < C; c++)
        top = z[c] > top ? z[c] : top;
    double e[256];
    for (int c = 0; c < C; c++)
        sum += e[c] = exp((double)z[c] - top);
    for (int c = 0; c < C; c++)
        z[c] = (float)(e[c] / sum);
}

static void eval_part(pl_trainer *tr, int w)
{
    pl_ws *ws = tr->ws[w];
    for (int c = w; c < tr->job.chunks; c += tr->W) {
        long r0 = (long)c * tr->job.n / tr->job.chunks;
        long r1 = (long)(c + 1) * tr->job.n / tr->job.chunks;
        pl_ws_load(ws, tr->job.ds, tr->job.idx + r0, (int)(r1 - r0));
        pl_ws_set_dropout(ws, 0, 0); /* evaluation: every unit */
        float *logits = tr->job.probs ? tr->job.probs + r0 * tr->cfg.classes : NULL;
        tr->job.eval_loss[c] = pl_lstm_forward(ws, tr->pk, tr->params,
                                               &tr->job.eval_correct[c], logits);
        for (long r = r0; logits && r < r1; r++)
            softmax(tr->job.probs + r * tr->cfg.classes, tr->cfg.classes);
    }
}

/* The pool job of an evaluation: the packed weights, then worker w's
 * chunks, with subnormals flushed as in a step (cpu.c). */
static void eval_worker(void *ctx, int w)
{
    pl_trainer *tr = ctx;
    unsigned long fp = pl_fp_fast_enter();
    double t0 = tr->prof ? pl_seconds() : 0;
    pl_step_pack(tr, w, &t0);
    eval_part(tr, w);
    pl_fp_fast_leave(fp);
}

/* The forward pass over the whole of ds, in chunks of the workspace's rows
 * split over the workers: summed loss and right answers into *loss and
 * *right, class probabilities into probs (n, C) when it is not NULL. */
static pl_status forward_all(pl_trainer *tr, const pl_dataset *ds, float *probs, double *loss,
                             long *right, pl_error *err)
{
    if (ds->n == 0)
        return pl_fail(err, PL_ERR_ARG, "nothing to evaluate: the set is empty");
    /* sequences of values may be shorter than the training set's longest
     * (each is read over its own length); images are one shape */
    if ((ds->values ? ds->T > tr->T : ds->T != tr->T) || ds->D != tr->cfg.input)
        return pl_fail(err, PL_ERR_MISMATCH,
                       "data of %d x %d per item, the model expects %s%d x %d",
                       ds->T, ds->D, ds->values ? "at most " : "", tr->T, tr->cfg.input);
    if (ds->n > (size_t)INT32_MAX)
        return pl_fail(err, PL_ERR_TOO_LARGE, "at most %d items per evaluation",
                       INT32_MAX);
    int n = (int)ds->n;
    int chunks = (n + tr->cap - 1) / tr->cap;
    uint32_t *idx = malloc(sizeof *idx * (size_t)n);
    double *el = calloc((size_t)chunks, sizeof *el);
    int *ec = calloc((size_t)chunks, sizeof *ec);
    if (!idx || !el || !ec) {
        free(idx);
        free(el);
        free(ec);
        return pl_fail(err, PL_ERR_NOMEM, "cannot allocate for evaluating %d items", n);
    }
    for (int i = 0; i < n; i++)
        idx[i] = (uint32_t)i;
    tr->job.ds = ds;
    tr->job.idx = idx;
    tr->job.n = n;
    tr->job.chunks = chunks;
    tr->job.eval_loss = el;
    tr->job.eval_correct = ec;
    tr->job.probs = probs;
    pl_pool_run(tr->pool, eval_worker, tr);
    tr->job.probs = NULL;
    *loss = 0;
    *right = 0;
    for (int c = 0; c < chunks; c++) {
        *loss += el[c];
        *right += ec[c];
    }
    free(idx);
    free(el);
    free(ec);
    return PL_OK;
}

pl_status pl_trainer_evaluate(pl_trainer *tr, const pl_dataset *ds,
                              double *accuracy, double *loss, pl_error *err)
{
    if (!ds->labels)
        return pl_fail(err, PL_ERR_ARG, "nothing to evaluate against: the set has no labels");
    double l;
    long right;
    pl_status rc = forward_all(tr, ds, NULL, &l, &right, err);
    if (rc)
        return rc;
    if (accuracy)
        *accuracy = (double)right / (double)ds->n;
    if (loss)
        *loss = l / (double)ds->n;
    return PL_OK;
}

pl_status pl_trainer_predict(pl_trainer *tr, const pl_dataset *ds, float *probs, pl_error *err)
{
    double l;
    long right;
    return forward_all(tr, ds, probs, &l, &right, err);
}

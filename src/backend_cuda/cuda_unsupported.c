/* backend_cuda/cuda_unsupported.c — kernel families the CUDA plugin does not have yet. Each says
 * so with BN_ERR_UNSUPPORTED naming the kernel (never a silent fallback to the CPU). */
#include "backend_cuda/cuda_plugin.h"

static bn_status missing(const char *what)
{
    return bcu_error(BN_ERR_UNSUPPORTED, "the CUDA backend has no %s kernel yet", what);
}

bn_status bcu_no_index_select(const bn_tview *x, int dim, const bn_tview *index,
                              const bn_tview *out)
{
    (void)x, (void)dim, (void)index, (void)out;
    return missing("index_select");
}
bn_status bcu_no_gather(const bn_tview *x, int dim, const bn_tview *index, const bn_tview *out)
{
    (void)x, (void)dim, (void)index, (void)out;
    return missing("gather");
}
bn_status bcu_no_scatter(bn_scatter_op op, const bn_tview *out, int dim, const bn_tview *index,
                         const bn_tview *src)
{
    (void)op, (void)out, (void)dim, (void)index, (void)src;
    return missing("scatter");
}
bn_status bcu_no_sort(const bn_tview *x, int dim, bool descending, const bn_tview *values,
                      const bn_tview *indices)
{
    (void)x, (void)dim, (void)descending, (void)values, (void)indices;
    return missing("sort");
}
bn_status bcu_no_topk(const bn_tview *x, int64_t k, int dim, bool largest, const bn_tview *values,
                      const bn_tview *indices)
{
    (void)x, (void)k, (void)dim, (void)largest, (void)values, (void)indices;
    return missing("topk");
}
bn_status bcu_no_tri(const bn_tview *x, const bn_tview *out, int64_t diagonal, bool upper)
{
    (void)x, (void)out, (void)diagonal, (void)upper;
    return missing("tril/triu");
}

static bn_status no_row_norm(const bn_tview *x, const bn_tview *w, const bn_tview *b,
                             const bn_tview *y, const bn_tview *m, const bn_tview *r,
                             const bn_row_norm_geom *g, double eps)
{
    (void)x, (void)w, (void)b, (void)y, (void)m, (void)r, (void)g, (void)eps;
    return missing("row_norm (layer/RMS/group norm)");
}
static bn_status no_row_norm_backward(const bn_tview *gy, const bn_tview *x, const bn_tview *m,
                                      const bn_tview *r, const bn_tview *w, const bn_tview *gx,
                                      const bn_tview *gw, const bn_tview *gb,
                                      const bn_row_norm_geom *g)
{
    (void)gy, (void)x, (void)m, (void)r, (void)w, (void)gx, (void)gw, (void)gb, (void)g;
    return missing("row_norm_backward");
}
static bn_status no_bn_stats(const bn_tview *x, const bn_tview *m, const bn_tview *v)
{
    (void)x, (void)m, (void)v;
    return missing("batch_norm_stats");
}
static bn_status no_bn_apply(const bn_tview *x, const bn_tview *m, const bn_tview *v,
                             const bn_tview *w, const bn_tview *b, const bn_tview *y, double eps)
{
    (void)x, (void)m, (void)v, (void)w, (void)b, (void)y, (void)eps;
    return missing("batch_norm_apply");
}
static bn_status no_bn_backward(const bn_tview *gy, const bn_tview *x, const bn_tview *m,
                                const bn_tview *v, const bn_tview *w, const bn_tview *gx,
                                const bn_tview *gw, const bn_tview *gb, double eps, bool training)
{
    (void)gy, (void)x, (void)m, (void)v, (void)w, (void)gx, (void)gw, (void)gb, (void)eps,
        (void)training;
    return missing("batch_norm_backward");
}
static bn_status no_running(const bn_tview *rm, const bn_tview *rv, const bn_tview *m,
                            const bn_tview *v, double momentum, double unbias)
{
    (void)rm, (void)rv, (void)m, (void)v, (void)momentum, (void)unbias;
    return missing("running_stats_update");
}
static bn_status no_dropout(const bn_tview *mask, double p, uint64_t seed, uint64_t counter)
{
    (void)mask, (void)p, (void)seed, (void)counter;
    return missing("dropout_mask");
}
static bn_status no_embedding(const bn_tview *w, const bn_tview *i, const bn_tview *o)
{
    (void)w, (void)i, (void)o;
    return missing("embedding");
}
static bn_status no_embedding_backward(const bn_tview *go, const bn_tview *i, const bn_tview *gw)
{
    (void)go, (void)i, (void)gw;
    return missing("embedding_backward");
}

const bn_backend_nn bcu_nn_unsupported = {
    .row_norm = no_row_norm,
    .row_norm_backward = no_row_norm_backward,
    .batch_norm_stats = no_bn_stats,
    .batch_norm_apply = no_bn_apply,
    .batch_norm_backward = no_bn_backward,
    .running_stats_update = no_running,
    .dropout_mask = no_dropout,
    .embedding = no_embedding,
    .embedding_backward = no_embedding_backward,
};

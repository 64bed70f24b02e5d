/* backend/cpu/index.c — placeholder until this family's kernels land. */
#include "backend/cpu/cpu_kernels.h"

bn_status bn_cpu_index_select(const bn_tview *x, int dim, const bn_tview *index, const bn_tview *out)
{
    return bn__error(BN_ERR_UNSUPPORTED, "bn_cpu_index_select: not implemented yet");
}

bn_status bn_cpu_gather(const bn_tview *x, int dim, const bn_tview *index, const bn_tview *out)
{
    return bn__error(BN_ERR_UNSUPPORTED, "bn_cpu_gather: not implemented yet");
}

bn_status bn_cpu_scatter(bn_scatter_op op, const bn_tview *out, int dim, const bn_tview *index, const bn_tview *src)
{
    return bn__error(BN_ERR_UNSUPPORTED, "bn_cpu_scatter: not implemented yet");
}

bn_status bn_cpu_sort(const bn_tview *x, int dim, bool descending, const bn_tview *values, const bn_tview *indices)
{
    return bn__error(BN_ERR_UNSUPPORTED, "bn_cpu_sort: not implemented yet");
}

bn_status bn_cpu_topk(const bn_tview *x, int64_t k, int dim, bool largest, const bn_tview *values, const bn_tview *indices)
{
    return bn__error(BN_ERR_UNSUPPORTED, "bn_cpu_topk: not implemented yet");
}

bn_status bn_cpu_tri(const bn_tview *x, const bn_tview *out, int64_t diagonal, bool upper)
{
    return bn__error(BN_ERR_UNSUPPORTED, "bn_cpu_tri: not implemented yet");
}


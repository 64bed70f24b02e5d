/* backend/cpu/reduce.c — placeholder until this family's kernels land. */
#include "backend/cpu/cpu_kernels.h"

bn_status bn_cpu_reduce(bn_reduce_op op, const bn_tview *x, const bn_tview *out, uint32_t reduce_mask, const bn_reduce_params *p)
{
    return bn__error(BN_ERR_UNSUPPORTED, "bn_cpu_reduce: not implemented yet");
}

bn_status bn_cpu_cumsum(const bn_tview *x, const bn_tview *out, int dim)
{
    return bn__error(BN_ERR_UNSUPPORTED, "bn_cpu_cumsum: not implemented yet");
}

bn_status bn_cpu_softmax(const bn_tview *x, const bn_tview *out, int dim, bool log)
{
    return bn__error(BN_ERR_UNSUPPORTED, "bn_cpu_softmax: not implemented yet");
}


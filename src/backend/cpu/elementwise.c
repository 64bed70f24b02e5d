/* backend/cpu/elementwise.c — placeholder until this family's kernels land. */
#include "backend/cpu/cpu_kernels.h"

bn_status bn_cpu_unary(bn_unary_op op, const bn_tview *x, const bn_tview *out, const bn_unary_params *p)
{
    return bn__error(BN_ERR_UNSUPPORTED, "bn_cpu_unary: not implemented yet");
}

bn_status bn_cpu_binary(bn_binary_op op, const bn_tview *a, const bn_tview *b, const bn_tview *out)
{
    return bn__error(BN_ERR_UNSUPPORTED, "bn_cpu_binary: not implemented yet");
}

bn_status bn_cpu_where(const bn_tview *cond, const bn_tview *a, const bn_tview *b, const bn_tview *out)
{
    return bn__error(BN_ERR_UNSUPPORTED, "bn_cpu_where: not implemented yet");
}


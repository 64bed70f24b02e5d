/* backend/cpu/matmul.c — placeholder until this family's kernels land. */
#include "backend/cpu/cpu_kernels.h"

bn_status bn_cpu_matmul(const bn_tview *a, const bn_tview *b, const bn_tview *out)
{
    return bn__error(BN_ERR_UNSUPPORTED, "bn_cpu_matmul: not implemented yet");
}


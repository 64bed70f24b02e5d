/* backend/cpu/conv.c — placeholder until the conv family's kernels land. */
#include "backend/backend_conv.h"
#include "backend/cpu/cpu_kernels.h"

const bn_backend_conv bn_cpu_conv = {0};

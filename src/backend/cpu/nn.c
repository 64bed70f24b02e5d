/* backend/cpu/nn.c — placeholder until the norm/dropout/embedding kernels land. */
#include "backend/backend_nn.h"
#include "backend/cpu/cpu_kernels.h"

const bn_backend_nn bn_cpu_nn = {0};

/* backend/backend_nn.h — norms, dropout and embedding kernel family (placeholder until it
 * lands: the table's slots are defined with the kernels). */
#ifndef BORN_BACKEND_NN_H
#define BORN_BACKEND_NN_H

#include "backend/backend.h"

typedef struct bn_backend_nn {
    int placeholder;
} bn_backend_nn;

#endif

/* backend/backend_conv.h — the convolution and pooling kernel family (placeholder until it
 * lands: the table's slots are defined with the kernels). */
#ifndef BORN_BACKEND_CONV_H
#define BORN_BACKEND_CONV_H

#include "backend/backend.h"

typedef struct bn_backend_conv {
    int placeholder;
} bn_backend_conv;

#endif

/* born/born.h — the whole public API in one include: tensors (tensor.h), operations (ops.h),
 * build and machine information (info.h). */
#ifndef BORN_BORN_H
#define BORN_BORN_H

#include "born/data.h"
#include "born/autograd.h"
#include "born/checkpoint.h"
#include "born/cuda.h"
#include "born/info.h"
#include "born/io.h"
#include "born/optim.h"
#include "born/nn.h"
#include "born/ops.h"
#include "born/tensor.h"
#include "born/train.h"

#endif

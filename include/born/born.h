/* born/born.h — the whole public API in one include: tensors (tensor.h), operations (ops.h),
 * autograd, nn modules, optimizers, data, training, mixed precision (amp.h), transformer
 * building blocks (transformer.h), files, CUDA, build and machine information (info.h). */
#ifndef BORN_BORN_H
#define BORN_BORN_H

#include "born/amp.h"
#include "born/data.h"
#include "born/gpt.h"
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
#include "born/transformer.h"

#endif

// blockllm-go libtorch shim: the tensor handle behind bt_tensor, shared by the shim's
// translation units (shim.cpp makes and frees handles; dist.cpp only reads them).
#ifndef BLOCKLLM_HANDLE_H
#define BLOCKLLM_HANDLE_H

#include <ATen/core/Tensor.h>

namespace bt {

struct Handle {
  at::Tensor t;
};

}  // namespace bt

#endif

# Sourced by install-deps.sh and find-libtorch.sh: the one probe for a Python torch.
#
# python_torch prints three lines (the torch package directory, torch.__version__, the
# C++11 ABI flag) and returns 0 only for a real torch install: a regular package (not
# a namespace package such as this repository's Go directory torch/ when Python runs
# from the repository root or has it on PYTHONPATH) whose directory holds the C++
# headers and libraries the shim links (include/torch, lib/libtorch_cpu.so or
# lib/libtorch.so). It runs Python from / so that the caller's working directory is
# never on sys.path. BLOCKLLM_NO_PYTHON_TORCH=1 turns the probe off.
python_torch() {
  [ "${BLOCKLLM_NO_PYTHON_TORCH:-0}" != 1 ] || return 1
  command -v python3 >/dev/null 2>&1 || return 1
  (cd / && python3 - 2>/dev/null) <<'PY'
import os, sys
try:
    import torch
except Exception:
    sys.exit(1)
f = getattr(torch, "__file__", None)
if not f:
    sys.exit(1)  # a namespace package: a directory named torch, not PyTorch
root = os.path.dirname(os.path.abspath(f))
lib = os.path.join(root, "lib")
if not os.path.isdir(os.path.join(root, "include", "torch")):
    sys.exit(1)
if not any(os.path.exists(os.path.join(lib, n)) for n in ("libtorch_cpu.so", "libtorch.so")):
    sys.exit(1)
try:
    abi = int(torch._C._GLIBCXX_USE_CXX11_ABI)
except Exception:
    sys.exit(1)
print(root)
print(getattr(torch, "__version__", "?"))
print(abi)
PY
}

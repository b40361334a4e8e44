# blockllm-go build. `make test` and `make demo` work from a clean clone on Debian
# (as root they install what is missing: see scripts/install-deps.sh).
SHELL := /bin/bash
GO ?= go
SHIM := build/lib/libblockllm_torch.so
ENVFILE := build/libtorch.env
CXX ?= g++
GOTESTFLAGS ?=

.PHONY: all deps shim build test bench demo test-gpu gpu-binaries gpu-commands clean env

all: build

deps:
	@bash scripts/install-deps.sh

# The env file is rewritten only when what find-libtorch reports changes, so the
# shim is rebuilt only when its sources or the libtorch change.
env:
	@mkdir -p build
	@bash scripts/find-libtorch.sh > $(ENVFILE).tmp || { rm -f $(ENVFILE).tmp; exit 1; }
	@if cmp -s $(ENVFILE).tmp $(ENVFILE); then rm $(ENVFILE).tmp; else mv $(ENVFILE).tmp $(ENVFILE); fi

# (The env file is not included into this Makefile: make would try to remake it before
# `deps` has installed libtorch and print find-libtorch's error on a fresh machine.)
$(ENVFILE):
	@$(MAKE) --no-print-directory env

shim: deps env
	@$(MAKE) --no-print-directory $(SHIM)

$(SHIM): $(wildcard cgo/csrc/*.cpp cgo/csrc/*.h) $(ENVFILE)
	@mkdir -p build/lib
	@CXX=$(CXX) bash scripts/build-shim.sh $(ENVFILE) $(SHIM).tmp
	@mv $(SHIM).tmp $(SHIM)

build: shim
	$(GO) build ./...

test: shim
	$(GO) vet ./...
	$(GO) test $(GOTESTFLAGS) ./...

bench: shim
	$(GO) test -run XXX -bench . -benchtime 3x ./torch/
	$(GO) run ./cmd/bench --model llama-20m --method adamw --steps 5
	$(GO) run ./cmd/bench --model llama-20m --method blockllm --steps 5

demo: shim
	$(GO) run ./cmd/finetune
	$(GO) run ./cmd/pretrain

# GPU checks: see scripts/gpu-check.sh and docs/DESIGN.md ("GPU"). gpu-binaries builds the
# test and bench binaries that the script runs (so it also works where Go is absent).
test-gpu:
	bash scripts/gpu-check.sh

gpu-binaries:
	@mkdir -p build/gpu
	$(GO) test -c -ldflags='-s -w' -o build/gpu/torch.test ./torch
	$(GO) test -c -ldflags='-s -w' -o build/gpu/hf.test ./hf
	$(GO) test -c -ldflags='-s -w' -o build/gpu/hf_llama.test ./hf/llama
	$(GO) test -c -ldflags='-s -w' -o build/gpu/hf_roberta.test ./hf/roberta
	$(GO) test -c -ldflags='-s -w' -o build/gpu/blockllm.test ./blockllm
	$(GO) build -ldflags='-s -w' -o build/gpu/bench ./cmd/bench

# the commands, for gpu-check.sh's CMDS=1 step (GPU_BIN=build/gpu-cmd)
gpu-commands:
	@mkdir -p build/gpu-cmd
	$(GO) build -ldflags='-s -w' -o build/gpu-cmd/pretrain ./cmd/pretrain
	$(GO) build -ldflags='-s -w' -o build/gpu-cmd/eval ./cmd/eval
	$(GO) build -ldflags='-s -w' -o build/gpu-cmd/finetune ./cmd/finetune
	$(GO) build -ldflags='-s -w' -o build/gpu-cmd/generate ./cmd/generate

clean:
	rm -rf build

package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/blockllm/blockllm-go/data"
	"github.com/blockllm/blockllm-go/hf/config"
	"github.com/blockllm/blockllm-go/hf/llama"
	"github.com/blockllm/blockllm-go/hf/safetensors"
	"github.com/blockllm/blockllm-go/hf/tokenizer"
	"github.com/blockllm/blockllm-go/torch"
)

// newModel builds the model: a preset or config.json (random init) or a
// checkpoint directory (loaded).
func newModel(o *options, tok *tokenizer.Tokenizer, dev torch.Device, dt torch.DType, info io.Writer, seed uint64) (*llama.Model, error) {
	lo := o.Memory.LlamaOptions(dev, dt, o.fusedSDPA)
	name := o.model
	var c *config.LlamaConfig
	if name == "" {
		var err error
		if c, err = config.ParseLlama(data.LlamaDemoConfig); err != nil {
			return nil, err
		}
		return llama.New(c, lo, seed)
	}
	if st, err := os.Stat(name); err == nil {
		if st.IsDir() {
			// A directory is a checkpoint to continue from: without loadable weights it is
			// an error (never a silent random initialisation). A new model from its
			// config is --model DIR/config.json.
			m, err := llama.Load(name, lo)
			if err != nil {
				return nil, modelDirError(name, err)
			}
			return m, nil
		}
		if c, err = config.LoadLlama(name); err != nil {
			return nil, err
		}
	} else {
		p, perr := config.LlamaPreset(name)
		if perr != nil {
			return nil, fmt.Errorf("--model %s: not a file or directory, nor a preset (%s)", name, strings.Join(config.LlamaPresets(), ", "))
		}
		c = p
		if v := tok.VocabSize(); v != c.VocabSize {
			fmt.Fprintf(info, "pretrain: %s: vocab_size %d -> %d (the tokenizer's)\n", name, c.VocabSize, v)
			c.VocabSize = v
		}
		bos, eos := tok.BOS(), tok.EOS()
		if bos >= 0 {
			c.BOSTokenID = &bos
		}
		if eos >= 0 {
			c.EOSTokenIDs = []int{eos}
		}
	}
	return llama.New(c, lo, seed)
}

// checkModel checks, before any data is read, that a checkpoint directory given as
// --model has weights to load (their headers are read, not the tensors).
func checkModel(model string) error {
	if !isCheckpoint(model) {
		return nil
	}
	src, err := safetensors.OpenModel(model)
	if err != nil {
		return modelDirError(model, err)
	}
	return src.Close()
}

func modelDirError(dir string, err error) error {
	return fmt.Errorf("--model %s: %w (to train a new model from this configuration, pass --model %s)",
		dir, err, filepath.Join(dir, "config.json"))
}

// isCheckpoint reports whether --model names a directory (a checkpoint to continue).
func isCheckpoint(model string) bool {
	st, err := os.Stat(model)
	return err == nil && st.IsDir()
}

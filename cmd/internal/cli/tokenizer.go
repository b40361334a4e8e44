package cli

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/blockllm/blockllm-go/data"
	"github.com/blockllm/blockllm-go/hf/config"
	"github.com/blockllm/blockllm-go/hf/tokenizer"
)

// LoadTokenizer returns the tokenizer of a command and its tokenizer.json bytes (to
// save next to a trained model). path is --tokenizer (a tokenizer.json or a directory
// holding one); when empty, the tokenizer comes from model (--model: a checkpoint
// directory, or a config.json file next to which it lies); when both are empty, from
// the embedded demo tokenizer demo (a data.*Tokenizer name; "" means none: an error).
// A model that is neither a file nor a directory (a preset name) needs --tokenizer.
func LoadTokenizer(path, model, demo string) (*tokenizer.Tokenizer, []byte, error) {
	if path == "" && model != "" {
		st, err := os.Stat(model)
		switch {
		case err == nil && st.IsDir():
			path = model
		case err == nil:
			path = filepath.Dir(model) // next to a config.json
		default:
			if _, perr := config.LlamaPreset(model); perr == nil {
				return nil, nil, fmt.Errorf("--model %s is a preset: pass --tokenizer FILE (a Hugging Face tokenizer.json)", model)
			}
			return nil, nil, fmt.Errorf("--model %s: %w", model, err)
		}
	}
	if path == "" {
		if demo == "" {
			return nil, nil, fmt.Errorf("no tokenizer: pass --tokenizer FILE (a Hugging Face tokenizer.json)")
		}
		b, err := data.Tokenizer(demo)
		if err != nil {
			return nil, nil, err
		}
		t, err := tokenizer.FromJSON(b)
		return t, b, err
	}
	if st, err := os.Stat(path); err == nil && st.IsDir() {
		path = filepath.Join(path, "tokenizer.json")
	}
	b, err := os.ReadFile(path)
	if err != nil {
		hint := "pass --tokenizer FILE, a Hugging Face tokenizer.json"
		if errors.Is(err, fs.ErrNotExist) {
			hint += "; slow tokenizers (vocab.json, tokenizer.model) are not supported: save a fast tokenizer.json with transformers"
		}
		return nil, nil, fmt.Errorf("tokenizer: %w (%s)", err, hint)
	}
	t, err := tokenizer.FromJSON(b)
	if err != nil {
		return nil, nil, fmt.Errorf("tokenizer %s: %w", path, err)
	}
	return t, b, nil
}

// WriteTokenizer writes tokJSON as dir/tokenizer.json unless dir has one already (a
// saved checkpoint copies its source's tokenizer files).
func WriteTokenizer(dir string, tokJSON []byte) error {
	p := filepath.Join(dir, "tokenizer.json")
	if _, err := os.Stat(p); err == nil {
		return nil
	}
	return os.WriteFile(p, tokJSON, 0o644)
}

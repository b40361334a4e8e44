package generate

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// Transformers' GenerationConfig defaults for the keys Config reads.
const (
	DefaultTemperature = 1.0
	DefaultTopK        = 50
	DefaultTopP        = 1.0
)

// Config is what a model directory's generation_config.json says about decoding
// (the keys transformers' generate reads by default; others are ignored). Absent
// keys are nil.
type Config struct {
	// Path is the file read ("" when the directory has none).
	Path        string
	DoSample    *bool    // do_sample
	Temperature *float64 // temperature
	TopK        *int     // top_k (null: no limit, read as 0)
	TopP        *float64 // top_p
	// EOS is eos_token_id (one id or a list).
	EOS []int
	// MaxNewTokens is max_new_tokens.
	MaxNewTokens *int
}

// LoadConfig reads dir/generation_config.json; a directory without one gives an
// empty Config (transformers' defaults).
func LoadConfig(dir string) (*Config, error) {
	p := filepath.Join(dir, "generation_config.json")
	b, err := os.ReadFile(p)
	if errors.Is(err, fs.ErrNotExist) {
		return &Config{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("generate: %w", err)
	}
	c, err := ParseConfig(b)
	if err != nil {
		return nil, fmt.Errorf("generate: %s: %w", p, err)
	}
	c.Path = p
	return c, nil
}

// ParseConfig parses generation_config.json's content.
func ParseConfig(data []byte) (*Config, error) {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(data, &raw); err != nil {
		return nil, err
	}
	c := &Config{}
	get := func(key string, dst any) error {
		v, ok := raw[key]
		if !ok || string(v) == "null" {
			return nil
		}
		if err := json.Unmarshal(v, dst); err != nil {
			return fmt.Errorf("key %q: %s is not a %s", key, v, kind(dst))
		}
		return nil
	}
	var doSample bool
	var temperature, topP float64
	var topK, maxNew int
	if v, ok := raw["do_sample"]; ok && string(v) != "null" {
		if err := get("do_sample", &doSample); err != nil {
			return nil, err
		}
		c.DoSample = &doSample
	}
	if v, ok := raw["temperature"]; ok && string(v) != "null" {
		if err := get("temperature", &temperature); err != nil {
			return nil, err
		}
		if temperature < 0 {
			return nil, fmt.Errorf("key \"temperature\": %g must not be negative", temperature)
		}
		c.Temperature = &temperature
	}
	if v, ok := raw["top_k"]; ok {
		if string(v) != "null" {
			if err := get("top_k", &topK); err != nil {
				return nil, err
			}
			if topK < 0 {
				return nil, fmt.Errorf("key \"top_k\": %d must not be negative", topK)
			}
		}
		c.TopK = &topK
	}
	if v, ok := raw["top_p"]; ok && string(v) != "null" {
		if err := get("top_p", &topP); err != nil {
			return nil, err
		}
		if !(topP >= 0 && topP <= 1) {
			return nil, fmt.Errorf("key \"top_p\": %g is not in [0, 1]", topP)
		}
		c.TopP = &topP
	}
	if v, ok := raw["max_new_tokens"]; ok && string(v) != "null" {
		if err := get("max_new_tokens", &maxNew); err != nil {
			return nil, err
		}
		c.MaxNewTokens = &maxNew
	}
	if v, ok := raw["eos_token_id"]; ok && string(v) != "null" {
		var one int
		if err := json.Unmarshal(v, &one); err == nil {
			c.EOS = []int{one}
		} else if err := json.Unmarshal(v, &c.EOS); err != nil {
			return nil, fmt.Errorf("key \"eos_token_id\": %s is not an integer or a list of integers", v)
		}
	}
	return c, nil
}

func kind(dst any) string {
	switch dst.(type) {
	case *bool:
		return "boolean"
	case *int:
		return "integer"
	default:
		return "number"
	}
}

// Sampling is the decoding the file asks for, as transformers' generate reads it:
// greedy unless do_sample is true; when sampling, temperature, top_k and top_p from
// the file or transformers' defaults (1, 50, 1).
func (c *Config) Sampling() Sampling {
	s := Sampling{Temperature: DefaultTemperature, TopK: DefaultTopK, TopP: DefaultTopP}
	if c.Temperature != nil {
		s.Temperature = *c.Temperature
	}
	if c.TopK != nil {
		s.TopK = *c.TopK
	}
	if c.TopP != nil {
		s.TopP = *c.TopP
	}
	if c.DoSample == nil || !*c.DoSample {
		s.Temperature = 0
	}
	return s
}

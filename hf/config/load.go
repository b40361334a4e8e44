package config

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
)

// Config is what LlamaConfig and RobertaConfig have in common.
type Config interface {
	// ModelType returns the transformers model_type ("llama", "roberta").
	ModelType() string
	// Validate checks the config, naming the first bad key.
	Validate() error
	// Marshal returns config.json bytes as transformers v5 writes them.
	Marshal() ([]byte, error)
	// Save writes dir/config.json.
	Save(dir string) error
}

var (
	_ Config = (*LlamaConfig)(nil)
	_ Config = (*RobertaConfig)(nil)
)

// ModelType returns the model_type of the config at pathOrDir (a
// config.json file or a directory holding one). When the key is absent it is
// inferred from architectures (LlamaForCausalLM → "llama",
// Roberta* → "roberta"). It does not validate the rest of the config.
func ModelType(pathOrDir string) (string, error) {
	m, err := LoadJSON(pathOrDir)
	if err != nil {
		return "", err
	}
	mt, err := modelTypeOf(m)
	if err != nil {
		return "", withPath(err, resolve(pathOrDir))
	}
	return mt, nil
}

func modelTypeOf(m map[string]json.RawMessage) (string, error) {
	o := newObject(m)
	var mt string
	if err := o.string("model_type", &mt); err != nil {
		return "", err
	}
	if mt != "" {
		return mt, nil
	}
	var arch []string
	if err := o.strings("architectures", &arch); err != nil {
		return "", err
	}
	for _, a := range arch {
		switch l := strings.ToLower(a); {
		case strings.HasPrefix(l, "llama"):
			return "llama", nil
		case strings.HasPrefix(l, "roberta"):
			return "roberta", nil
		}
	}
	return "", keyErr("model_type", "missing, and architectures %v do not identify the model", arch)
}

// Parse decodes and validates a config.json of a supported model type,
// returning a *LlamaConfig or a *RobertaConfig.
func Parse(data []byte) (Config, error) {
	m, err := parseObject(data)
	if err != nil {
		return nil, err
	}
	mt, err := modelTypeOf(m)
	if err != nil {
		return nil, err
	}
	var c Config
	switch mt {
	case "llama":
		c, err = llamaFromMap(m)
	case "roberta":
		c, err = robertaFromMap(m)
	default:
		return nil, keyErr("model_type", "%q is not supported (want llama or roberta)", mt)
	}
	if err != nil {
		return nil, err
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return c, nil
}

// Load reads and validates the config at pathOrDir (a config.json file or a
// directory holding one), whichever supported model type it is.
func Load(pathOrDir string) (Config, error) {
	path := resolve(pathOrDir)
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	c, err := Parse(data)
	if err != nil {
		return nil, withPath(err, path)
	}
	return c, nil
}

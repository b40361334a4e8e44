package config

import (
	"fmt"
	"strings"
)

// llamaPresets are the Llama sizes of the GaLore paper's configs
// (hidden, intermediate, heads, layers); all use vocab 32000, rms_norm_eps
// 1e-6 and untied embeddings.
var llamaPresets = []struct {
	name                                string
	hidden, intermediate, heads, layers int
	maxPos                              int
}{
	{"llama-tiny", 64, 172, 4, 2, 1024},
	{"llama-20m", 256, 688, 4, 4, 1024},
	{"llama-60m", 512, 1376, 8, 8, 1024},
	{"llama-130m", 768, 2048, 12, 12, 1024},
	{"llama-350m", 1024, 2736, 16, 24, 1024},
	{"llama-1b", 2048, 5461, 32, 24, 1024},
	{"llama-7b", 4096, 11008, 32, 32, 2048},
}

// LlamaPresets returns the preset names LlamaPreset accepts, smallest first.
func LlamaPresets() []string {
	out := make([]string, len(llamaPresets))
	for i, p := range llamaPresets {
		out[i] = p.name
	}
	return out
}

// LlamaPreset returns a new config for one of the GaLore Llama sizes:
// llama-tiny (64/172/4 heads/2 layers), llama-20m (256/688/4/4), llama-60m
// (512/1376/8/8), llama-130m (768/2048/12/12), llama-350m (1024/2736/16/24),
// llama-1b (2048/5461/32/24) or llama-7b (4096/11008/32/32), given as
// hidden/intermediate/heads/layers. All have vocab 32000, no grouped-query
// attention, rms_norm_eps 1e-6, rope_theta 10000, max_position_embeddings
// 1024 (2048 for llama-7b), untied embeddings, initializer_range 0.02, and
// GaLore's token ids (bos 0, eos 1, no pad). DType is left empty. Names are
// case-insensitive, and "_" may stand for "-" ("llama_60m" as in GaLore's
// file names).
func LlamaPreset(name string) (*LlamaConfig, error) {
	key := strings.ReplaceAll(strings.ToLower(strings.TrimSpace(name)), "_", "-")
	for _, p := range llamaPresets {
		if p.name != key {
			continue
		}
		bos, eos := 0, 1
		return &LlamaConfig{
			VocabSize:             32000,
			HiddenSize:            p.hidden,
			IntermediateSize:      p.intermediate,
			NumHiddenLayers:       p.layers,
			NumAttentionHeads:     p.heads,
			MaxPositionEmbeddings: p.maxPos,
			RMSNormEps:            1e-6,
			RopeTheta:             DefaultRopeTheta,
			HiddenAct:             "silu",
			InitializerRange:      0.02,
			BOSTokenID:            &bos,
			EOSTokenIDs:           []int{eos},
			Architectures:         []string{"LlamaForCausalLM"},
		}, nil
	}
	return nil, fmt.Errorf("config: unknown Llama preset %q (known: %s)", name, strings.Join(LlamaPresets(), ", "))
}

package blockllm

import (
	"fmt"
	"strings"

	"github.com/blockllm/blockllm-go/hf/nn"
)

// Methods lists the training methods NewOptimizer builds, BlockLLM first.
var Methods = []string{"blockllm", "adamw", "badam", "lisa", "galore", "lora"}

// ParseMethods parses a comma-separated list of methods ("blockllm,adamw"),
// case-insensitively, rejecting unknown and repeated names.
func ParseMethods(list string) ([]string, error) {
	var out []string
	seen := map[string]bool{}
	for _, f := range strings.Split(list, ",") {
		m := strings.ToLower(strings.TrimSpace(f))
		if m == "" {
			continue
		}
		ok := false
		for _, k := range Methods {
			ok = ok || k == m
		}
		if !ok {
			return nil, fmt.Errorf("blockllm: unknown method %q (want %s)", m, strings.Join(Methods, ", "))
		}
		if seen[m] {
			return nil, fmt.Errorf("blockllm: method %q listed twice", m)
		}
		seen[m] = true
		out = append(out, m)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("blockllm: no method given (want one or more of %s)", strings.Join(Methods, ", "))
	}
	return out, nil
}

// MethodConfig names a training method and its settings, as the commands take them
// from flags. Zero values mean the defaults of each method's config.
type MethodConfig struct {
	// Method is one of Methods.
	Method string
	// Adam holds the AdamW hyper-parameters shared by every method.
	Adam AdamConfig
	// BlockLLM configures BlockLLM (its Adam field is replaced by Adam).
	BlockLLM BlockLLMConfig
	// SwitchEvery is the block switch interval of BAdam and LISA (0: their
	// defaults); LISALayers the number of layers LISA trains at a time.
	SwitchEvery int
	LISALayers  int
	// BAdamOrder is the order in which BAdam visits the layers.
	BAdamOrder BlockOrder
	// Seed drives the random choices of BAdam (random order) and LISA, and BlockLLM's
	// random first block.
	Seed uint64
	// Variant names a BlockLLM variant in labels ("reference", "--penalty exp-freq");
	// empty for the default settings.
	Variant string
	// GaLore and LoRA configure those methods (their Adam fields are replaced by Adam,
	// a zero LoRA seed by Seed).
	GaLore GaLoreConfig
	LoRA   LoRAConfig
}

// NewOptimizer returns the optimizer c names over m.
func NewOptimizer(m nn.Model, c MethodConfig) (Optimizer, error) {
	switch c.Method {
	case "blockllm":
		bc := c.BlockLLM
		bc.Adam = c.Adam
		if bc.Seed == 0 {
			bc.Seed = c.Seed
		}
		return NewBlockLLM(m, bc)
	case "adamw":
		return NewAdamW(m, c.Adam)
	case "badam":
		return NewBAdam(m, BAdamConfig{Adam: c.Adam, SwitchEvery: c.SwitchEvery, Order: c.BAdamOrder, Seed: c.Seed})
	case "lisa":
		return NewLISA(m, LISAConfig{Adam: c.Adam, SwitchEvery: c.SwitchEvery, Layers: c.LISALayers, Seed: c.Seed})
	case "galore":
		gc := c.GaLore
		gc.Adam = c.Adam
		return NewGaLore(m, gc)
	case "lora":
		lc := c.LoRA
		lc.Adam = c.Adam
		if lc.Seed == 0 {
			lc.Seed = c.Seed
		}
		return NewLoRA(m, lc)
	}
	return nil, fmt.Errorf("blockllm: unknown method %q (want %s)", c.Method, strings.Join(Methods, ", "))
}

// Label is the name of the method in result tables: "BlockLLM (sparsity 0.95)" (with
// ", eligible <patterns>" when eligibility patterns are set), "Full AdamW", "BAdam",
// "LISA", "GaLore (rank 128)", "LoRA (r 8)".
func (c MethodConfig) Label() string {
	switch c.Method {
	case "blockllm":
		s := c.BlockLLM.Sparsity
		if s == 0 {
			s = DefaultSparsity
		}
		name := "BlockLLM"
		if c.Variant != "" {
			name += " " + c.Variant
		}
		if len(c.BlockLLM.Eligible) > 0 && c.Variant == "" {
			return fmt.Sprintf("%s (sparsity %.2g, eligible %s)", name, s, strings.Join(c.BlockLLM.Eligible, ","))
		}
		return fmt.Sprintf("%s (sparsity %.2g)", name, s)
	case "adamw":
		return "Full AdamW"
	case "badam":
		return "BAdam"
	case "lisa":
		return "LISA"
	case "galore":
		return fmt.Sprintf("GaLore (rank %d)", c.GaLore.withDefaults().Rank)
	case "lora":
		return fmt.Sprintf("LoRA (r %d)", c.LoRA.withDefaults().Rank)
	}
	return c.Method
}

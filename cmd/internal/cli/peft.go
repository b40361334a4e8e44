package cli

import (
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"

	"github.com/blockllm/blockllm-go/blockllm"
)

// PEFT holds the flags of GaLore and LoRA: --lora-r, --lora-alpha, --lora-dropout,
// --lora-targets, --galore-rank, --galore-gap, --galore-scale and --galore-targets.
// Zero values (a negative dropout) mean the command's defaults, which the command sets
// with Defaults before Methods.Configs.
type PEFT struct {
	LoRARank      int
	LoRAAlpha     float64
	LoRADropout   float64
	LoRATargets   string
	GaLoreRank    int
	GaLoreGap     int
	GaLoreScale   float64
	GaLoreTargets string
	// LoRATrainRest trains every non-adapted parameter in full (a model trained from
	// scratch: the GaLore paper's LoRA pretraining baseline); set by the command.
	LoRATrainRest bool
}

// Register defines the flags on fs; loraHelp and galoreHelp say what the defaults are
// for the command.
func (p *PEFT) Register(fs *flag.FlagSet, loraHelp, galoreHelp string) {
	fs.IntVar(&p.LoRARank, "lora-r", 0, "LoRA rank r (0: "+loraHelp+")")
	fs.Float64Var(&p.LoRAAlpha, "lora-alpha", 0, "LoRA alpha: the adapters' output is scaled by alpha/r (0: the default above)")
	fs.Float64Var(&p.LoRADropout, "lora-dropout", -1, "LoRA dropout on the adapter input (-1: the default above)")
	fs.StringVar(&p.LoRATargets, "lora-targets", "", "LoRA target modules, peft's target_modules: comma-separated module names or suffixes\n"+
		"(q_proj,v_proj), or all-linear (empty: the default above)")
	fs.IntVar(&p.GaLoreRank, "galore-rank", 0, "GaLore rank of the gradient projection (0: "+galoreHelp+")")
	fs.IntVar(&p.GaLoreGap, "galore-gap", 0, "GaLore update_proj_gap: steps between projection refreshes (0: the default above)")
	fs.Float64Var(&p.GaLoreScale, "galore-scale", 0, "GaLore scale alpha of the projected-back update (0: the default above)")
	fs.StringVar(&p.GaLoreTargets, "galore-targets", "", "GaLore target modules: comma-separated substrings of module names\n"+
		"(empty: the authors' lists, attn,mlp for Llama and query,value,key,intermediate.dense,output.dense for RoBERTa)")
}

// Validate checks the values.
func (p *PEFT) Validate() error {
	switch {
	case p.LoRARank < 0 || p.GaLoreRank < 0 || p.GaLoreGap < 0:
		return fmt.Errorf("--lora-r, --galore-rank and --galore-gap must not be negative")
	case p.LoRAAlpha < 0 || math.IsNaN(p.LoRAAlpha) || math.IsInf(p.LoRAAlpha, 0):
		return fmt.Errorf("--lora-alpha %g must be positive", p.LoRAAlpha)
	case p.LoRADropout >= 1 || math.IsNaN(p.LoRADropout) || (p.LoRADropout < 0 && p.LoRADropout != -1):
		return fmt.Errorf("--lora-dropout %g outside [0, 1) (-1: the default)", p.LoRADropout)
	case p.GaLoreScale < 0 || math.IsNaN(p.GaLoreScale) || math.IsInf(p.GaLoreScale, 0):
		return fmt.Errorf("--galore-scale %g must be positive", p.GaLoreScale)
	}
	return nil
}

// Defaults fills the flags left at their zero values from the command's settings.
func (p *PEFT) Defaults(lora blockllm.LoRAConfig, galore blockllm.GaLoreConfig) {
	if p.LoRARank == 0 {
		p.LoRARank = lora.Rank
	}
	if p.LoRAAlpha == 0 {
		p.LoRAAlpha = lora.Alpha
	}
	if p.LoRADropout < 0 {
		p.LoRADropout = lora.Dropout
	}
	if p.GaLoreRank == 0 {
		p.GaLoreRank = galore.Rank
	}
	if p.GaLoreGap == 0 {
		p.GaLoreGap = galore.UpdateProjGap
	}
	if p.GaLoreScale == 0 {
		p.GaLoreScale = galore.Scale
	}
}

// Apply sets c's LoRA and GaLore settings from the flags.
func (p *PEFT) Apply(c *blockllm.MethodConfig) {
	c.LoRA = blockllm.LoRAConfig{Rank: p.LoRARank, Alpha: p.LoRAAlpha, Dropout: max(0, p.LoRADropout),
		Targets: SplitList(p.LoRATargets), TrainRest: p.LoRATrainRest}
	c.GaLore = blockllm.GaLoreConfig{Rank: p.GaLoreRank, UpdateProjGap: p.GaLoreGap, Scale: p.GaLoreScale,
		Targets: SplitList(p.GaLoreTargets)}
}

// Settings lists the flags as key-value pairs for Settings (a resumed run must match).
func (p *PEFT) Settings() []any {
	return []any{"lora-r", p.LoRARank, "lora-alpha", p.LoRAAlpha, "lora-dropout", p.LoRADropout, "lora-targets", p.LoRATargets,
		"galore-rank", p.GaLoreRank, "galore-gap", p.GaLoreGap, "galore-scale", p.GaLoreScale, "galore-targets", p.GaLoreTargets}
}

// SaveLoRA saves what a LoRA run trained besides the model's merged weights: when opt is
// LoRA, the adapter in peft's layout in dir/adapter (adapter_config.json,
// adapter_model.safetensors; base is the base model's directory, "" for a model made
// from scratch) and says so on info. It does nothing for other methods.
func SaveLoRA(opt blockllm.Optimizer, dir, base string, info io.Writer, name, label string) error {
	l, ok := opt.(*blockllm.LoRA)
	if !ok {
		return nil
	}
	if base != "" {
		if st, err := os.Stat(base); err == nil && st.IsDir() {
			if abs, err := filepath.Abs(base); err == nil {
				base = abs
			}
		}
	}
	ad := filepath.Join(dir, "adapter")
	if err := l.SaveAdapter(ad, blockllm.AdapterInfo{BaseModel: base}); err != nil {
		return err
	}
	fmt.Fprintf(info, "%s: %s: saved the adapter in peft's layout to %s\n", name, label, ad)
	return nil
}

// SaveModel saves a trained model with save (its Hugging Face layout) to dir: for LoRA
// the merged model (the adapters merged into the weights, which are restored after),
// plus the adapter alone in dir/adapter (SaveLoRA).
func SaveModel(opt blockllm.Optimizer, save func(dir string) error, dir, base string, info io.Writer, name, label string) error {
	l, ok := opt.(*blockllm.LoRA)
	if !ok {
		return save(dir)
	}
	if err := l.Merged(func() error { return save(dir) }); err != nil {
		return err
	}
	return SaveLoRA(opt, dir, base, info, name, label)
}

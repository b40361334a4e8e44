package cli

import (
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/blockllm/blockllm-go/blockllm"
	"github.com/blockllm/blockllm-go/hf/llama"
	"github.com/blockllm/blockllm-go/torch"
)

// SplitList splits a comma-separated flag value, trimming spaces and dropping empty
// items.
func SplitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// NoArgs rejects positional arguments left after the flags.
func NoArgs(fs *flag.FlagSet) error {
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q (flags start with -)", fs.Arg(0))
	}
	return nil
}

// Output holds the --json, --plot and --progress flags of the training commands.
type Output struct {
	JSON     bool
	Plot     string
	Progress bool
}

// Register defines the flags on fs.
func (o *Output) Register(fs *flag.FlagSet) {
	fs.BoolVar(&o.JSON, "json", false, "write JSON lines (steps, selections, evaluations, results) to stdout instead of the table")
	fs.StringVar(&o.Plot, "plot", "", "write a PNG of the training loss curves to `FILE`")
	fs.BoolVar(&o.Progress, "progress", true, "show a progress bar on stderr")
}

// Methods holds the flags that choose and configure the training methods: --method,
// BlockLLM's --sparsity, --patience and --eligible, BAdam's and LISA's --switch-every
// and --lisa-layers, and GaLore's and LoRA's (PEFT, registered by the command with its
// defaults). Sparsity and Patience 0 mean "the command's default" (which the command
// sets before Configs).
type Methods struct {
	List        string
	Sparsity    float64
	Patience    int
	Eligible    string
	SwitchEvery int
	LISALayers  int
	BAdamOrder  string
	PEFT
}

// Register defines the flags on fs; sparsityHelp, patienceHelp and eligibleHelp say
// what 0 or empty mean for the command.
func (m *Methods) Register(fs *flag.FlagSet, sparsityHelp, patienceHelp, eligibleHelp string) {
	fs.StringVar(&m.List, "method", "blockllm,adamw", "training methods, a comma list of "+strings.Join(blockllm.Methods, ", "))
	fs.Float64Var(&m.Sparsity, "sparsity", 0, "BlockLLM sparsity: the fraction of eligible parameters left frozen ("+sparsityHelp+")")
	fs.IntVar(&m.Patience, "patience", 0, "BlockLLM patience m: the loss window of the reselection trigger ("+patienceHelp+")")
	fs.StringVar(&m.Eligible, "eligible", "", "BlockLLM eligible tensors: comma-separated regular expressions over parameter names\n("+eligibleHelp+")")
	fs.IntVar(&m.SwitchEvery, "switch-every", 0, "BAdam/LISA: steps between block switches (0: their defaults, 100 and 50)")
	fs.IntVar(&m.LISALayers, "lisa-layers", 0, "LISA: layers trained at a time (0: 2)")
	fs.StringVar(&m.BAdamOrder, "badam-order", "ascending", "BAdam: order of the layer blocks: ascending, descending or random (each layer once per round)")
}

// Validate checks the values.
func (m *Methods) Validate() error {
	switch {
	case m.Sparsity < 0 || m.Sparsity >= 1:
		return fmt.Errorf("--sparsity %g outside [0, 1)", m.Sparsity)
	case m.Patience < 0:
		return fmt.Errorf("--patience %d must be positive", m.Patience)
	case m.SwitchEvery < 0:
		return fmt.Errorf("--switch-every %d must not be negative", m.SwitchEvery)
	case m.LISALayers < 0:
		return fmt.Errorf("--lisa-layers %d must not be negative", m.LISALayers)
	}
	return m.PEFT.Validate()
}

// Configs returns one MethodConfig per method of --method, each with adam and seed;
// BlockLLM's selection settings come from sel (refCheckEvery: the reference preset's
// check interval for the command).
func (m *Methods) Configs(adam blockllm.AdamConfig, seed uint64, sel *Selection, refCheckEvery int) ([]blockllm.MethodConfig, error) {
	names, err := blockllm.ParseMethods(m.List)
	if err != nil {
		return nil, fmt.Errorf("--method: %w", err)
	}
	bc, err := sel.Apply(blockllm.BlockLLMConfig{Sparsity: m.Sparsity, Patience: m.Patience}, refCheckEvery, SplitList(m.Eligible))
	if err != nil {
		return nil, err
	}
	order, err := blockllm.ParseBlockOrder(m.BAdamOrder)
	if err != nil {
		return nil, fmt.Errorf("--badam-order: %w", err)
	}
	variant := ""
	if sel.Reference() {
		variant = "reference"
	}
	if d := Describe(bc); d != "" && !sel.Reference() {
		variant = d
	}
	var out []blockllm.MethodConfig
	for _, n := range names {
		mc := blockllm.MethodConfig{Method: n, Adam: adam, BlockLLM: bc,
			SwitchEvery: m.SwitchEvery, LISALayers: m.LISALayers, BAdamOrder: order, Seed: seed, Variant: variant}
		m.PEFT.Apply(&mc)
		out = append(out, mc)
	}
	return out, nil
}

// Memory holds the memory and speed options of Llama training: --recompute,
// --recompute-mlp, --loss-chunk, --pad-mlp, --fused-adamw, --step-in-backward and
// --adam-8bit.
type Memory struct {
	Recompute      bool
	RecomputeMLP   bool
	LossChunk      int
	PadMLP         int
	FusedAdamW     bool
	StepInBackward bool
	Adam8bit       bool

	fs *flag.FlagSet // where Register defined the flags (Validate asks what was set)
}

// Register defines the flags on fs with the defaults in def; padHelp says what
// --pad-mlp's default means.
func (m *Memory) Register(fs *flag.FlagSet, def Memory, padHelp string) {
	fs.BoolVar(&m.Recompute, "recompute", def.Recompute, "recompute each decoder layer's activations in backward (gradient checkpointing)")
	fs.BoolVar(&m.RecomputeMLP, "recompute-mlp", def.RecomputeMLP, "recompute only the MLPs in backward (keeps their input, not gate and up)")
	fs.IntVar(&m.LossChunk, "loss-chunk", def.LossChunk, "compute the training loss fused with the LM head, this many positions at a time (0: whole logits)")
	fs.IntVar(&m.PadMLP, "pad-mlp", def.PadMLP, "round the MLP width up to a multiple of this inside forward (zero-padded weights: the same\n"+
		"function; aligned rows for GPU matrix kernels); "+padHelp)
	fs.BoolVar(&m.StepInBackward, "step-in-backward", def.StepInBackward, "update each trainable tensor during backward, as soon as its gradient is\n"+
		"complete (AdamW, BlockLLM and GaLore; needs --grad-clip 0 and --grad-accum 1)")
	fs.BoolVar(&m.FusedAdamW, "fused-adamw", def.FusedAdamW, "update the tensors in one multi-tensor AdamW call where libtorch has the fused kernel\n"+
		"(CUDA 2.1+, CPU 2.4+) and the moments have the weights' dtype; elsewhere the same per-tensor math")
	fs.BoolVar(&m.Adam8bit, "adam-8bit", def.Adam8bit, "keep Adam's moments in 8 bits, as bitsandbytes' block-wise 8-bit AdamW (dynamic maps,\n"+
		"a float32 scale per 256 values; tensors under 4096 values keep ordinary moments): about a quarter\n"+
		"of float32 moments. The update runs per tensor, so it turns a default --fused-adamw off (both given is an error)")
	m.fs = fs
}

// Validate checks the values against the trainer settings they interact with.
func (m *Memory) Validate(clip float64, gradAccum int) error {
	if m.LossChunk < 0 || m.PadMLP < -1 {
		return fmt.Errorf("--loss-chunk must not be negative and --pad-mlp not below -1")
	}
	if m.StepInBackward && (clip > 0 || gradAccum > 1) {
		return fmt.Errorf("--step-in-backward needs --grad-clip 0 and --grad-accum 1 (clipping and accumulation need every gradient first)")
	}
	if m.Adam8bit && m.FusedAdamW {
		if m.fs == nil || isSet(m.fs, "fused-adamw") {
			return fmt.Errorf("--fused-adamw does not apply with --adam-8bit (the 8-bit update dequantises, updates and requantises one tensor at a time); drop one of them")
		}
		m.FusedAdamW = false // the command's default, not the user's choice
	}
	return nil
}

// isSet reports whether the flag name was given on the command line.
func isSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

// LlamaOptions returns the model options of the flags for dev and dt; --pad-mlp -1
// means 64 on CUDA and off on the CPU.
func (m *Memory) LlamaOptions(dev torch.Device, dt torch.DType, fusedSDPA bool) llama.Options {
	pad := m.PadMLP
	if pad < 0 {
		pad = 0
		if dev != torch.CPU {
			pad = 64
		}
	}
	return llama.Options{DType: dt, Device: dev, FusedSDPA: fusedSDPA, Recompute: m.Recompute,
		RecomputeMLP: m.RecomputeMLP, LossChunk: m.LossChunk, PadMLP: pad}
}

// Names lists the options set, in bench's "options" format ("recompute-mlp",
// "pad-mlp=64", ...).
func (m *Memory) Names() []string {
	var out []string
	for _, f := range []struct {
		on   bool
		name string
	}{{m.FusedAdamW, "fused-adamw"}, {m.Recompute, "recompute"}, {m.RecomputeMLP && !m.Recompute, "recompute-mlp"},
		{m.PadMLP > 1, fmt.Sprintf("pad-mlp=%d", m.PadMLP)}, {m.StepInBackward, "step-in-backward"},
		{m.LossChunk > 0, fmt.Sprintf("loss-chunk=%d", m.LossChunk)}, {m.Adam8bit, "adam-8bit"}} {
		if f.on {
			out = append(out, f.name)
		}
	}
	return out
}

// NewFlagSet returns a flag set that reports errors (and -h) on stderr, printing usage
// (the text before the flag list) and the flags.
func NewFlagSet(name, usage string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, usage+"\nFlags:\n")
		fs.PrintDefaults()
	}
	return fs
}
